"""Care pathways: the file format of `questionnaires/pathway-<id>.toml` and its loader.

A pathway says which questionnaires a patient answers, and when, counted in days from one
date of the patient (the anchor: enrolment, treatment or surgery; the patient's
`anchor_date` holds it). It also carries the thresholds the detection rules use for
patients on this pathway. Prior art: RADAR-base aRMT protocols (repeat, completion
window, reminders), REDCap MyCap schedules (one-time, repeating, anchored, end after N),
Castor day offsets ("0,42,91,182,365").

A schedule entry is one of three kinds, told apart by which key it sets:

    daily = true              every day at the patient's reminder time
                              (`from_day`, `for_days` bound it; open-ended without them)
    every_days = 7            every 7 days from `from_day` (default 0)
    at_days = [0, 42, 91]     once on each of these days, with `labels` one per day

Days are counted from the anchor: day 0 is the anchor date, -7 the week before.
`window_days` is how many days a task may be answered (1: only on its own day), and
`reminders = { count = 2, hours_apart = 24 }` how many pushes it gets at most (the first at
the patient's reminder time, the next ones `hours_apart` later while it is still open).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec

from backend.diary.definitions import LANGUAGES, DefinitionError, Text
from backend.diary.questionnaires import Library
from backend.platform.formatting import round_half_up

Anchor = Literal["enrolment", "treatment", "surgery"]
# Reminders are pushed at most this often and this many times per task (alarm fatigue).
MAX_REMINDERS = 5
MIN_HOURS_APART = 1.0


class Reminders(msgspec.Struct, forbid_unknown_fields=True):
    """How many pushes a task gets at most, and how far apart."""

    count: int = 1
    hours_apart: float = 24.0


class ScheduleEntry(msgspec.Struct, forbid_unknown_fields=True):
    """One questionnaire of a pathway and when it is due (daily, every N days, on fixed days)."""

    questionnaire: str
    daily: bool = False
    every_days: int | None = None
    at_days: list[int] = []
    # One label per `at_days` entry ("intake", "6w", ...): names the time point in exports.
    labels: list[str] = []
    # A label for every task of a daily or repeating entry.
    label: str | None = None
    # First day (from the anchor) of a daily or repeating entry; default: the anchor day,
    # and never before the patient's enrolment.
    from_day: int | None = None
    # Last day (from the anchor, inclusive) of a daily or repeating entry; none: open-ended.
    for_days: int | None = None
    window_days: int = 1
    reminders: Reminders = msgspec.field(default_factory=Reminders)

    @property
    def kind(self) -> Literal["daily", "every", "at"]:
        if self.daily:
            return "daily"
        if self.every_days is not None:
            return "every"
        return "at"


class SuccessRule(msgspec.Struct, forbid_unknown_fields=True):
    """A treatment's success criterion, e.g. SCS trial: >= 50 % less pain than at baseline.

    Baseline: the mean of the diary item `item` over days `baseline_days` (from, to; inclusive)
    relative to the anchor; outcome: its mean over `outcome_days`. Success when the reduction
    is at least `min_reduction_percent` of the baseline. Shown by the consult and the export.
    """

    label: Text
    min_reduction_percent: float
    item: str = "pain_avg"
    questionnaire: str = "diary"
    baseline_days: list[int] = msgspec.field(default_factory=lambda: [-7, -1])
    outcome_days: list[int] = msgspec.field(default_factory=lambda: [1, 14])
    min_days: int = 3


class Pathway(msgspec.Struct, forbid_unknown_fields=True):
    """A care pathway: what to ask when, and the detection thresholds that go with it."""

    id: str
    title: Text
    description: Text
    anchor: Anchor
    schedule: list[ScheduleEntry]
    # Thresholds for the detection rules (keys: backend.alerts.detection.Thresholds fields);
    # the detection module checks them, this one only keeps them.
    detection: dict[str, Any] = {}
    success: SuccessRule | None = None
    # sha256 of the file, set by the loader: a changed file re-plans its patients.
    checksum: str = ""

    def questionnaires(self) -> list[str]:
        return list(dict.fromkeys(e.questionnaire for e in self.schedule))


class SuccessOutcome(msgspec.Struct):
    baseline: float
    outcome: float
    reduction_percent: float
    success: bool


def success_outcome(rule: SuccessRule, values_by_day: Mapping[int, float]) -> SuccessOutcome | None:
    """Apply a success rule to daily values keyed by day from the anchor (None: too few days)."""

    def mean_over(days: Sequence[int]) -> float | None:
        lo, hi = days
        values = [v for d, v in values_by_day.items() if lo <= d <= hi]
        return sum(values) / len(values) if len(values) >= rule.min_days else None

    base, after = mean_over(rule.baseline_days), mean_over(rule.outcome_days)
    if base is None or after is None or base <= 0:
        return None
    reduction = 100.0 * (base - after) / base
    return SuccessOutcome(
        baseline=round_half_up(base, 1),
        outcome=round_half_up(after, 1),
        reduction_percent=round_half_up(reduction, 1),
        success=reduction >= rule.min_reduction_percent,
    )


class TrialDays(msgspec.Struct):
    """Of the outcome days with a diary, how many reached the rule's reduction (a trial summary)."""

    baseline: float
    reached: int
    days: int
    min_reduction_percent: float


def trial_span(rule: SuccessRule, anchor: date) -> tuple[date, date]:
    """The days a success rule looks at: its baseline and outcome days around the anchor."""
    lo = min(rule.baseline_days[0], rule.outcome_days[0])
    hi = max(rule.baseline_days[1], rule.outcome_days[1])
    return anchor + timedelta(days=lo), anchor + timedelta(days=hi)


def trial_days(rule: SuccessRule, values_by_day: Mapping[int, float]) -> TrialDays | None:
    """Per outcome day, did the pain fall by at least the rule's share of the baseline mean?
    None while the baseline has fewer than `min_days` days."""
    lo, hi = rule.baseline_days
    base = [v for d, v in values_by_day.items() if lo <= d <= hi]
    if len(base) < rule.min_days or sum(base) <= 0:
        return None
    mean = sum(base) / len(base)
    limit = mean * (1 - rule.min_reduction_percent / 100)
    lo, hi = rule.outcome_days
    after = [v for d, v in values_by_day.items() if lo <= d <= hi]
    return TrialDays(
        baseline=round_half_up(mean, 1),
        reached=sum(1 for v in after if v <= limit),
        days=len(after),
        min_reduction_percent=rule.min_reduction_percent,
    )


# -- loading ------------------------------------------------------------------------------
def _check_text(text: Text, where: str) -> None:
    missing = [lang for lang in LANGUAGES if not text.get(lang)]
    if missing:
        raise DefinitionError(f"{where}: text missing for language(s) {', '.join(missing)}")


def check_pathway(p: Pathway, library: Library, where: str) -> None:
    """What msgspec cannot check: one kind per entry, sane days, known questionnaires."""
    _check_text(p.title, f"{where}: title")
    _check_text(p.description, f"{where}: description")
    if not p.schedule:
        raise DefinitionError(f"{where}: schedule: a pathway needs at least one entry")
    seen: set[tuple[str, str]] = set()
    for n, e in enumerate(p.schedule):
        at = f"{where}: schedule[{n}] ({e.questionnaire})"
        if library.get(e.questionnaire) is None:
            raise DefinitionError(f"{at}.questionnaire: no questionnaire {e.questionnaire!r} in the library")
        kinds = [
            k
            for k, on in (
                ("daily", e.daily),
                ("every_days", e.every_days is not None),
                ("at_days", bool(e.at_days)),
            )
            if on
        ]
        if len(kinds) != 1:
            raise DefinitionError(
                f"{at}: set exactly one of daily, every_days, at_days (found: {', '.join(kinds) or 'none'})"
            )
        if e.every_days is not None and e.every_days < 1:
            raise DefinitionError(f"{at}.every_days: must be 1 or more")
        if e.at_days:
            if len(set(e.at_days)) != len(e.at_days):
                raise DefinitionError(f"{at}.at_days: a day is listed twice")
            if e.labels and len(e.labels) != len(e.at_days):
                raise DefinitionError(f"{at}.labels: {len(e.labels)} labels for {len(e.at_days)} days")
            if e.from_day is not None or e.for_days is not None:
                raise DefinitionError(f"{at}: from_day and for_days are for daily or every_days")
        elif e.labels:
            raise DefinitionError(f"{at}.labels: only for at_days (use label)")
        if e.from_day is not None and e.for_days is not None and e.for_days < e.from_day:
            raise DefinitionError(f"{at}.for_days: ends before from_day")
        if e.window_days < 1:
            raise DefinitionError(f"{at}.window_days: must be 1 or more")
        if e.kind == "daily" and e.window_days != 1:
            raise DefinitionError(f"{at}.window_days: a daily task is for its own day (1)")
        if e.kind == "every" and e.window_days > (e.every_days or 0):
            raise DefinitionError(f"{at}.window_days: longer than every_days (windows overlap)")
        if not 0 <= e.reminders.count <= MAX_REMINDERS:
            raise DefinitionError(f"{at}.reminders.count: must be 0..{MAX_REMINDERS}")
        if e.reminders.count > 1 and e.reminders.hours_apart < MIN_HOURS_APART:
            raise DefinitionError(f"{at}.reminders.hours_apart: at least {MIN_HOURS_APART:g} hour apart")
        key = (e.questionnaire, e.kind)
        if e.kind == "daily" and key in seen:
            raise DefinitionError(f"{at}: {e.questionnaire} is daily twice")
        seen.add(key)
    if not any(e.questionnaire == "diary" and e.daily for e in p.schedule):
        raise DefinitionError(f"{where}: schedule: every pathway includes the daily diary")
    if not isinstance(p.detection, dict):
        raise DefinitionError(f"{where}: detection: must be a table")
    if p.success is not None:
        s = p.success
        _check_text(s.label, f"{where}: success.label")
        q = library.get(s.questionnaire)
        if q is None or q.item(s.item) is None:
            raise DefinitionError(f"{where}: success.item: {s.questionnaire} has no item {s.item!r}")
        for name in ("baseline_days", "outcome_days"):
            days = getattr(s, name)
            if len(days) != 2 or days[0] > days[1]:
                raise DefinitionError(f"{where}: success.{name}: [first, last] day")
        if not 0 < s.min_reduction_percent <= 100:
            raise DefinitionError(f"{where}: success.min_reduction_percent: 1..100")


def load_pathway(path: Path, library: Library) -> Pathway:
    raw = path.read_bytes()
    try:
        p = msgspec.toml.decode(raw, type=Pathway)
    except msgspec.ValidationError as exc:
        raise DefinitionError(f"{path.name}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DefinitionError(f"{path.name}: not valid TOML: {exc}") from None
    if path.name != f"pathway-{p.id}.toml":
        raise DefinitionError(f"{path.name}: id: {p.id!r} does not match the file name")
    check_pathway(p, library, path.name)
    p.checksum = hashlib.sha256(raw).hexdigest()
    return p


def servable_only(pathways: Mapping[str, Pathway], library: Library) -> dict[str, Pathway]:
    """The pathways as the server schedules them: without questionnaires that wait for their
    licensed text (`Library.without_text`). The checksum says what was left out, so
    supplying the text later re-plans every patient of the pathway."""
    out: dict[str, Pathway] = {}
    for pid, p in pathways.items():
        left_out = sorted({e.questionnaire for e in p.schedule if not library.servable(e.questionnaire)})
        if not left_out:
            out[pid] = p
            continue
        out[pid] = msgspec.structs.replace(
            p,
            schedule=[e for e in p.schedule if e.questionnaire not in left_out],
            checksum=hashlib.sha256(f"{p.checksum} without {','.join(left_out)}".encode()).hexdigest(),
        )
    return out


def load_pathways(folder: str | Path, library: Library) -> dict[str, Pathway]:
    """Load and check every `pathway-<id>.toml` in `folder`; errors name file and field."""
    folder = Path(folder)
    pathways: dict[str, Pathway] = {}
    for path in sorted(folder.glob("pathway-*.toml")):
        p = load_pathway(path, library)
        pathways[p.id] = p
    if not pathways:
        raise DefinitionError(f"{folder}: no care pathway files (pathway-<id>.toml)")
    return pathways
