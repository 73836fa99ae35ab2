"""Reminder delivery: per week how many reminders were sent, shown on a phone, opened and
answered, and since when they stopped arriving (a dead subscription, a phone that revoked
permission, an app removed).

Pure: the clinic's patient page reads the rows (reminder_log, push_receipts, tasks) and
passes them here. A reminder counts as shown (opened) when a phone reported it for its task
at or after the reminder was sent; the receipts carry nothing but the task and the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

import msgspec

# So many reminders in a row that no phone reported showing: they no longer arrive.
STOPPED_AFTER = 3


class Reminder(msgspec.Struct, frozen=True):
    task_id: int
    sent_at: datetime
    sent_on: date  # the patient's local date
    devices: int  # active subscriptions it was queued for
    answered: bool  # its task was done


class Receipt(msgspec.Struct, frozen=True):
    task_id: int
    event: str  # "shown" | "opened"
    at: datetime


class Week(msgspec.Struct):
    monday: date
    sent: int = 0
    shown: int = 0
    opened: int = 0
    answered: int = 0


def _reported(reminder: Reminder, receipts: Sequence[Receipt], event: str) -> bool:
    return any(
        r.task_id == reminder.task_id and r.event == event and r.at >= reminder.sent_at for r in receipts
    )


def weekly(reminders: Iterable[Reminder], receipts: Sequence[Receipt]) -> list[Week]:
    """Counts per week (Monday first), newest week first."""
    weeks: dict[date, Week] = {}
    for r in reminders:
        monday = r.sent_on - timedelta(days=r.sent_on.weekday())
        w = weeks.setdefault(monday, Week(monday=monday))
        w.sent += 1
        w.shown += _reported(r, receipts, "shown")
        w.opened += _reported(r, receipts, "opened")
        w.answered += r.answered
    return [weeks[k] for k in sorted(weeks, reverse=True)]


def stopped_since(reminders: Sequence[Reminder], receipts: Sequence[Receipt]) -> date | None:
    """The day reminders stopped arriving: the first of the latest run of at least
    STOPPED_AFTER reminders that no phone reported showing (or that had no phone to go to)."""
    run: list[Reminder] = []
    for r in sorted(reminders, key=lambda r: r.sent_at):
        if r.devices and _reported(r, receipts, "shown"):
            run = []
        else:
            run.append(r)
    return run[0].sent_on if len(run) >= STOPPED_AFTER else None
