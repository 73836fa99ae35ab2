"""Response targets: by when the team should have seen an alert, and how well it does.

A target per severity (settings: urgent in minutes, high and routine in working days, Monday
to Friday, in the clinic's time zone). Every alert shows its time left or how far overdue;
the response-times page shows per week and severity the median time to acknowledge and to
resolve, the share seen within target, and the alerts that closed by themselves unseen.
Pure: no SQL, no clock (the caller passes `now`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from backend.platform import formatting
from backend.platform.storage import parse_iso

SEVERITIES = ("urgent", "high", "routine")


@dataclass(frozen=True)
class Targets:
    urgent_minutes: int = 60
    high_working_days: int = 1
    routine_working_days: int = 3
    time_zone: str = formatting.CLINIC_ZONE

    @classmethod
    def of(cls, settings: Any) -> Targets:
        return cls(
            urgent_minutes=settings.target_urgent_minutes,
            high_working_days=settings.target_high_working_days,
            routine_working_days=settings.target_routine_working_days,
        )

    def describe(self, severity: str) -> str:
        """ "1 uur", "1 werkdag", "3 werkdagen"."""
        if severity == "urgent":
            if self.urgent_minutes % 60 == 0:
                return formatting.plural(self.urgent_minutes // 60, "uur", "uur")
            return formatting.plural(self.urgent_minutes, "minuut", "minuten")
        n = self.high_working_days if severity == "high" else self.routine_working_days
        return formatting.plural(n, "werkdag", "werkdagen")

    def due(self, severity: str, opened_at: datetime) -> datetime:
        """When an alert opened at `opened_at` should have been acknowledged."""
        if severity == "urgent":
            return opened_at + timedelta(minutes=self.urgent_minutes)
        n = self.high_working_days if severity == "high" else self.routine_working_days
        local = opened_at.astimezone(formatting.zone(self.time_zone))
        while n > 0:
            local += timedelta(days=1)
            if local.weekday() < 5:
                n -= 1
        # ZoneInfo arithmetic is wall-clock: the same local time, also across a DST change.
        return local


def duration(delta: timedelta) -> str:
    """ "35 min", "2 uur", "3 dagen": how long, in the largest unit that fits."""
    minutes = int(abs(delta).total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return formatting.plural(hours, "uur", "uur")
    return formatting.days(hours // 24)


@dataclass(frozen=True)
class Deadline:
    """An alert's target as its page shows it."""

    due: datetime
    target: str  # "1 werkdag"
    met: bool | None  # seen within target; None while not yet seen
    overdue: bool
    text: str  # "nog 35 min" / "2 uur te laat" / "gezien binnen de tijd"

    @property
    def due_text(self) -> str:
        return formatting.moment(self.due)


def deadline(targets: Targets, alert: Mapping[str, Any], now: datetime) -> Deadline:
    opened = parse_iso(alert["opened_at"])
    due = targets.due(alert["severity"], opened)
    seen = alert["acknowledged_at"] or alert["resolved_at"]
    if seen:
        at = parse_iso(seen)
        met = at <= due
        text = "gezien binnen de tijd" if met else f"gezien {duration(at - due)} te laat"
        return Deadline(due, targets.describe(alert["severity"]), met, False, text)
    if alert["status"] == "closed":
        # The status says "vanzelf gesloten"; the response time says only that nobody looked.
        return Deadline(due, targets.describe(alert["severity"]), False, False, "niet gezien")
    if now <= due:
        return Deadline(due, targets.describe(alert["severity"]), None, False, f"nog {duration(due - now)}")
    return Deadline(due, targets.describe(alert["severity"]), None, True, f"{duration(now - due)} te laat")


# -- the response-times page --------------------------------------------------------------
@dataclass
class Cell:
    """One week and severity: how many alerts opened, and how the team responded."""

    opened: int = 0
    to_acknowledge: list[float] = field(default_factory=list)  # minutes
    to_resolve: list[float] = field(default_factory=list)
    within: int = 0
    seen: int = 0
    closed_unseen: int = 0
    open_late: int = 0  # not seen yet, past its target: a miss already

    @property
    def median_acknowledge(self) -> float | None:
        return statistics.median(self.to_acknowledge) if self.to_acknowledge else None

    @property
    def median_resolve(self) -> float | None:
        return statistics.median(self.to_resolve) if self.to_resolve else None

    @property
    def share_within(self) -> float | None:
        """Of the alerts that are seen or due by now, the share seen within target."""
        due = self.seen + self.closed_unseen + self.open_late
        return self.within / due if due else None


@dataclass
class Week:
    monday: date
    cells: dict[str, Cell]


def weekly(targets: Targets, alerts: Iterable[Mapping[str, Any]], now: datetime) -> list[Week]:
    """Alerts grouped by the (clinic-local) week they opened in, newest week first. An alert
    still unseen after its target counts as missed now (0 % on time, not "no data")."""
    weeks: dict[date, dict[str, Cell]] = {}
    zone = formatting.zone(targets.time_zone)
    for a in alerts:
        opened = parse_iso(a["opened_at"])
        local = opened.astimezone(zone).date()
        monday = local - timedelta(days=local.weekday())
        cell = weeks.setdefault(monday, {s: Cell() for s in SEVERITIES}).setdefault(a["severity"], Cell())
        cell.opened += 1
        seen = a["acknowledged_at"] or a["resolved_at"]
        if seen:
            at = parse_iso(seen)
            cell.seen += 1
            cell.to_acknowledge.append((at - opened).total_seconds() / 60)
            cell.within += at <= targets.due(a["severity"], opened)
        elif a["status"] == "closed":
            cell.closed_unseen += 1
        elif now > targets.due(a["severity"], opened):
            cell.open_late += 1
        if a["resolved_at"]:
            cell.to_resolve.append((parse_iso(a["resolved_at"]) - opened).total_seconds() / 60)
    return [Week(m, weeks[m]) for m in sorted(weeks, reverse=True)]


def minutes(value: float | None) -> str:
    """A median response time in words ("–" when none)."""
    return "–" if value is None else duration(timedelta(minutes=value))
