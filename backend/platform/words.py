"""The clinic's vocabulary: one word per code (severity, status, outcome, side effect, rule,
audit action), Dutch and English. Every page, CSV and PDF names a code with these words;
nowhere else holds a copy. (Sentences with parameters are messages: `catalogue.py`.)
"""

from __future__ import annotations

import re
from typing import Any

from backend.platform import formatting
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
    # A patient in the clinic's list and on the timeline (`patients.status`).
    "patient_status": {
        "active": {"nl": "gevolgd", "en": "monitored"},
        "left": {"nl": "afgemeld", "en": "discharged"},
    },
    # A clinic account's role (the audit log's "cli": the command line), and what an admin's
    # change to an account did (the users page).
    "role": {
        "clinician": {"nl": "zorgverlener", "en": "clinician"},
        "admin": {"nl": "beheerder", "en": "administrator"},
        "cli": {"nl": "server (opdrachtregel)", "en": "server (command line)"},
    },
    "account_change": {
        "added": {"nl": "toegevoegd", "en": "added"},
        "disable": {
            "nl": "uitgeschakeld; al zijn sessies zijn beëindigd",
            "en": "disabled; every session ended",
        },
        "enable": {"nl": "weer ingeschakeld", "en": "enabled again"},
        "role": {"nl": "heeft een andere rol", "en": "has another role"},
        "passwd": {
            "nl": "heeft een nieuw wachtwoord; al zijn sessies zijn beëindigd en een blokkade is opgeheven",
            "en": "has a new password; every session ended and any lockout lifted",
        },
    },
    # The inbox's orders (alerts.store.ORDERS).
    "inbox_order": {
        "urgent": {"nl": "meest dringend eerst", "en": "most urgent first"},
        "newest": {"nl": "nieuwste eerst", "en": "newest first"},
        "oldest": {"nl": "langst wachtend eerst", "en": "longest waiting first"},
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
    # Columns of the CSVs for Dutch Excel (consult, inbox, cohort), by the standard variant's names.
    "column": {
        "patient_id": {"nl": "patiënt", "en": "patient"},
        "display_name": {"nl": "naam / pseudoniem", "en": "name / pseudonym"},
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
        "rule_id": {"nl": "melding", "en": "alert"},
        "category": {"nl": "soort", "en": "kind"},
        "severity": {"nl": "ernst", "en": "severity"},
        "opened_on": {"nl": "geopend op", "en": "opened on"},
        "reason": {"nl": "reden", "en": "reason"},
        "status": {"nl": "status", "en": "status"},
        "assigned_to": {"nl": "toegewezen aan", "en": "assigned to"},
        "outcome": {"nl": "uitkomst", "en": "outcome"},
        "anchor_date": {"nl": "startdatum", "en": "start date"},
        "time_point": {"nl": "meetmoment", "en": "time point"},
        "at_days": {"nl": "dag", "en": "day"},
        "target_date": {"nl": "streefdatum", "en": "target date"},
        "pain_avg_7d": {"nl": "pijn gemiddeld (7 dagen)", "en": "average pain (7 days)"},
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
        "list_patients": {"nl": "patiëntenlijst bekeken", "en": "viewed the patient list"},
        "enrol": {"nl": "patiënt aangemeld", "en": "enrolled the patient"},
        "new_enrolment_code": {"nl": "nieuwe aanmeldcode gemaakt", "en": "made a new enrolment code"},
        "change_settings": {"nl": "instellingen gewijzigd", "en": "changed the settings"},
        "revoke_devices": {"nl": "toestellen afgemeld", "en": "signed the devices out"},
        "set_threshold": {"nl": "eigen drempel ingesteld", "en": "set a threshold"},
        "clear_threshold": {"nl": "eigen drempel weggehaald", "en": "removed a threshold"},
        "rename": {"nl": "naam gecorrigeerd", "en": "corrected the name"},
        "discharge": {"nl": "afgemeld (monitoring gestopt)", "en": "discharged"},
        "resume": {"nl": "weer gevolgd", "en": "resumed"},
    },
    # A detection threshold as the settings page and the audit log name it.
    "threshold": {
        "baseline_days": {"nl": "dagen voor de baseline", "en": "baseline days"},
        "recent_days": {"nl": "recente dagen buiten de baseline", "en": "recent days outside the baseline"},
        "baseline_trim": {"nl": "deel afgekapt van de baseline", "en": "baseline trim"},
        "baseline_raised_share": {"nl": "verhoogde dagen buiten de baseline", "en": "raised days left out"},
        "min_baseline_days": {"nl": "minste dagboekdagen voor een baseline", "en": "fewest baseline days"},
        "min_baseline_span_days": {"nl": "minste spreiding van de baseline (dagen)", "en": "baseline span"},
        "warmup_days": {
            "nl": "eerste weken: dagboekdagen voor een voorlopige baseline",
            "en": "first weeks: diary days for a provisional baseline",
        },
        "warmup_noise_z": {
            "nl": "eerste weken: boven de dag-tot-dagschommeling (z)",
            "en": "first weeks: above day-to-day noise (z)",
        },
        "settle_days": {
            "nl": "na een periode van meer pijn: dagen voor het nieuwe niveau",
            "en": "after an episode: days for the settled level",
        },
        "rearm_share": {
            "nl": "na een periode van meer pijn: gezakt met (deel belangrijke stijging)",
            "en": "after an episode: settled by (share of an important rise)",
        },
        "window_days": {"nl": "beoordeelde periode (dagen)", "en": "window (days)"},
        "min_window_days": {"nl": "minste ingevulde dagen in de periode", "en": "fewest days in the window"},
        "change_points": {"nl": "belangrijke stijging (punten)", "en": "important rise (points)"},
        "change_percent": {"nl": "belangrijke stijging (%)", "en": "important rise (%)"},
        "min_change_points": {
            "nl": "kleinste belangrijke stijging (punten)",
            "en": "smallest important rise",
        },
        "persistence_days": {"nl": "verhoogde dagen nodig", "en": "raised days needed"},
        "persistence_share": {"nl": "deel verhoogde dagen nodig", "en": "share of raised days needed"},
        "raised_day_share": {"nl": "wanneer een dag verhoogd telt", "en": "when a day counts as raised"},
        "noise_z": {"nl": "boven de dag-tot-dagschommeling (z)", "en": "above day-to-day noise (z)"},
        "high_rise_points": {"nl": "stijging voor een hoge melding (punten)", "en": "rise for a high alert"},
        "hold_share": {"nl": "melding blijft open bij (deel)", "en": "alert stays open at (share)"},
        "rescue_rise_doses": {
            "nl": "meer noodmedicatie: stijging (keer per dag, 0: uit)",
            "en": "more rescue medication: rise (doses a day, 0: off)",
        },
        "rescue_rise_factor": {
            "nl": "meer noodmedicatie: keer de baseline",
            "en": "more rescue medication: times the baseline",
        },
        "side_effect_days": {
            "nl": "bijwerking telt als nu (dagen)",
            "en": "side effect counts as now (days)",
        },
        "side_effect_persist_level": {
            "nl": "aanhoudende bijwerking vanaf niveau",
            "en": "persistent from level",
        },
        "side_effect_persist_days": {
            "nl": "aanhoudende bijwerking (dagen op rij)",
            "en": "persistent (days)",
        },
        "questionnaire_days": {"nl": "vragenlijst geldt (dagen)", "en": "questionnaire counts (days)"},
        "questionnaire_high_level": {
            "nl": "vragenlijst: hoog vanaf niveau",
            "en": "questionnaire high from level",
        },
        "silence_reminder_days": {
            "nl": "herinnering na dagen zonder dagboek",
            "en": "reminder after quiet days",
        },
        "silence_alert_days": {"nl": "melding na dagen zonder dagboek", "en": "alert after quiet days"},
        "diary_days": {"nl": "dagboek verwacht (dagen, 0: steeds)", "en": "diary expected (days)"},
        "quiet_days": {"nl": "melding sluit na rustige dagen", "en": "alert closes after quiet days"},
        "hold_days": {
            "nl": "zwakke stijging houdt melding open (dagen)",
            "en": "weak rise keeps alert open (days)",
        },
        "expected_pain_level": {"nl": "verwacht pijnniveau", "en": "expected pain level"},
    },
    # The time-zone picker's groups: the first part of an IANA name.
    "zone_region": {
        "common": {"nl": "Veelgebruikt", "en": "Common"},
        "current": {"nl": "Nu ingesteld", "en": "Set now"},
        "Africa": {"nl": "Afrika", "en": "Africa"},
        "America": {"nl": "Amerika", "en": "America"},
        "Antarctica": {"nl": "Antarctica", "en": "Antarctica"},
        "Arctic": {"nl": "Noordpoolgebied", "en": "Arctic"},
        "Asia": {"nl": "Azië", "en": "Asia"},
        "Atlantic": {"nl": "Atlantische Oceaan", "en": "Atlantic"},
        "Australia": {"nl": "Australië", "en": "Australia"},
        "Europe": {"nl": "Europa", "en": "Europe"},
        "Indian": {"nl": "Indische Oceaan", "en": "Indian Ocean"},
        "Pacific": {"nl": "Grote Oceaan", "en": "Pacific"},
    },
}

# The cohort CSV for Dutch Excel: its statuses.
WORDS["cohort_status"] = {
    "completed": {"nl": "ingevuld", "en": "completed"},
    "missed": {"nl": "gemist", "en": "missed"},
    "open": {"nl": "nog open", "en": "open"},
    "not_due": {"nl": "nog niet aan de beurt", "en": "not yet due"},
}
_POINT = re.compile(r"(\d+)\s*([wmdy])")
_POINT_UNITS = {
    "w": ("week", "weken"),
    "m": ("maand", "maanden"),
    "d": ("dag", "dagen"),
    "y": ("jaar", "jaar"),
}


def time_point(label: str) -> str:
    """A pathway's time point label as the clinic says it: "6w" -> "6 weken", "3m" ->
    "3 maanden", "day 10" -> "dag 10", "intake" as it is."""
    if label.startswith("day "):
        return f"dag {label[4:]}"
    found = _POINT.fullmatch(label.strip())
    if found is None:
        return label
    return formatting.plural(int(found.group(1)), *_POINT_UNITS[found.group(2)])


def word(group: str, code: str | None, lang: str = DEFAULT, /, **params: Any) -> str:
    """The clinic's word for a code (`word("outcome", "referred")`); an unknown code as written."""
    entry = WORDS.get(group, {}).get(code or "")
    if entry is None:
        return code or ""
    return entry.get(lang, entry[DEFAULT]).format(**params) if params else entry.get(lang, entry[DEFAULT])
