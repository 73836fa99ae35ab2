"""The HTTP shell: the patient API, the clinic pages (inbox, patients, consult), public FHIR."""
