"""Per-patient detection overrides, set by a clinician: a threshold for good or until a date,
and the expected pain level (after a procedure, in a known flare) for a limited time.

Stored in `patients.thresholds` as JSON: `{key: value}` (for good) or
`{key: {"value": v, "until": "YYYY-MM-DD", "set_on": "YYYY-MM-DD"}}` (through its end date);
`detection.overrides_in_force` reads them, so an override lapses by itself. Every change is
audited by the caller (clinic form or `pijnwacht patient thresholds`). Refusals are
`OverrideError`s with a key of backend/platform/messages.py (Dutch: the clinic's language).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from typing import Any

import msgspec

from backend.alerts.detection import Thresholds, overrides_in_force, thresholds_for
from backend.patients import store as patients
from backend.platform.dates import DATE_RE
from backend.platform.messages import Refusal

EXPECTED = "expected_pain_level"
# An expected level is for a limited time: an end date is required, at most this far ahead.
MAX_EXPECTED_DAYS = 90
KEYS = tuple(f.name for f in msgspec.structs.fields(Thresholds))
_DEFAULTS = Thresholds()


class OverrideError(Refusal):
    """A setting that cannot be stored; its message (backend/platform/messages.py) names the key and why."""


class Override(msgspec.Struct):
    key: str
    value: Any
    until: str | None
    set_on: str | None
    in_force: bool


def parse_value(key: str, text: str) -> int | float:
    """A value typed by a clinician (decimal comma or point) for `key`, checked."""
    if key not in KEYS:
        raise OverrideError("override.unknown_key", key=key, known=", ".join(KEYS))
    whole = isinstance(getattr(_DEFAULTS, key), int)
    bad = OverrideError(
        "override.pain" if key == EXPECTED else "override.whole" if whole else "override.number",
        key=key,
        value=text.strip(),
    )
    cleaned = text.strip().replace(",", ".")
    try:
        number = float(cleaned)
        value: int | float = int(number) if whole else number
        if whole and number != int(number):
            raise ValueError
        thresholds_for({}, {key: value})
    except (ValueError, OverflowError):
        raise bad from None
    if key == EXPECTED and value > 10:
        raise bad
    return value


def parse_until(key: str, text: str | None, today: date) -> date | None:
    """The end date of an override (inclusive), or None for good (never for the expected level)."""
    text = (text or "").strip()
    if not text:
        if key == EXPECTED:
            raise OverrideError("override.until_required", key=key, days=MAX_EXPECTED_DAYS)
        return None
    try:
        if not DATE_RE.fullmatch(text):  # exactly YYYY-MM-DD: fromisoformat takes 2026-W49-3
            raise ValueError
        until = date.fromisoformat(text)
    except ValueError:
        raise OverrideError("override.until_format", key=key, value=text) from None
    if until < today:
        raise OverrideError("override.until_past", key=key, value=until.isoformat())
    if key == EXPECTED and until > today + timedelta(days=MAX_EXPECTED_DAYS):
        raise OverrideError("override.until_far", key=key, value=until.isoformat(), days=MAX_EXPECTED_DAYS)
    return until


def _stored(conn: sqlite3.Connection, patient_id: str) -> dict[str, Any]:
    return json.loads(patients.thresholds(conn, patient_id) or "{}") or {}


def _save(conn: sqlite3.Connection, patient_id: str, stored: dict[str, Any]) -> None:
    patients.set_thresholds(conn, patient_id, json.dumps(stored, sort_keys=True))


def set_override(
    conn: sqlite3.Connection, patient_id: str, key: str, value: int | float, until: date | None, today: date
) -> None:
    """Store one checked override (replacing any earlier one of that key); the whole set must
    still make valid thresholds. Lapsed overrides are dropped on the way."""
    stored = _stored(conn, patient_id)
    in_force = overrides_in_force(stored, today)
    stored = {k: v for k, v in stored.items() if k in in_force}
    stored[key] = (
        value if until is None else {"value": value, "until": until.isoformat(), "set_on": today.isoformat()}
    )
    try:
        thresholds_for({}, overrides_in_force(stored, today))
    except ValueError as exc:
        raise OverrideError("override.combination", key=key, why=str(exc)) from None
    _save(conn, patient_id, stored)


def clear_override(conn: sqlite3.Connection, patient_id: str, key: str) -> bool:
    """Remove one override (the pathway's value holds again); False when there was none."""
    stored = _stored(conn, patient_id)
    if stored.pop(key, None) is None:
        return False
    _save(conn, patient_id, stored)
    return True


def listing(conn: sqlite3.Connection, patient_id: str, today: date) -> list[Override]:
    """The patient's overrides, lapsed ones included (shown as such), by key."""
    stored = _stored(conn, patient_id)
    in_force = overrides_in_force(stored, today)
    out = []
    for key in sorted(stored):
        v = stored[key]
        detail = v if isinstance(v, dict) else {"value": v}
        out.append(
            Override(key, detail.get("value"), detail.get("until"), detail.get("set_on"), key in in_force)
        )
    return out


def describe(key: str, value: Any, until: date | None) -> str:
    """One audit line: which setting, to what, until when (no health data beyond the number)."""
    return f"{key}={value:g}" + (f" tot {until.isoformat()}" if until else " (blijvend)")
