"""The patient's own pain baseline: one definition, used by detection, the timeline and the
consult summary alike (so the clinic sees the number the alert was judged against).

Baseline = the trimmed mean of the daily pain (`pain_avg`) over `baseline_days` ending
`max(recent_days, window_days) - 1` days before today: the first weeks of a rise do not drag
it up, flares and odd days are trimmed off. Days inside a raised stretch (a week averaging
`baseline_raised_share` of the important change above the first estimate) are left out, so a
past episode does not lift the baseline for the weeks after it. It needs `min_baseline_days`
diary days spread over `min_baseline_span_days` (or the whole baseline period), else there
is no baseline yet.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.alerts.thresholds import Thresholds


@dataclass(frozen=True)
class Baseline:
    """The baseline on one day: its value and the diary days it was taken from."""

    value: float
    start: date  # first day of the baseline period
    end: date  # the day after its last day
    days: list[tuple[date, float]]
    # How it was found: "full" (the usual lagged period), "warmup" (a short history: the days
    # before the recent window) or "settled" (pain came down from an episode: the level since).
    kind: str = "full"

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.days]


def pain_baseline(t: Thresholds, pain: Sequence[tuple[date, float]], today: date) -> Baseline | None:
    """The baseline the pain rule judges `today` against, from (day, pain) sorted by day; None
    while there are too few diary days."""
    end = today - timedelta(days=max(t.recent_days, t.window_days) - 1)
    start = end - timedelta(days=t.baseline_days)
    days = [(d, v) for d, v in pain if start <= d < end]
    if len(days) < t.min_baseline_days or (end - days[0][0]).days < min(
        t.min_baseline_span_days, t.baseline_days
    ):
        return warmup_baseline(t, pain, today)
    value = trimmed_mean([v for _, v in days], t.baseline_trim)
    if t.baseline_raised_share > 0:
        usual = without_raised(days, value + t.baseline_raised_share * important_change(t, value))
        if len(usual) >= t.min_baseline_days:
            days, value = usual, trimmed_mean([v for _, v in usual], t.baseline_trim)
    return settled_baseline(t, pain, today, value) or Baseline(value, start, end, days)


def warmup_baseline(t: Thresholds, pain: Sequence[tuple[date, float]], today: date) -> Baseline | None:
    """A short history (the first weeks): every diary day before the recent window, once there
    are `warmup_days` of them spread over as many days. The rule judges against it more
    strictly (`warmup_noise_z`): a short baseline is an uncertain one."""
    if not t.warmup_days:
        return None
    end = today - timedelta(days=t.window_days - 1)
    start = end - timedelta(days=t.baseline_days)
    days = [(d, v) for d, v in pain if start <= d < end]
    if len(days) < t.warmup_days or (end - days[0][0]).days < t.warmup_days:
        return None
    return Baseline(trimmed_mean([v for _, v in days], t.baseline_trim), days[0][0], end, days, "warmup")


def settled_baseline(
    t: Thresholds, pain: Sequence[tuple[date, float]], today: date, value: float
) -> Baseline | None:
    """Pain came down from an episode: the `settle_days` before the recent window lie
    `rearm_share` of the important change below the usual baseline (which the episode still
    lifts). The baseline is then that settled level, from those days (few: the noise model's
    standard error widens by itself), so the next rise is news (a re-armed rule)."""
    if not t.settle_days or not t.rearm_share:
        return None
    end = today - timedelta(days=t.window_days - 1)
    since = end - timedelta(days=t.settle_days)
    days = [(d, v) for d, v in pain if since <= d < end]
    if len(days) < max(3, t.settle_days // 2):
        return None
    level = trimmed_mean([v for _, v in days], t.baseline_trim)
    if value - level < t.rearm_share * important_change(t, value):
        return None
    return Baseline(level, since, end, days, "settled")


def important_change(t: Thresholds, baseline: float) -> float:
    """The clinically important rise above `baseline` (Farrar 2001): 2 points or 30 %,
    whichever is smaller, but never below `min_change_points`."""
    return max(t.min_change_points, min(t.change_points, t.change_percent / 100 * baseline))


# A day's week for `without_raised`: the diary days within this many days of it.
WEEK_HALF = 3


def without_raised(days: Sequence[tuple[date, float]], limit: float) -> list[tuple[date, float]]:
    """The days (sorted) without those whose week averages `limit` or more: a raised stretch
    (a past episode) rather than the patient's usual pain. A lone flare day barely moves its
    week's mean; a rise that lasted a week or more does."""
    span = timedelta(days=WEEK_HALF)
    kept: list[tuple[date, float]] = []
    lo = hi = 0
    total = 0.0
    for d, v in days:
        while hi < len(days) and days[hi][0] <= d + span:
            total += days[hi][1]
            hi += 1
        while days[lo][0] < d - span:
            total -= days[lo][1]
            lo += 1
        if total / (hi - lo) < limit:
            kept.append((d, v))
    return kept


def trimmed_mean(values: Sequence[float], share: float) -> float:
    """The mean without the `share` lowest and highest values (rounded up; of 3 or 4 values
    the middle ones: a short baseline is not dragged by one flare either)."""
    k = min(math.ceil(len(values) * share), (len(values) - 1) // 2)
    kept = sorted(values)[k : len(values) - k]
    return sum(kept) / len(kept)


@functools.lru_cache(maxsize=4096)
def _var_mean(sd: float, r: float, n: int) -> float:
    """The variance of the mean of n consecutive days of AR(1) noise (kept: every evaluation
    asks it for a dozen windows of a patient whose noise stays the same for weeks)."""
    return sd**2 / n * (1 + 2 * sum((1 - k / n) * r**k for k in range(1, n)))


class Noise(msgspec.Struct):
    """A patient's own day-to-day variability of pain, from the baseline days."""

    sd: float
    autocorrelation: float

    @classmethod
    def of(cls, days: Sequence[tuple[date, float]], drop_highest: int = 0) -> Noise:
        """From the baseline days: the SD of every day, its flares and odd days included (they
        are part of the day-to-day variability a window can rise by without news; dropping the
        two highest, as before, underrated the noise of patients with flares or heavy tails,
        who then got twice the false alerts of calm ones); `drop_highest` leaves out that many
        of the highest days (a short baseline, where one flare weighs heavily). A MAD of whole
        NRS points is too coarse (it jumps in steps of 0.74)."""
        values = [v for _, v in days]
        mean = sum(values) / len(values)
        kept = sorted(values)[: max(2, len(values) - drop_highest)]
        kept_mean = sum(kept) / len(kept)
        sd = max(0.5, math.sqrt(sum((v - kept_mean) ** 2 for v in kept) / (len(kept) - 1)))
        var = sum((v - mean) ** 2 for v in values) / len(values)
        pairs = [
            (a[1] - mean) * (b[1] - mean)
            for a, b in zip(days, days[1:], strict=False)
            if (b[0] - a[0]).days == 1
        ]
        r = sum(pairs) / len(pairs) / var if pairs and var > 0 else 0.0
        # Pain carries over from day to day; 4 weeks give a rough estimate, hence the clamp.
        return cls(sd, min(0.7, max(0.0, r)))

    def widened(self, n: int) -> Noise:
        """For a short baseline of n days: an SD this uncertain is taken at its upper bound
        (about an upper 90 % limit)."""
        return Noise(self.sd * (1 + 1.3 / math.sqrt(n)), self.autocorrelation)

    def level_difference(self, n: int) -> float:
        """SE of the difference of two means of n consecutive days, weeks apart (a level now
        against one seen before), allowing for carry-over."""
        return math.sqrt(2 * _var_mean(self.sd, self.autocorrelation, n))

    def standard_error(self, n: int, n_baseline: int) -> float:
        """SE of (mean of n consecutive days - baseline median), allowing for carry-over."""
        r = self.autocorrelation
        var_mean = _var_mean(self.sd, r, n)
        # A lightly trimmed mean is nearly as efficient as the mean (a median: 1.57).
        var_base = 1.1 * self.sd**2 / n_baseline * (1 + r) / (1 - r)
        return math.sqrt(var_mean + var_base)
