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
from backend.alerts.thresholds import COMMON, RANGES
from backend.patients import store as patients
from backend.platform import formatting
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


def allowed(key: str) -> tuple[str, str]:
    """The range a clinician may set `key` to, both ends as a Dutch reader writes them ("0,5")."""
    low, high = RANGES[key]
    return formatting.setting(low), formatting.setting(high)


def parse_value(key: str, text: str) -> int | float:
    """A value typed by a clinician (decimal comma or point) for `key`, checked: a number of
    the key's kind within its range (backend/alerts/thresholds.py `RANGES`)."""
    if key not in KEYS:
        raise OverrideError("override.unknown_key", key=key, known=", ".join(KEYS))
    whole = isinstance(getattr(_DEFAULTS, key), int)
    bad = OverrideError(
        "override.pain" if key == EXPECTED else "override.whole" if whole else "override.number",
        key=key,
        value=text.strip()[:40],
        low=allowed(key)[0],
        high=allowed(key)[1],
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
    low, high = RANGES[key]
    if not low <= value <= high:
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
        raise OverrideError("override.until_past", key=key, value=formatting.day(until))
    if key == EXPECTED and until > today + timedelta(days=MAX_EXPECTED_DAYS):
        raise OverrideError(
            "override.until_far",
            key=key,
            value=formatting.day(until),
            days=MAX_EXPECTED_DAYS,
            last=formatting.day(today + timedelta(days=MAX_EXPECTED_DAYS)),
        )
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


def expected_in_force(conn: sqlite3.Connection, patient_id: str, today: date) -> Override | None:
    """The expected pain level set for this patient that holds today (with its end date), if any."""
    found = [o for o in listing(conn, patient_id, today) if o.key == EXPECTED and o.in_force and o.until]
    return found[0] if found else None


def describe(key: str, value: Any, until: date | None) -> str:
    """One audit line: which setting, to what, until when (no health data beyond the number)."""
    return f"{key}={value:g}" + (f" tot {until.isoformat()}" if until else " (blijvend)")


class Choice(msgspec.Struct, frozen=True):
    """One threshold as the clinic's form offers it: what holds now for this patient, the
    pathway's own value, and what may be set (both ends included)."""

    key: str
    current: int | float
    pathway: int | float
    low: str
    high: str


def choices(pathway: Thresholds, current: Thresholds) -> tuple[list[Choice], list[Choice]]:
    """The form's thresholds: the few a nurse sets (COMMON) first, then the rest (advanced),
    each with `current` (the patient's thresholds today) and `pathway` (without overrides)."""

    def one(key: str) -> Choice:
        return Choice(key, getattr(current, key), getattr(pathway, key), *allowed(key))

    return [one(k) for k in COMMON], [one(k) for k in KEYS if k not in COMMON]
