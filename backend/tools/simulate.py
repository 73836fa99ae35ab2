"""Cohort simulator: synthetic diaries with labelled events, to prove and tune the rules.

Each simulated patient has a personal pain baseline and day-to-day noise that carries over
from day to day (AR(1)), misses days, has short 1-2 day flares like everyone, and may have
labelled events: a sustained step in pain, a gradual ramp, days of severe drowsiness, a
silence. backend/tools/cohorts.py is a second simulator built another way; backend/tools/yardstick.py
scores either by the alert rows `pijnwacht replay` writes for it. Pure and seeded: the same
spec gives the same cohort.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from datetime import date, timedelta

import msgspec

from backend.alerts.detection import Entry, Finding
from backend.tools.replay import Detector


class CohortSpec(msgspec.Struct, kw_only=True, frozen=True):
    """The knobs of a simulated cohort (defaults: a plausible pain clinic)."""

    patients: int = 100
    days: int = 180
    seed: int = 1
    start: date = date(2026, 1, 5)
    baseline: tuple[float, float] = (2.5, 7.0)
    noise_sd: tuple[float, float] = (0.8, 1.8)
    autocorrelation: tuple[float, float] = (0.3, 0.7)
    missing: tuple[float, float] = (0.02, 0.2)
    # Flares: 1-2 day bursts of pain in everyone, on average one per this many days.
    flare_every_days: float = 21.0
    flare_size: tuple[float, float] = (2.0, 4.0)
    # Labelled pain events.
    pain_events_per_patient: tuple[int, ...] = (0, 1, 1, 2)
    step_size: tuple[float, float] = (2.0, 3.5)
    ramp_share: float = 0.35
    ramp_days: tuple[int, int] = (6, 14)
    event_days: tuple[int, int] = (21, 60)
    # Share of patients with severe drowsiness days, and with a silence (days without diary).
    drowsy_share: float = 0.3
    silence_share: float = 0.3
    silence_days: tuple[int, int] = (5, 10)


class Event(msgspec.Struct):
    """A labelled truth: what happened to a simulated patient, and from when."""

    kind: str  # step | ramp | drowsiness | silence
    start: date
    # For pain: the first day the true rise is clinically important (>= 2 points).
    onset: date
    end: date
    size: float = 0.0


class SimPatient(msgspec.Struct):
    id: str
    enrolled_on: date
    baseline: float
    noise_sd: float
    autocorrelation: float
    entries: list[Entry]
    events: list[Event]


def _uniform(rng: random.Random, lo_hi: tuple[float, float]) -> float:
    return rng.uniform(*lo_hi)


def simulate(spec: CohortSpec) -> list[SimPatient]:
    """A seeded cohort: every patient's diary entries (oldest first) and labelled events."""
    rng = random.Random(spec.seed)
    return [_patient(spec, rng, n) for n in range(spec.patients)]


def _patient(spec: CohortSpec, rng: random.Random, n: int) -> SimPatient:
    days = spec.days
    base = _uniform(rng, spec.baseline)
    sd = _uniform(rng, spec.noise_sd)
    phi = _uniform(rng, spec.autocorrelation)
    p_missing = _uniform(rng, spec.missing)
    shift = [0.0] * days
    events: list[Event] = []

    def day(i: int) -> date:
        return spec.start + timedelta(days=i)

    # Pain events: after six weeks of baseline, apart from each other.
    earliest = 42
    for _ in range(rng.choice(spec.pain_events_per_patient)):
        if earliest > days - 10:
            break
        start = rng.randint(earliest, min(days - 10, earliest + 60))
        size = _uniform(rng, spec.step_size)
        length = rng.randint(*spec.event_days)
        end = min(days - 1, start + length)
        if rng.random() < spec.ramp_share:
            ramp = rng.randint(*spec.ramp_days)
            size = max(size, 2.5)
            onset_i = start + math.ceil(2.0 / size * ramp)
            for i in range(start, end + 1):
                shift[i] += size * min(1.0, (i - start + 1) / ramp)
            kind = "ramp"
        else:
            onset_i = start
            for i in range(start, end + 1):
                shift[i] += size
            kind = "step"
        if onset_i <= end:
            events.append(Event(kind, day(start), day(onset_i), day(end), round(size, 2)))
        earliest = end + 42
    # Flares: everyone, 1-2 days.
    flare = [0.0] * days
    i = int(rng.expovariate(1 / spec.flare_every_days))
    while i < days:
        size = _uniform(rng, spec.flare_size)
        for k in range(rng.choice((1, 1, 2))):
            if i + k < days:
                flare[i + k] += size
        i += 3 + int(rng.expovariate(1 / spec.flare_every_days))
    # Silences: away from the first week and from pain onsets.
    missing = [rng.random() < p_missing for _ in range(days)]
    if rng.random() < spec.silence_share:
        length = rng.randint(*spec.silence_days)
        for _ in range(20):
            s = rng.randint(14, days - length - 2)
            if all(
                not (e.start - timedelta(days=14) <= day(s) <= e.onset + timedelta(days=10)) for e in events
            ):
                for k in range(s, s + length):
                    missing[k] = True
                missing[s - 1] = False
                missing[s + length] = False
                events.append(Event("silence", day(s), day(s), day(s + length - 1)))
                break
    # Severe drowsiness days.
    drowsy: set[int] = set()
    if rng.random() < spec.drowsy_share:
        for _ in range(rng.choice((1, 1, 2))):
            d = rng.randint(7, days - 1)
            drowsy.add(d)
    entries: list[Entry] = []
    noise = rng.gauss(0, sd)
    innovation = sd * math.sqrt(1 - phi * phi)
    for i in range(days):
        noise = phi * noise + rng.gauss(0, innovation)
        if i in drowsy and not any(e.start <= day(i) <= e.end for e in events if e.kind == "silence"):
            missing[i] = False
        if missing[i]:
            continue
        pain = min(10, max(0, round(base + noise + shift[i] + flare[i])))
        answers = {
            "pain_avg": pain,
            "pain_worst": min(10, pain + rng.choice((0, 1, 1, 2, 2, 3))),
            "sleep_hours": max(0.0, min(12.0, round(2 * rng.gauss(7 - 0.2 * pain, 1)) / 2)),
            "rescue_doses": max(0, round(rng.gauss(0.3 * pain - 0.5, 1))),
            "se_drowsiness": 3 if i in drowsy else rng.choice((0, 0, 0, 1)),
            "se_nausea": rng.choice((0, 0, 0, 0, 1)),
            "se_constipation": rng.choice((0, 0, 1, 1, 2)),
            "se_dizziness": rng.choice((0, 0, 0, 0, 1)),
        }
        entries.append(Entry("diary", day(i), answers, {}, f"{day(i).isoformat()}T19:00:00Z"))
    for d in sorted(drowsy):
        if missing[d]:
            continue
        events.append(Event("drowsiness", day(d), day(d), day(d)))
    return SimPatient(
        f"sim-{spec.seed}-{n:04d}", spec.start, round(base, 2), round(sd, 2), round(phi, 2), entries, events
    )


# -- anchors: simple rules to compare with (scored by backend.tools.yardstick through replay) ------
def _pain_series(entries: Sequence[Entry], today: date) -> list[tuple[date, float]]:
    days: dict[date, float] = {}
    for e in entries:
        v = e.answers.get("pain_avg")
        if e.questionnaire == "diary" and e.local_date <= today and isinstance(v, int | float):
            days[e.local_date] = float(v)
    return sorted(days.items())


def anchor_nrs7(entries: Sequence[Entry], today: date, enrolled_on: date) -> list[Finding]:
    """Anchor: today's pain NRS >= 7."""
    s = _pain_series(entries[-3:], today)
    if s and s[-1][0] == today and s[-1][1] >= 7:
        return [Finding("anchor_nrs7", "pain", "routine", f"pijn {s[-1][1]:g}", today)]
    return []


def anchor_jump2(entries: Sequence[Entry], today: date, enrolled_on: date) -> list[Finding]:
    """Anchor: today's pain >= the previous entry + 2."""
    s = _pain_series(entries[-3:], today)
    if len(s) >= 2 and s[-1][0] == today and s[-1][1] - s[-2][1] >= 2:
        return [Finding("anchor_jump2", "pain", "routine", "sprong", today)]
    return []


def anchor_mean3(entries: Sequence[Entry], today: date, enrolled_on: date) -> list[Finding]:
    """Anchor: mean of the last 3 entries >= median of the 28 days before + max(2, 30 %)."""
    s = _pain_series(entries[-40:], today)
    if len(s) < 10 or s[-1][0] != today:
        return []
    last3 = s[-3:]
    before = [v for d, v in s[:-3] if d >= last3[0][0] - timedelta(days=28)]
    if len(before) < 7:
        return []
    med = statistics.median(before)
    mean = sum(v for _, v in last3) / 3
    if mean >= med + max(2.0, 0.3 * med):
        return [Finding("anchor_mean3", "pain", "routine", "3-daags gemiddelde", today)]
    return []


ANCHORS: dict[str, Detector] = {
    "NRS ≥ 7": anchor_nrs7,
    "stijging ≥ 2 t.o.v. vorige": anchor_jump2,
    "3-daags gem. ≥ mediaan 28 d + max(2, 30 %)": anchor_mean3,
}
