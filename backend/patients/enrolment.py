"""Enrolment: patients, one-time enrolment codes, and the device tokens they are exchanged for."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from backend.patients import store
from backend.patients.store import Patient
from backend.platform.dates import anchor_range, check_date
from backend.platform.formatting import name_sort_key
from backend.platform.messages import Problem, Refusal
from backend.platform.storage import iso, parse_iso, utcnow

# No 0/O, 1/I/L: a code read aloud over the phone or typed by a tired patient stays right.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
PATIENT_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TIME_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
MAX_ZONE_LENGTH = 64


class EnrolmentError(Refusal, ValueError):
    """An enrolment request that cannot be honoured: a message key of backend/platform/messages.py
    and its parameters. A refusal of what was asked (422); the web layer decides otherwise where
    HTTP says more (a code that is unknown or expired: web/api.py)."""

    def __init__(self, key: str, /, **params: Any):
        super().__init__(key, **params)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_code(code: str) -> str:
    return re.sub(r"[\s\-]", "", code or "").upper()


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def check_timezone(name: str) -> str:
    # Real zone names are short; a folder of the zone database ("Europe") raises OSError.
    try:
        if len(name) > MAX_ZONE_LENGTH:
            raise ValueError
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise EnrolmentError("settings.timezone", value=repr(name[:MAX_ZONE_LENGTH])) from None
    return name


def check_reminder_time(value: str) -> str:
    if not TIME_RE.fullmatch(value or ""):
        raise EnrolmentError("settings.reminder_time", value=repr(value[:20]))
    return value


def check_display_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise EnrolmentError("name.required")
    if len(name) > 80:
        raise EnrolmentError("name.too_long", max=80)
    # Control and format characters (U+202E turns the text around, zero-width ones hide
    # parts of it): a name shown in the inbox must read as it is.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        raise EnrolmentError("name.control")
    # A BSN is nine digits: refuse anything that looks like one (data minimisation, AVG),
    # however the digits are grouped (1234-5678-2, 1234 5678 2, 1234.5678.2, 1234/5678/2).
    if re.search(r"\d{8,}", re.sub(r"[\s.\-_/,]", "", name)):
        raise EnrolmentError("name.bsn")
    return name


def check_anchor(value: str | date, *, today: date, enrolled_on: date | None = None) -> date:
    """A pathway anchor (enrolment, treatment or operation day) by the one date rule."""
    allowed = anchor_range(today, enrolled_on)
    day = value if isinstance(value, date) else check_date("anchor_date", value, allowed)
    if isinstance(day, Problem):
        if day.key == "date.format":
            raise EnrolmentError("anchor.format")
        raise EnrolmentError("anchor.range", **day.params)
    if day not in allowed:
        raise EnrolmentError("anchor.range", value=day.isoformat(), first=allowed.first, last=allowed.last)
    return day


def get_patient(conn: sqlite3.Connection, patient_id: str) -> Patient | None:
    return store.get(conn, patient_id)


def same_name_enrolled(conn: sqlite3.Connection, display_name: str) -> list[datetime]:
    """When the active patients already called `display_name` were enrolled: a second
    "Mevr. Kok" is enrolled only when the clinician confirms it is someone else."""
    name = (display_name or "").strip()
    return [parse_iso(at) for at in store.active_enrolled_as(conn, name)] if name else []


def create_patient(
    conn: sqlite3.Connection,
    *,
    display_name: str,
    pathway_id: str,
    known_pathways: set[str] | frozenset[str],
    timezone: str = "Europe/Amsterdam",
    anchor_date: str | date | None = None,
    reminder_time: str = "20:00",
    language: str = "nl",
    created_by: int | None = None,
    code_days: int = 14,
    now: datetime | None = None,
    patient_id: str | None = None,
) -> tuple[Patient, str, str]:
    """Enrol a patient: returns (patient, one-time code, code expiry as UTC ISO).

    `now`: when the enrolment happens (default now; a demo cohort or a test starts in the
    past, and the anchor, a date or as the form or `--start` gave it, is checked against that
    day in the patient's own zone). `patient_id`: an id the caller chose
    (a test's fixture) instead of a fresh random one."""
    if pathway_id not in known_pathways:
        raise EnrolmentError(
            "pathway.unknown", value=repr(pathway_id[:80]), known=", ".join(sorted(known_pathways))
        )
    display_name = check_display_name(display_name)
    check_timezone(timezone)
    check_reminder_time(reminder_time)
    if language not in ("nl", "en"):
        raise EnrolmentError("settings.language")
    now = now or utcnow()
    local_today = now.astimezone(ZoneInfo(timezone)).date()
    anchor = check_anchor(anchor_date, today=local_today) if anchor_date else local_today
    pid = patient_id or _fresh_id(conn)
    store.insert(
        conn,
        patient_id=pid,
        display_name=display_name,
        sort_key=name_sort_key(display_name),
        pathway_id=pathway_id,
        timezone=timezone,
        language=language,
        reminder_time=reminder_time,
        anchor_date=anchor.isoformat(),
        enrolled_at=iso(now),
        created_by=created_by,
    )
    code, expires = new_code(conn, pid, days=code_days)
    patient = get_patient(conn, pid)
    assert patient is not None
    return patient, code, expires


def _fresh_id(conn: sqlite3.Connection) -> str:
    for _ in range(10):
        pid = "p" + "".join(secrets.choice(PATIENT_ID_ALPHABET) for _ in range(10))
        if not store.exists(conn, pid):
            break
    return pid


def new_code(conn: sqlite3.Connection, patient_id: str, *, days: int = 14) -> tuple[str, str]:
    """A fresh one-time code for the patient (earlier unused codes stop working)."""
    now = utcnow()
    store.retire_codes(conn, patient_id, iso(now))
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires = iso(now + timedelta(days=days))
    store.insert_code(conn, _hash(code), patient_id, iso(now), expires)
    return format_code(code), expires


def redeem_code(conn: sqlite3.Connection, code: str) -> tuple[Patient, str]:
    """Exchange a one-time code for a device token (>= 128 random bits; only its hash is kept)."""
    normal = normalise_code(code)
    if len(normal) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in normal):
        raise EnrolmentError("enrol.code_format", length=CODE_LENGTH)
    found = store.code(conn, _hash(normal))
    if found is None or found[2] is not None:
        raise EnrolmentError("enrol.code_unknown")
    patient_id, expires_at, _used = found
    now = utcnow()
    if parse_iso(expires_at) <= now:
        raise EnrolmentError("enrol.code_expired")
    patient = store.get(conn, patient_id)
    if patient is None or patient.status != "active":
        raise EnrolmentError("enrol.code_unknown")
    store.use_code(conn, _hash(normal), iso(now))
    token = secrets.token_urlsafe(32)  # 256 bits
    store.insert_device(conn, _hash(token), patient.id, iso(now))
    return patient, token


def patient_for_token(conn: sqlite3.Connection, token: str, *, keep: bool = False) -> Patient | None:
    """The active patient a device token belongs to, or None (unknown, revoked, left).
    `keep`: see `store.patient_for_device` (the writer's check of every PUT)."""
    if not token or len(token) > 200:
        return None
    return store.patient_for_device(conn, _hash(token), keep=keep)


def token_discharged(conn: sqlite3.Connection, token: str) -> bool:
    """This device's patient was discharged: the app says the team ended the diary."""
    return bool(token) and len(token) <= 200 and store.discharged_device(conn, _hash(token))


def revoke_token(conn: sqlite3.Connection, token: str) -> None:
    store.revoke_device(conn, _hash(token), iso(utcnow()))


def revoke_patient_devices(conn: sqlite3.Connection, patient_id: str) -> int:
    return store.revoke_devices(conn, patient_id, iso(utcnow()))


def update_settings(
    conn: sqlite3.Connection,
    patient_id: str,
    *,
    language: str | None = None,
    timezone: str | None = None,
    reminder_time: str | None = None,
) -> Patient:
    changes: dict[str, str] = {}
    if language is not None:
        if language not in ("nl", "en"):
            raise EnrolmentError("settings.language")
        changes["language"] = language
    if timezone is not None:
        changes["timezone"] = check_timezone(timezone)
    if reminder_time is not None:
        changes["reminder_time"] = check_reminder_time(reminder_time)
    store.update(conn, patient_id, changes)
    patient = store.get(conn, patient_id)
    assert patient is not None
    return patient


MAX_REASON = 200


def rename(conn: sqlite3.Connection, patient_id: str, display_name: str) -> Patient:
    """Correct a patient's display name (checked as at enrolment; the list's sort key follows)."""
    name = check_display_name(display_name)
    return _changed(conn, patient_id, {"display_name": name, "sort_key": name_sort_key(name)})


def change_schedule(
    conn: sqlite3.Connection,
    patient_id: str,
    *,
    pathway_id: str,
    anchor_date: date,
    reminder_time: str,
    timezone: str,
) -> Patient:
    """A new pathway, anchor, reminder time or time zone (the pathway and anchor checked by
    the caller); the caller re-plans the schedule after."""
    changes = {
        "pathway_id": pathway_id,
        "anchor_date": anchor_date.isoformat(),
        "reminder_time": check_reminder_time(reminder_time),
        "timezone": check_timezone(timezone),
    }
    return _changed(conn, patient_id, changes)


def set_pause(conn: sqlite3.Connection, patient_id: str, until: date | None) -> Patient:
    """The patient's pause of reminders up to and including `until` (None: no pause)."""
    return _changed(conn, patient_id, {"paused_until": until.isoformat() if until else None})


def discharge(
    conn: sqlite3.Connection, patient_id: str, reason: str = "", now: datetime | None = None
) -> Patient:
    """Discharge ("afgemeld"): status 'left', so no tasks, reminders or silence alerts and the
    phone is no longer signed in; every answer and alert is kept. `resume` undoes it.
    The caller re-plans the schedule (that cancels the open tasks)."""
    reason = " ".join((reason or "").split())
    if len(reason) > MAX_REASON:
        raise EnrolmentError("discharge.reason_too_long", max=MAX_REASON)
    patient = _existing(conn, patient_id)
    if patient.discharged:
        return patient
    changes = {"status": "left", "discharged_at": iso(now or utcnow()), "discharge_reason": reason or None}
    return _changed(conn, patient_id, changes)


def resume(conn: sqlite3.Connection, patient_id: str) -> Patient:
    """Follow a discharged patient again (their devices sign in again; the caller re-plans)."""
    return _changed(conn, patient_id, {"status": "active"})


def devices_of(conn: sqlite3.Connection, patient_id: str) -> list[dict[str, str | None]]:
    """The patient's devices (when signed in, when signed out), oldest first."""
    return [{"created_at": c, "revoked_at": r} for c, r in store.devices(conn, patient_id)]


class NoSuchPatient(Refusal, LookupError):
    """No patient has this id (404 in the clinic and the CLI's words)."""

    def __init__(self, patient_id: str) -> None:
        super().__init__("clinic.no_patient", 404, id=patient_id)


def _existing(conn: sqlite3.Connection, patient_id: str) -> Patient:
    patient = store.get(conn, patient_id)
    if patient is None:
        raise NoSuchPatient(patient_id)
    return patient


def _changed(conn: sqlite3.Connection, patient_id: str, changes: dict[str, str | None]) -> Patient:
    if not store.update(conn, patient_id, changes):
        raise NoSuchPatient(patient_id)
    return _existing(conn, patient_id)


# -- the enrolment form's one-time token (post/redirect/get) -------------------------------
FORM_TOKEN_HOURS = 12
SHOW_CODE_FOR = timedelta(hours=1)


class EnrolForm(msgspec.Struct, frozen=True):
    """A token of the enrolment form: unused, or the patient and code it made."""

    user_id: int
    created_at: str
    patient_id: str | None
    code: str | None
    code_expires_at: str | None


def new_form_token(conn: sqlite3.Connection, user_id: int) -> str:
    """A one-time token for one enrolment form."""
    token = secrets.token_urlsafe(24)
    now = utcnow()
    store.insert_form_token(
        conn, _hash(token), user_id, iso(now), iso(now - timedelta(hours=FORM_TOKEN_HOURS))
    )
    return token


def enrol_form(conn: sqlite3.Connection, token: str | None, user_id: int) -> EnrolForm | None:
    """The form this token belongs to, if it is this clinician's and not too old."""
    if not token or len(token) > 100:
        return None
    row = store.form_token(conn, _hash(token), user_id)
    if row is None:
        return None
    form = EnrolForm(**row)
    if form.patient_id is None and parse_iso(form.created_at) < utcnow() - timedelta(hours=FORM_TOKEN_HOURS):
        return None
    return form


def record_code(
    conn: sqlite3.Connection, token: str, user_id: int, patient_id: str, code: str, expires: str
) -> None:
    """The form's token made this patient and code (its result page shows them for an hour);
    a token of its own for a new code of an existing patient."""
    now = utcnow()
    store.form_made(
        conn, _hash(token), user_id, iso(now), patient_id, code, expires, iso(now - SHOW_CODE_FOR)
    )


def shown_code(form: EnrolForm) -> str | None:
    """The code to show again on the result page (within the hour), else None."""
    if form.code is None or parse_iso(form.created_at) < utcnow() - SHOW_CODE_FOR:
        return None
    return form.code
