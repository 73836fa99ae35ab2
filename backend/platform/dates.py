"""The one date rule (contract.md v2, "Dates") for every date or time a person or a phone sends.

A date is exactly `YYYY-MM-DD` (Python's `date.fromisoformat` also takes `2026-W49-3` and
`20261202`, which were stored raw and never seen by the rules); a time is RFC 3339 with an
offset. Both must lie in a range the caller gives: for a patient's responses that is 30 days
before the earlier of enrolment and pathway anchor up to the patient's today + 1
(`response_range`); for a pathway anchor a year either side (`anchor_range`); replay takes its
range from the file (backend/tools/replay.py). The API, the batch, the clinic forms and replay all
call `check_date` / `check_datetime`; a refusal is a `Problem` naming the field.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import NamedTuple

from backend.platform.messages import Problem

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)  # ASCII: \d also matches full-width digits
DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# How far before enrolment (or the pathway anchor, if earlier) a diary day may lie: a patient
# who starts the app a few weeks after the first consult may fill in what came before.
MARGIN_BEFORE_DAYS = 30
# A pathway anchor (the operation, the start of a treatment) a year either side of today.
ANCHOR_DAYS = 366


class DateRange(NamedTuple):
    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


# Any time a UTC conversion can represent (a `since` of the year 1 means "everything").
ANY_TIME = DateRange(date(1, 1, 2), date(9999, 12, 30))


def response_range(enrolled_on: date, anchor: date, today: date) -> DateRange:
    """The days a patient's response may be about (and be written on)."""
    return DateRange(min(enrolled_on, anchor) - timedelta(days=MARGIN_BEFORE_DAYS), today + timedelta(days=1))


def anchor_range(today: date, enrolled_on: date | None = None) -> DateRange:
    """The days a pathway anchor may be set to, on enrolment or later in the patient's settings."""
    start = min(today, enrolled_on) if enrolled_on else today
    return DateRange(start - timedelta(days=ANCHOR_DAYS), today + timedelta(days=ANCHOR_DAYS))


def check_date(field: str, value: object, allowed: DateRange) -> date | Problem:
    """`value` as a date, or the Problem saying why it is not one the rule takes."""
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        return Problem(field, "date.format")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return Problem(field, "date.format")
    if day not in allowed:
        return Problem(field, "date.range", {"value": value, "first": allowed.first, "last": allowed.last})
    return day


def check_datetime(field: str, value: object, allowed: DateRange) -> datetime | Problem:
    """`value` as an aware datetime whose own calendar day is in range, or the Problem."""
    if not isinstance(value, str) or not DATETIME_RE.fullmatch(value):
        return Problem(field, "datetime.format")
    try:
        at = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return Problem(field, "datetime.format")
    # The day as written, before any conversion: 0001-01-01T00:00:00+14:00 would overflow in
    # astimezone(), and within the range every conversion is safe.
    if at.date() not in allowed:
        return Problem(
            field, "datetime.range", {"value": value, "first": allowed.first, "last": allowed.last}
        )
    return at
