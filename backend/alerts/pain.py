"""The pain rule (`pain_rise`): a sustained rise of the pain scores against the patient's own
baseline, muted up to a clinician's expected level, and, on a pathway that asks for it,
escalating rescue medication: more rescue medication is more pain, so both are one finding
and one alert, and the baseline and the pain series are read once for both."""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta

import msgspec

from backend.alerts.findings import SEVERITY_RANK, Context, Finding, Severity, daily_values, nl, signed
from backend.alerts.thresholds import Thresholds
from backend.diary.baseline import Baseline, Noise, important_change, pain_baseline, trimmed_mean

NRS_TOP = 10.0


def pain_rise(ctx: Context) -> list[Finding]:
    """The pain finding of the day, if any: from the scores (`pain_scores`; none while the
    recent pain stays within a clinician's expected level) and the rescue doses
    (`rescue_rise`, not muted by it: the level expected is of pain), as one finding whose
    reason says both, the stronger first."""
    t = ctx.thresholds
    pain = sorted(daily_values(ctx.diary, "pain_avg").items())
    if not pain:
        return []
    start = ctx.today - timedelta(days=t.window_days - 1)
    kept = _baseline(t, ctx.today, tuple(pain[: bisect.bisect_left(pain, (start,))]))
    scores = None if within_expected_level(t, pain, ctx.today) else pain_scores(t, pain, kept, ctx.today)
    rescue = rescue_rise(ctx, kept.baseline) if t.rescue_rise_doses else None
    if scores is None or rescue is None:
        return [f for f in (scores, rescue) if f is not None]
    first, then = (scores, rescue) if scores.opens else (rescue, scores)
    severity = max(scores.severity, rescue.severity, key=SEVERITY_RANK.__getitem__)
    return [
        msgspec.structs.replace(
            scores, reason=f"{first.reason}; {then.reason}", severity=severity, opens=True
        )
    ]


# The recent pain level held against a clinician's expected level: the mean pain of the last
# few diary days of the past week (a nurse's "up to 6 is expected" reads the last days).
EXPECTED_LEVEL_DAYS = 3


def within_expected_level(t: Thresholds, pain: Sequence[tuple[date, float]], today: date) -> bool:
    """Whether the recent pain is at or below the level a clinician expects for now."""
    if t.expected_pain_level <= 0:
        return False
    week = today - timedelta(days=6)
    recent = [v for d, v in pain if d >= week][-EXPECTED_LEVEL_DAYS:]
    return bool(recent) and sum(recent) / len(recent) <= t.expected_pain_level


def pain_scores(
    t: Thresholds, pain: list[tuple[date, float]], kept: _KeptBaseline, today: date
) -> Finding | None:
    """Sustained pain rise: the recent days well above the patient's own baseline.

    Baseline = the trimmed mean of the daily pain over `baseline_days` ending `recent_days`
    ago (the rise itself does not drag it up; flares and odd days are cut off); in the first
    weeks a warm-up baseline, after an episode the settled level since (baseline.py), both
    judged more strictly (`warmup_noise_z`, the noise SD at an upper bound). Each window of
    the last `min_window_days` to `window_days` days is judged; a rise counts when in one of
    them (1) the mean is a clinically important rise (2 points or 30 % of the baseline,
    whichever is smaller, but at least `min_change_points`), (2) at least `persistence_days`
    days (and `persistence_share` of the days) are each raised, so a flare of a day or two
    does not alert, and (3) the rise is beyond what this patient's own day-to-day variability
    explains: `noise_z` standard errors, from the SD of the baseline days (their flares and heavy
    tails included) and their carry-over from day to day (AR(1)). Short windows catch big rises
    fast, long ones smaller rises. The finding carries the pain level now (mean of the last
    entries) so that the lifecycle can tell a materially worse rise; when the full rule does
    not hold but the window is still `hold_share` of the important change up, a finding that
    only keeps an open alert open.
    """
    recent_start = today - timedelta(days=t.window_days - 1)
    recent = [(d, v) for d, v in pain if recent_start <= d <= today]
    found = kept.baseline
    if found is None or len(recent) < 2:
        return None
    baseline = found.value
    important = important_change(t, baseline)
    raised = t.raised_day_share * important
    limit = t.warmup_noise_z if found.kind != "full" else t.noise_z
    # A window is the days since its start: a tail of `recent` (oldest first), summed in the
    # same order; windows with the same days (a missing day) are judged once.
    days = [d for d, _ in recent]
    values = [v for _, v in recent]
    up = [1 if v - baseline >= raised else 0 for v in values]
    best: tuple[float, int, float, int] | None = None  # z, days, mean, elevated
    judged = -1
    for w in range(t.min_window_days, t.window_days + 1):
        i = bisect.bisect_left(days, today - timedelta(days=w - 1))
        n = len(values) - i
        if n < t.min_window_days or i == judged:
            continue
        judged = i
        mean = sum(values[i:]) / n
        rise = mean - baseline
        if rise < important:
            continue
        elevated = sum(up[i:])
        if elevated < t.persistence_days or elevated < t.persistence_share * n:
            continue
        z = rise / kept.noise_model().standard_error(n, len(found.days))
        if z >= limit and (best is None or z > best[0]):
            best = (z, n, mean, elevated)
    if best is None:
        return _pain_holds(t, recent, baseline, important, today, kept)
    _, n, mean, elevated = best
    severity: Severity = "high" if mean - baseline >= t.high_rise_points else "routine"
    reason = f"{_pain_reason(mean, n, baseline)}; {elevated} van {n} dagen ≥ {nl(baseline + raised)}"
    level, material = _pain_level(t, recent, kept.noise_model())
    return Finding("pain_rise", "pain", severity, reason, today, level, material)


def rescue_rise(ctx: Context, found: Baseline | None) -> Finding | None:
    """Escalating rescue medication (a pathway sets `rescue_rise_doses`; the opioid pathway
    does): the rescue doses per day over the pain rule's recent window against their trimmed
    mean on the pain baseline's own days (`found`), up by `rescue_rise_doses` and
    `rescue_rise_factor` times it, on `persistence_share` of the window's days each (a bad
    weekend is no escalation), `noise_z` standard errors up by the patient's own variation."""
    t, today = ctx.thresholds, ctx.today
    start = today - timedelta(days=t.window_days - 1)
    doses = rescue_doses(ctx.diary.keys(), daily_values(ctx.diary, "rescue_doses"))
    before = [(d, doses[d]) for d, _ in found.days] if found else []
    recent = [v for d, v in doses.items() if start <= d <= today]
    if len(before) < max(3, t.min_window_days) or len(recent) < t.min_window_days:
        return None
    usual, up = usual_rescue(t, before), t.rescue_rise_doses
    mean = sum(recent) / len(recent)
    raised = sum(1 for v in recent if v >= usual + up)
    if mean < usual + up or mean < t.rescue_rise_factor * usual or raised < t.persistence_share * len(recent):
        return None
    noise = Noise.of(before, drop_highest=math.ceil(len(before) * t.baseline_trim))  # as trimmed
    if mean - usual < t.noise_z * noise.standard_error(len(recent), len(before)):
        return None
    reason = (
        f"noodmedicatie gemiddeld {nl(mean)} keer per dag over {len(recent)} dagen tegenover "
        f"baseline {nl(usual)}; {raised} van {len(recent)} dagen ≥ {nl(usual + up)}"
    )
    severity: Severity = "high" if mean - usual >= 3 * up else "routine"
    return Finding("pain_rise", "pain", severity, reason, today)


def rescue_doses(diary_days: Iterable[date], answered: Mapping[date, float]) -> dict[date, float]:
    """Rescue doses by diary day: the question is optional and the app shows no 0, so a diary
    saved with it empty counts as none."""
    return {d: 0.0 for d in diary_days} | dict(answered)


def usual_rescue(t: Thresholds, days: Sequence[tuple[date, float]]) -> float:
    """The usual rescue doses a day: their trimmed mean on the pain baseline's days (the value
    the rule's reason states and the alert's chart draws)."""
    return trimmed_mean([v for _, v in days], t.baseline_trim)


class _KeptBaseline:
    __slots__ = ("baseline", "noise")

    def __init__(self, baseline: Baseline | None):
        self.baseline = baseline
        self.noise: Noise | None = None

    def noise_model(self) -> Noise:
        """The patient's noise, from the baseline days (computed once, when first needed)."""
        if self.noise is None:
            found = self.baseline
            assert found is not None
            if found.kind == "full":
                self.noise = Noise.of(found.days)
            else:
                # A short baseline (warm-up, re-armed): one flare among ten days weighs too
                # much, so its highest day is left out, and the SD taken at its upper bound.
                self.noise = Noise.of(found.days, drop_highest=1).widened(len(found.days))
        return self.noise


@functools.lru_cache(maxsize=4096)
def _baseline(t: Thresholds, today: date, before: tuple[tuple[date, float], ...]) -> _KeptBaseline:
    """The baseline (and its noise, once needed) from the pain days before the recent window:
    all that `pain_baseline` reads (its periods end by `today - window_days + 1`). Kept by
    value: a patient who edits today's diary, or another with the same days, is not
    computed again."""
    return _KeptBaseline(pain_baseline(t, before, today))


def _pain_level(t: Thresholds, recent: list[tuple[date, float]], noise: Noise) -> tuple[float, float]:
    """The pain level now (mean of the last `min_window_days` entries), and the rise above a
    level seen before that is news again: a clinically important change (2 points, or 30 %
    of the level if more) that also stands out from the patient's own day-to-day variability
    (`noise_z` standard errors of the difference of two such levels). A level of four noisy
    days swings by more than 2 points in a patient whose days swing by 2; a resurfacing for
    that is not news, and buries the news that is. No more than the scale leaves: at 10 only
    the clinical change counts (a noisy patient seen at 7, now at 10 day after day, is news)."""
    last = [v for _, v in recent[-t.min_window_days :]]
    level = sum(last) / len(last)
    clinical = max(t.change_points, t.change_percent / 100 * level)
    beyond_noise = min(t.noise_z * noise.level_difference(len(last)), NRS_TOP - level + clinical)
    return level, max(clinical, beyond_noise)


def _pain_holds(
    t: Thresholds,
    recent: list[tuple[date, float]],
    baseline: float,
    important: float,
    today: date,
    kept: _KeptBaseline,
) -> Finding | None:
    """The recent days still raised by `hold_share` of the important change: an open pain
    alert stays open (the rise goes on), though this would not open one."""
    values = [v for _, v in recent]
    # Two entries suffice: a patient who skips bad days (more often than good ones) is still
    # in the rise.
    if len(values) < 2 or not t.hold_share:
        return None
    mean = sum(values) / len(values)
    if mean - baseline < t.hold_share * important:
        return None
    level, material = _pain_level(t, recent, kept.noise_model())
    reason = _pain_reason(mean, len(values), baseline)
    return Finding("pain_rise", "pain", "routine", reason, today, level, material, opens=False)


def _pain_reason(mean: float, n: int, baseline: float) -> str:
    rise = mean - baseline
    pct = f"; {signed(100 * rise / baseline, 0)} %" if baseline > 0 else ""
    return (
        f"gemiddelde pijn {nl(mean)} over {n} dagen tegenover baseline {nl(baseline)} ({signed(rise)}{pct})"
    )
