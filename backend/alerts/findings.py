"""What the detection rules read and say: a patient's entries, the context of one
evaluation, and a finding (rule id, category, severity, one Dutch line with the numbers).
The rules are in `backend.alerts.pain` (pain, rescue medication) and `backend.alerts.detection`
(the others, and `evaluate`), which re-exports these names."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

import msgspec

from backend.alerts.thresholds import Thresholds
from backend.diary.questionnaires import Library
from backend.platform import formatting

Category = Literal["pain", "side_effect", "safety", "questionnaire", "adherence"]
Severity = Literal["urgent", "high", "routine"]
SEVERITY_RANK = {"routine": 0, "high": 1, "urgent": 2}

DIARY = "diary"
SIDE_EFFECTS = ("se_drowsiness", "se_nausea", "se_constipation", "se_dizziness")
# Findings that are not alerts for the team: the scheduler turns them into a patient reminder.
REMINDER_RULES = frozenset({"silence_reminder"})


class Entry(msgspec.Struct, frozen=True):
    """One current response of the patient (edits already resolved), as the rules see it."""

    questionnaire: str
    local_date: date
    answers: dict[str, Any]
    scores: dict[str, float] = {}
    authored_at: str = ""


class Finding(msgspec.Struct):
    """What a rule saw: which rule, how serious, why (one line with the numbers), on which day."""

    rule_id: str
    category: Category
    severity: Severity
    reason: str
    local_date: date
    # A measured level (e.g. recent pain) and the rise above the level a clinician last saw
    # that is news again (alerts.step resurfaces the alert); None for rules without a level.
    level: float | None = None
    material: float | None = None
    # False: evidence that the condition lasts, too weak to open an alert but enough to keep an
    # open one from closing (hysteresis: a rise that dips for a day is one alert, not three).
    opens: bool = True
    # The day of the answer behind an urgent finding (a report): a later report is a new one.
    evidence_on: date | None = None


# -- formatting: 6,4 (decimal comma, whole numbers without decimals), "2 dec. 2026" (Babel) ----
nl = formatting.number
dutch_date = formatting.day


def signed(x: float, decimals: int = 1) -> str:
    return ("+" if x >= 0 else "−") + nl(abs(x), decimals)


# -- the rules ----------------------------------------------------------------------------------
class Context(msgspec.Struct):
    """What every rule needs, computed once per evaluation."""

    entries: Sequence[Entry]
    diary: dict[date, Entry]  # by local date, oldest first (`detection.diary_by_day`)
    last_diary: date | None
    questionnaires: dict[str, list[Entry]]
    thresholds: Thresholds
    today: date
    enrolled_on: date
    library: Library | None
    # The patient's local date when a diary was last received (live: the server's receipt
    # time; replay: when the latest entry was written). None: its diary date stands in.
    heard_on: date | None = None
    # The last day of the patient's own pause of reminders (a holiday), if any.
    paused_until: date | None = None


Rule = Callable[[Context], list[Finding]]
NUMBER = (int, float)  # a JSON number (a bool is not one)


def daily_values(diary: Mapping[date, Entry], item: str) -> dict[date, float]:
    # type(), not isinstance: a bool is not a pain score (and this runs 57 times a rule).
    return {
        day: float(value)
        for day, entry in diary.items()
        if type(value := entry.answers.get(item)) in NUMBER and math.isfinite(value)
    }
