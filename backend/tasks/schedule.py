"""Schedule: turn a care pathway and a patient's dates into tasks with due times and reminders.

Pure: no SQL, no clock. `plan` answers "which questionnaires does this patient have on
which day, from when to when may each be answered, and when do we remind" for a range of
days; the scheduler shell stores the answer as rows of the `tasks` table.

Times: a task is for one local date of the patient. It opens at local midnight of that
date, is due at the patient's reminder time on it, and expires at local midnight after the
last day of its window. All three are computed in the patient's zone and returned in UTC,
so a 20:00 reminder stays 20:00 local across DST switches. A reminder time that does not
exist on a spring-forward day (02:30 on 2026-03-29 in Europe/Amsterdam) falls 1 hour later
(03:30, as a clock that skipped the hour shows); a time that occurs twice on the autumn
day (02:30 on 2026-10-25) is taken once, at its first occurrence (fold=0).

Quiet hours (e.g. 22:00-08:00 local): no reminder is pushed at night. A reminder that
falls in quiet hours moves to the end of the quiet hours (08:00); if that is at or after
the task's expiry (a diary for a day that is over by then) the reminder is dropped. Two
reminders that end up at the same moment are sent once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from backend.patients.pathways import Pathway, ScheduleEntry


class QuietHours(msgspec.Struct, frozen=True):
    """Local times between which no push is sent; start == end means no quiet hours."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # spans midnight (22:00-08:00)

    def next_start(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """When the next quiet hours begin, in `zone`, after `now` (None: no quiet hours).

        A reminder must not arrive past this: its push's TTL ends here (a 20:00 reminder
        otherwise rides until local midnight, into the 22:00 quiet hours)."""
        if self.start == self.end:
            return None
        today = now.astimezone(zone).date()
        start = local_at(today, self.start, zone)
        return start if start > now else local_at(today + timedelta(days=1), self.start, zone)


class PlannedTask(msgspec.Struct, frozen=True):
    """One questionnaire a patient is asked to answer for one local date."""

    questionnaire: str
    label: str | None
    local_date: date
    until_date: date  # the last local date of its window (inclusive)
    opens_at: datetime  # UTC
    due_at: datetime  # UTC
    expires_at: datetime  # UTC
    reminders: tuple[datetime, ...]  # UTC, ascending, none in quiet hours
    repeating: bool  # from a daily or every_days entry (planned on a rolling horizon)


def parse_hhmm(text: str) -> time:
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


def local_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock time `at` on `day` in `tz` (gap: later, overlap: first)."""
    # fold=0: in an overlap the first occurrence; in a gap the offset from before the gap
    # applies, which lands one hour later on the clock (02:30 -> 03:30 CEST).
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return local_at(day, time(0, 0), tz)


def quiet_adjusted(
    times: list[datetime], *, tz: ZoneInfo, quiet: QuietHours | None, not_after: datetime
) -> tuple[datetime, ...]:
    """Move reminders out of quiet hours (to their end); drop those at or after `not_after`."""
    out: list[datetime] = []
    for t in times:
        if quiet is not None:
            local = t.astimezone(tz)
            if quiet.contains(local.time().replace(tzinfo=None)):
                day = local.date()
                if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
                    day += timedelta(days=1)  # evening part: the quiet hours end tomorrow
                t = local_at(day, quiet.end, tz)
        if t >= not_after:
            continue
        if not out or t > out[-1]:
            out.append(t)
    return tuple(out)


def _days(entry: ScheduleEntry, anchor: date, first: date, last: date) -> list[tuple[date, str | None]]:
    """The local dates (with labels) of an entry's tasks whose window touches [first, last]."""
    if entry.kind == "at":
        labels = entry.labels or [None] * len(entry.at_days)
        out = []
        for offset, label in zip(entry.at_days, labels, strict=True):
            day = anchor + timedelta(days=offset)
            if day <= last and day + timedelta(days=entry.window_days - 1) >= first:
                out.append((day, label))
        return out
    step = 1 if entry.kind == "daily" else entry.every_days or 1
    begin = anchor + timedelta(days=entry.from_day or 0)
    end = last if entry.for_days is None else min(last, anchor + timedelta(days=entry.for_days))
    # The first occurrence whose window reaches `first` (windows are at most `step` long).
    lead = first - timedelta(days=entry.window_days - 1)
    if lead > begin:
        begin += timedelta(days=-(-(lead - begin).days // step) * step)
    out = []
    day = begin
    while day <= end:
        out.append((day, entry.label))
        day += timedelta(days=step)
    return out


def plan(
    pathway: Pathway,
    *,
    anchor_date: date,
    enrolled_on: date,
    reminder_time: time,
    tz: ZoneInfo,
    start: date,
    end: date,
    one_offs_until: date | None = None,
    quiet: QuietHours | None = None,
    paused_until: date | None = None,
) -> list[PlannedTask]:
    """The tasks of a patient whose window touches the local dates [start, end].

    Day 0 of the pathway is `anchor_date`. Nothing is planned before the patient's
    enrolment: a daily task from `enrolled_on` on, a task with a longer window if its window
    is still open on `enrolled_on` (a baseline week the patient joins half-way). One-off
    (at_days) tasks are planned up to `one_offs_until` instead of `end` when given, so a
    caller can create them all at once while it plans repeating tasks on a short horizon.
    When two entries give the same questionnaire on the same date, the first entry wins.
    While the patient pauses reminders (to the end of `paused_until`) tasks are planned
    as usual but get no reminder before the pause ends. Sorted by due time.
    """
    pause_ends = local_midnight(paused_until + timedelta(days=1), tz) if paused_until else None
    first = max(start, enrolled_on)
    tasks: dict[tuple[str, date], PlannedTask] = {}
    for entry in pathway.schedule:
        last = one_offs_until if (entry.kind == "at" and one_offs_until) else end
        for day, label in _days(entry, anchor_date, first, last):
            if entry.kind == "daily" and day < enrolled_on:
                continue
            key = (entry.questionnaire, day)
            if key in tasks:
                continue
            until = day + timedelta(days=entry.window_days - 1)
            opens = local_midnight(day, tz)
            due = local_at(day, reminder_time, tz)
            expires = local_midnight(until + timedelta(days=1), tz)
            wanted = [
                due + timedelta(hours=entry.reminders.hours_apart * k) for k in range(entry.reminders.count)
            ]
            tasks[key] = PlannedTask(
                questionnaire=entry.questionnaire,
                label=label,
                local_date=day,
                until_date=until,
                opens_at=opens,
                due_at=due,
                expires_at=expires,
                reminders=tuple(
                    t
                    for t in quiet_adjusted(wanted, tz=tz, quiet=quiet, not_after=expires)
                    if pause_ends is None or t >= pause_ends
                ),
                repeating=entry.kind != "at",
            )
    return sorted(tasks.values(), key=lambda t: (t.due_at, t.questionnaire))


SNOOZE_HOURS = (1, 3)
PAUSE_MAX_DAYS = 14


def snooze_time(
    now: datetime, hours: int, *, expires_at: datetime, tz: ZoneInfo, quiet: QuietHours | None
) -> datetime | None:
    """When "herinner me over `hours` uur" reminds: `hours` from now, out of quiet hours, or
    None when that is not before the task's window closes (nothing left to remind of)."""
    at = quiet_adjusted([now + timedelta(hours=hours)], tz=tz, quiet=quiet, not_after=expires_at)
    return at[0] if at else None
