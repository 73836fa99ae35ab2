"""Patients: enrolment (invitation codes, device tokens) and the care pathways they follow."""
