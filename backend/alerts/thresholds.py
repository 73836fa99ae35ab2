"""The thresholds of the detection rules: every tunable number, a pathway's `[detection]`
table and a patient's own overrides merged into one frozen `Thresholds`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

import msgspec


class Thresholds(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Every tunable number of the rules; a pathway's `[detection]` table sets any of them."""

    # -- pain: a sustained rise against the patient's own baseline ----------------------------
    # Baseline: the trimmed mean of the daily pain over `baseline_days` ending `recent_days`
    # before today (the first weeks of a rise do not drag it up with them), `baseline_trim` of
    # the days cut off at either end (flares, and the odd low day, do not move it; unlike a
    # median of whole NRS points it is not stuck on whole and half points).
    baseline_days: int = 42
    recent_days: int = 14
    baseline_trim: float = 0.1
    # Days inside a raised stretch are left out of the baseline (and of the noise model): a
    # day whose week (the days within 3 days of it) averages this share of the important
    # change above the first estimate. So a rise that ended 1-4 weeks ago does not lift the
    # baseline and hide the next one (0: every day counts).
    baseline_raised_share: float = 1.0
    # A personal baseline needs diary days spread over four weeks (or over the whole baseline
    # window if shorter): fewer give one too noisy to judge. Days, not a share, so that a
    # patient who skips many days is still watched.
    min_baseline_days: int = 14
    min_baseline_span_days: int = 28
    # Until then (the first weeks), a warm-up baseline: every diary day before the recent
    # window, once there are this many spread over as many days (0: none), judged with the
    # stricter `warmup_noise_z` (a short baseline is an uncertain one; 3.6 before the noise SD
    # counted every baseline day: its false alerts put cohort A over the budget, 0.252).
    warmup_days: int = 10
    warmup_noise_z: float = 3.8
    # Re-arm after an episode: when the `settle_days` before the recent window lie
    # `rearm_share` of the important change below the baseline (the episode still lifts it),
    # the baseline is that settled level, from those days (0: never), judged like a warm-up.
    settle_days: int = 10
    rearm_share: float = 1.25
    # The recent window judged against the baseline (calendar days, today included), of at
    # least `min_window_days` entries (4: fewer flares open an alert, at a day's delay).
    window_days: int = 8
    min_window_days: int = 4
    # Clinically important change (Farrar 2001): 2 points or 30 % of the baseline.
    change_points: float = 2.0
    change_percent: float = 30.0
    # ... but never less than this (a 30 % rise on a baseline of 2 is within the noise).
    min_change_points: float = 1.5
    # How many days (and which share of the days) in the window must each be raised: a flare
    # is 1-2 days. A day is raised when at least `raised_day_share` of the important change
    # above the baseline (below 1 because NRS answers are whole points).
    persistence_days: int = 2
    persistence_share: float = 0.75
    raised_day_share: float = 0.6
    # The rise must also stand out from the patient's own day-to-day variability:
    # window mean - baseline >= noise_z * (its standard error, allowing for carry-over; the SD
    # of every baseline day, flares included).
    noise_z: float = 2.2
    # A rise this large (points) makes the alert high instead of routine.
    high_rise_points: float = 3.0
    # An open pain alert stays open while the window's mean is this share of the important
    # change above the baseline (0: only while the full rule fires).
    hold_share: float = 0.5
    # -- rescue medication: escalating use (off unless a pathway sets it; the opioid one does) --
    # The rise in rescue doses per day over the recent window above their trimmed mean on the
    # pain baseline's days that alerts, if also `rescue_rise_factor` times it (0: off). Its
    # alert is the pain alert: more rescue medication is more pain.
    rescue_rise_doses: float = 0.0
    rescue_rise_factor: float = 2.0
    # -- side effects ----------------------------------------------------------------------------
    # A side effect reported on an entry this many days old or newer still counts as "now".
    side_effect_days: int = 1
    # Moderate-or-worse (>= this level) for `side_effect_persist_days` entries in a row.
    side_effect_persist_level: int = 2
    side_effect_persist_days: int = 3
    # -- safety and questionnaires ----------------------------------------------------------------
    # A questionnaire answer counts as current for this many days.
    questionnaire_days: int = 14
    # A score in a band of this level or worse (or the score's worst band, if lower) is a
    # high-severity finding, and alerts even on a first answer.
    questionnaire_high_level: int = 3
    # -- adherence ----------------------------------------------------------------------------
    # Days since the last diary: a reminder to the patient, then an alert for the team.
    silence_reminder_days: int = 2
    silence_alert_days: int = 5
    # How many days after enrolment the daily diary is expected (0: for as long as enrolled).
    diary_days: int = 0
    # -- lifecycle ------------------------------------------------------------------------------
    # An alert closes once its condition has been clear for this many days. Short, chosen on
    # the curve (README): a noise-opened pain alert must not sit open for weeks and swallow the
    # real rise that follows; one rise is still one alert (pain evidence too weak to open an
    # alert keeps an open one open, and an urgent alert nobody has seen never closes).
    quiet_days: int = 3
    # Pain evidence too weak to open an alert keeps an open one open for at most this many
    # days after the last evidence that would open one (0: as long as it lasts); then it
    # closes by itself (never an urgent one nobody has seen) and a real rise opens anew.
    hold_days: int = 14
    # -- set by a clinician for one patient, for a limited time (backend/alerts/overrides.py) ----------
    # The pain level expected now (after a procedure, in a known flare): pain findings are
    # dropped while the recent pain stays at or below it (0: none expected).
    expected_pain_level: float = 0.0


_THRESHOLD_FIELDS = {f.name: f for f in msgspec.structs.fields(Thresholds)}

# What a clinician may set each threshold to for one patient (backend/alerts/overrides.py),
# both ends included: what the rule can meaningfully use. Beyond it a value switches a rule
# off unseen (a baseline of 9 999 days is never complete, so pain is never judged) or makes it
# fire on every flare. The pathways' own values lie inside (tests/test_overrides.py).
RANGES: dict[str, tuple[float, float]] = {
    "baseline_days": (7, 90),  # a week (post-operative pathways) up to three months back
    "recent_days": (1, 42),
    "baseline_trim": (0, 0.4),  # a share cut off at either end: 0.5 would cut every day
    "baseline_raised_share": (0, 3),
    "min_baseline_days": (3, 60),
    "min_baseline_span_days": (3, 90),
    "warmup_days": (0, 28),
    "warmup_noise_z": (0, 6),
    "settle_days": (0, 28),
    "rearm_share": (0, 3),
    "window_days": (2, 28),  # a window of one day is a flare
    "min_window_days": (1, 28),
    "change_points": (0.5, 6),  # NRS 0-10
    "change_percent": (5, 100),
    "min_change_points": (0, 6),
    "persistence_days": (1, 28),
    "persistence_share": (0, 1),
    "raised_day_share": (0, 2),
    "noise_z": (0, 6),
    "high_rise_points": (1, 10),
    "hold_share": (0, 1),
    "rescue_rise_doses": (0, 10),  # doses a day; 0: off
    "rescue_rise_factor": (1, 10),
    "side_effect_days": (0, 14),
    "side_effect_persist_level": (1, 3),  # licht, matig, ernstig
    "side_effect_persist_days": (1, 14),
    "questionnaire_days": (1, 90),
    "questionnaire_high_level": (1, 4),
    "silence_reminder_days": (0, 14),  # 0: no reminder
    "silence_alert_days": (1, 28),
    "diary_days": (0, 730),  # 0: for as long as enrolled
    "quiet_days": (1, 28),
    "hold_days": (0, 60),
    "expected_pain_level": (0, 10),
}
# The few a nurse sets for a patient; the form lists them first, the rest as "geavanceerd".
COMMON = ("change_points", "change_percent", "window_days", "quiet_days", "expected_pain_level")


def thresholds_for(
    pathway_detection: Mapping[str, Any] | None, patient_overrides: Mapping[str, Any] | None
) -> Thresholds:
    """The thresholds for one patient: defaults, then the pathway's, then the patient's own."""
    values: dict[str, Any] = {}
    for source, mapping in (("pathway", pathway_detection), ("patient", patient_overrides)):
        for key, value in (mapping or {}).items():
            field = _THRESHOLD_FIELDS.get(key)
            if field is None:
                raise ValueError(f"{source} detection setting {key!r} is unknown")
            values[key] = _check_threshold(source, key, value, field.type)
    return Thresholds(**values)


def overrides_in_force(stored: Mapping[str, Any] | None, today: date) -> dict[str, Any]:
    """A patient's stored overrides that hold on `today`: a plain value for good, a
    {"value": v, "until": "YYYY-MM-DD"} through its end date (then it lapses by itself)."""
    out: dict[str, Any] = {}
    for key, value in (stored or {}).items():
        if isinstance(value, Mapping):
            until = value.get("until")
            if until is not None and str(until) < today.isoformat():
                continue
            value = value.get("value")
        out[key] = value
    return out


def _check_threshold(source: str, key: str, value: Any, typ: Any) -> Any:
    bad = ValueError(f"{source} detection setting {key!r}: {value!r} is not a valid value")
    if isinstance(value, bool):
        raise bad
    if typ is int or typ == "int":
        if not isinstance(value, int | float) or value != int(value):
            raise bad
        value = int(value)
    elif typ is float or typ == "float":
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise bad
        value = float(value)
    if value < 0:
        raise bad
    return value
