"""The clinic's vocabulary: one word per code (severity, status, outcome, side effect, rule,
audit action), Dutch and English. Every page, CSV and PDF names a code with these words;
nowhere else holds a copy. (Sentences with parameters are messages: `catalogue.py`.)
"""

from __future__ import annotations

from typing import Any

from backend.platform.messages import DEFAULT

# The diary's side effects as the clinic names them (reason lines, pages, the consult CSV).
SIDE_EFFECTS: dict[str, dict[str, str]] = {
    "se_drowsiness": {"nl": "sufheid", "en": "drowsiness"},
    "se_nausea": {"nl": "misselijkheid", "en": "nausea"},
    "se_constipation": {"nl": "obstipatie", "en": "constipation"},
    "se_dizziness": {"nl": "duizeligheid", "en": "dizziness"},
}

WORDS: dict[str, dict[str, dict[str, str]]] = {
    "severity": {
        "urgent": {"nl": "urgent", "en": "urgent"},
        "high": {"nl": "hoog", "en": "high"},
        "routine": {"nl": "routine", "en": "routine"},
    },
    "category": {
        "pain": {"nl": "pijn", "en": "pain"},
        "side_effect": {"nl": "bijwerking", "en": "side effect"},
        "safety": {"nl": "veiligheid", "en": "safety"},
        "questionnaire": {"nl": "vragenlijst", "en": "questionnaire"},
        "adherence": {"nl": "dagboek ingevuld", "en": "diary completion"},
    },
    "status": {
        "live": {"nl": "open of in behandeling", "en": "open or in progress"},
        "open": {"nl": "open, nog niet gezien", "en": "open, not yet seen"},
        "acknowledged": {"nl": "in behandeling", "en": "in progress"},
        "resolved": {"nl": "afgehandeld", "en": "resolved"},
        "closed": {"nl": "vanzelf gesloten", "en": "closed by itself"},
        "closed_unseen": {"nl": "vanzelf gesloten, niet gezien", "en": "closed by itself, never seen"},
        "superseded": {"nl": "opnieuw gemeld, erger", "en": "reported again, worse"},
        "all": {"nl": "alle", "en": "all"},
    },
    "outcome": {
        "called_patient": {"nl": "patiënt gebeld", "en": "called the patient"},
        "changed_medication": {"nl": "medicatie aangepast", "en": "changed the medication"},
        "appointment": {"nl": "afspraak gemaakt", "en": "made an appointment"},
        "referred": {"nl": "doorverwezen (huisarts/crisisdienst)", "en": "referred (GP/crisis service)"},
        "no_action": {"nl": "geen actie nodig", "en": "no action needed"},
    },
    "side_effect": SIDE_EFFECTS,
    "level": {
        "0": {"nl": "geen", "en": "none"},
        "1": {"nl": "licht", "en": "mild"},
        "2": {"nl": "matig", "en": "moderate"},
        "3": {"nl": "ernstig", "en": "severe"},
    },
    # Rules by the first part of their id (`side_effect_severe.se_nausea`: the second names the item).
    "rule": {
        "pain_rise": {"nl": "aanhoudend meer pijn dan gewoonlijk", "en": "sustained pain above the usual"},
        "drowsiness_severe": {"nl": "ernstige sufheid", "en": "severe drowsiness"},
        "side_effect_severe": {"nl": "ernstige bijwerking: {item}", "en": "severe side effect: {item}"},
        "side_effect_persistent": {
            "nl": "aanhoudende bijwerking: {item}",
            "en": "persistent side effect: {item}",
        },
        "safety": {"nl": "veiligheidssignaal: {item}", "en": "safety signal: {item}"},
        "questionnaire": {"nl": "vragenlijst: {item}", "en": "questionnaire: {item}"},
        "silence": {"nl": "geen dagboek ontvangen", "en": "no diary received"},
    },
    # Columns of the consult CSV for Dutch Excel.
    "column": {
        "patient_id": {"nl": "patiënt", "en": "patient"},
        "local_date": {"nl": "datum", "en": "date"},
        "pain_avg": {"nl": "pijn gemiddeld", "en": "average pain"},
        "pain_worst": {"nl": "pijn ergst", "en": "worst pain"},
        "sleep_hours": {"nl": "slaap (uren)", "en": "sleep (hours)"},
        "sleep_quality": {"nl": "slaapkwaliteit", "en": "sleep quality"},
        "activity": {"nl": "activiteit", "en": "activity"},
        "mood": {"nl": "stemming", "en": "mood"},
        "rescue_doses": {"nl": "noodmedicatie (keer)", "en": "rescue medication (doses)"},
        **SIDE_EFFECTS,
        "note": {"nl": "opmerking", "en": "note"},
    },
    # What a clinician did, as the audit log shows it.
    "action": {
        "list_alerts": {"nl": "meldingen bekeken", "en": "viewed the alerts"},
        "view_alert": {"nl": "melding bekeken", "en": "viewed an alert"},
        "acknowledge_alert": {"nl": "melding in behandeling genomen", "en": "took an alert in hand"},
        "assign_alert": {"nl": "melding toegewezen", "en": "assigned an alert"},
        "note_alert": {"nl": "notitie bij melding", "en": "added a note to an alert"},
        "resolve_alert": {"nl": "melding afgehandeld", "en": "resolved an alert"},
        "export_alerts": {"nl": "meldingen gedownload (CSV)", "en": "downloaded the alerts (CSV)"},
        "view_patient": {"nl": "tijdlijn bekeken", "en": "viewed the timeline"},
        "view": {"nl": "overzicht bekeken", "en": "viewed a summary"},
        "export": {"nl": "gegevens gedownload", "en": "downloaded data"},
        "view_response_times": {"nl": "reactietijden bekeken", "en": "viewed the response times"},
    },
}


def word(group: str, code: str | None, lang: str = DEFAULT, /, **params: Any) -> str:
    """The clinic's word for a code (`word("outcome", "referred")`); an unknown code as written."""
    entry = WORDS.get(group, {}).get(code or "")
    if entry is None:
        return code or ""
    return entry.get(lang, entry[DEFAULT]).format(**params) if params else entry.get(lang, entry[DEFAULT])
