"""Exports: CSV (long, wide, Excel), FHIR bundles and the spreadsheet formula guard."""
