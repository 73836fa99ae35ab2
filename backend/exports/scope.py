"""What an export covers: one patient or every patient, a period of local dates.

The arguments are checked before the first chunk of any export, and a refusal is an
`ExportError` whose message holds ids and dates only, never health data.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from backend.diary import store as responses
from backend.patients import store as patients
from backend.platform import messages
from backend.platform.dates import DateRange, check_date
from backend.platform.messages import Problem

# Dates a report may be asked for, and how long its period may be (review L10).
REPORT_DATES = DateRange(date(1900, 1, 1), date(2999, 12, 31))
MAX_PERIOD_DAYS = 10 * 366


class ExportError(Exception):
    """An export cannot be made as asked; the message names the problem (ids and dates only).
    `nothing`: the export was fine but has nothing in it (the clinic says so in its words)."""

    def __init__(self, message: str, *, nothing: bool = False) -> None:
        super().__init__(message)
        self.nothing = nothing


def parse_date(text: str | None, name: str) -> str | None:
    """A YYYY-MM-DD argument by the one date rule (backend/platform/dates.py); None stays None."""
    if text is None or text == "":
        return None
    day = check_date(name, text, REPORT_DATES)
    if isinstance(day, Problem):
        raise ExportError(messages.text("period.date", field=name, value=repr(text[:40])))
    return day.isoformat()


def check_range(date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    """The --from and --to arguments checked (each a date, together a period)."""
    date_from = parse_date(date_from, "--from")
    date_to = parse_date(date_to, "--to")
    if date_from and date_to:
        check_period(date.fromisoformat(date_from), date.fromisoformat(date_to))
    return date_from, date_to


def check_period(start: date, end: date) -> None:
    """A period to report on: the right way round and at most MAX_PERIOD_DAYS long (a page or
    CSV of 700 000 days would hold the server for seconds)."""
    if start > end:
        raise ExportError(messages.text("period.reversed", start=start, end=end))
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ExportError(
            messages.text("period.too_long", start=start, end=end, years=MAX_PERIOD_DAYS // 365)
        )


def span(date_from: str | None, date_to: str | None) -> str:
    """The period in words, for messages and the audit log."""
    if not date_from and not date_to:
        return "all dates"
    return f"{date_from or 'start'} to {date_to or 'end'}"


def check_has_data(
    conn: sqlite3.Connection,
    patient_id: str | None,
    date_from: str | None,
    date_to: str | None,
    *,
    current: bool = False,
) -> None:
    """Refuse an export of an unknown patient, or of a period without responses."""
    if patient_id is not None and not patients.exists(conn, patient_id):
        raise ExportError(f"unknown patient {patient_id!r}")
    if not responses.any_in(conn, patient_id, date_from, date_to, current=current):
        who = f"patient {patient_id}" if patient_id else "any patient"
        raise ExportError(f"no responses to export for {who} ({span(date_from, date_to)})", nothing=True)


def exported_patients(
    conn: sqlite3.Connection,
    patient_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> list[str]:
    """The ids of the patients whose responses an export with these arguments contains."""
    if patient_id is not None:
        return [patient_id]
    return responses.patients_in(conn, date_from, date_to)
