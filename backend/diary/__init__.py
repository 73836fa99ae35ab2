"""The diary and questionnaires: instrument definitions, scoring and the stored responses."""
