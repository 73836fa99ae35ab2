"""A second cohort simulator, built another way than backend/tools/simulate.py, so that no rule is
ever tuned on one generator.

It follows the description of the cohorts the rules are judged on (issue 12), in two variants:

- **A**: personal baselines 2.5-7; AR(1) day-to-day noise with a within-person SD of 0.8-1.8
  and a carry-over of 0.3-0.7 (Gaussian); a slow drift (a linear trend of up to ±1 point over
  the diary plus a slow wave); 1-3 day flares in everyone; 3-25 % missing days, at random.
- **B**: the same, with heavier tails than Gaussian (Student-t innovations, 3-6 degrees of
  freedom, scaled to the same SD), a weekday effect, answers heaped on even numbers, and more
  missing days on bad days (missing not at random: the odds of skipping rise with the pain
  above the patient's own level).

The method: every patient has an own random stream (seeded by cohort seed, variant and
number, so one patient never changes when the cohort grows); a latent daily pain is the sum
of separately drawn components (level, drift, AR noise, flares, labelled events, weekday);
the diary answers are an observation model over it (rounding, heaping, the other items
correlated with the pain), and missingness is drawn from the latent pain.

Labelled events (kind, start, onset, end): steps of +2 to +3.5 lasting 2-6 weeks; ramps of
+2.5 to +4 rising linearly over two weeks, then held 2-4 weeks (onset: the first day the true
rise reaches 2 points); severe drowsiness days (the only days `se_drowsiness` is 3); silences
of 5-14 days without an entry. Pain events start after a six-week run-in (a baseline first;
the description leaves this open) and lie at least four weeks apart; silences and drowsiness
days stay clear of pain events.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from backend.alerts.detection import Entry
from backend.tools.simulate import Event, SimPatient

Variant = Literal["A", "B"]
NOTES = ("drukke dag, veel gelopen", "slecht geslapen", 'pijn "zeurend"', "bezoek gehad")


class Design(msgspec.Struct, kw_only=True, frozen=True):
    """The knobs of a cohort (defaults: the description of the cohorts rules are judged on)."""

    variant: Variant = "A"
    patients: int = 240
    days: int = 150
    seed: int = 1
    start: date = date(2026, 2, 2)  # the diary crosses the change to summer time
    timezone: str = "Europe/Amsterdam"
    baseline: tuple[float, float] = (2.5, 7.0)
    noise_sd: tuple[float, float] = (0.8, 1.8)
    carry_over: tuple[float, float] = (0.3, 0.7)
    missing: tuple[float, float] = (0.03, 0.25)
    # Slow drift: a linear trend of up to this many points over the diary, and a slow wave.
    drift_points: float = 1.0
    wave_points: float = 0.5
    wave_days: tuple[int, int] = (60, 200)
    # Flares in everyone: one per 2-5 weeks on average, 1-3 days, fading.
    flare_interval_days: tuple[float, float] = (14.0, 35.0)
    flare_size: tuple[float, float] = (1.5, 4.5)
    flare_days: tuple[int, int] = (1, 3)
    # Labelled pain events: how many per patient (weights for 0, 1, 2), kinds and shapes.
    pain_event_weights: tuple[float, float, float] = (0.5, 0.38, 0.12)
    ramp_share: float = 0.4
    step_size: tuple[float, float] = (2.0, 3.5)
    step_days: tuple[int, int] = (14, 42)
    ramp_size: tuple[float, float] = (2.5, 4.0)
    ramp_days: int = 14
    hold_days: tuple[int, int] = (14, 28)
    run_in_days: int = 42
    gap_days: int = 28
    drowsy_share: float = 0.25
    silence_share: float = 0.25
    silence_days: tuple[int, int] = (5, 14)
    # Variant B only.
    tail_df: tuple[float, float] = (3.0, 6.0)
    weekday_sd: tuple[float, float] = (0.15, 0.5)
    heaping: tuple[float, float] = (0.15, 0.5)
    # Log-odds of skipping a day per point of pain above the patient's own level.
    mnar_per_point: float = 0.4


def cohort(design: Design) -> list[SimPatient]:
    """The seeded cohort: every patient's diary entries (oldest first) and labelled events."""
    return [_patient(design, n) for n in range(design.patients)]


def _patient(d: Design, n: int) -> SimPatient:
    rng = random.Random(f"pijnwacht-cohort/{d.variant}/{d.seed}/{n}")
    heavy = d.variant == "B"
    days = d.days
    level = rng.uniform(*d.baseline)
    sd = rng.uniform(*d.noise_sd)
    phi = rng.uniform(*d.carry_over)

    drift = _drift(rng, d)
    noise = _ar1(rng, days, sd, phi, rng.uniform(*d.tail_df) if heavy else None)
    flares = _flares(rng, d)
    events, shift = _pain_events(rng, d)
    weekday = [0.0] * 7
    if heavy:
        w = rng.uniform(*d.weekday_sd)
        weekday = [rng.gauss(0, w) for _ in range(7)]
        mean = sum(weekday) / 7
        weekday = [x - mean for x in weekday]
    day = [d.start + timedelta(days=i) for i in range(days)]
    latent = [
        level + drift[i] + noise[i] + flares[i] + shift[i] + weekday[day[i].weekday()] for i in range(days)
    ]
    # Own level without events: what "a bad day" is measured against (MNAR).
    usual = [level + drift[i] for i in range(days)]

    present = _present(rng, d, latent, usual, heavy)
    busy = [False] * days  # days near a pain event: silences and drowsiness stay away
    for e in events:
        a = max(0, (e.start - d.start).days - 14)
        b = min(days - 1, (e.end - d.start).days + 7)
        for i in range(a, b + 1):
            busy[i] = True
    if rng.random() < d.silence_share:
        silence = _silence(rng, d, busy)
        if silence is not None:
            s, length = silence
            for i in range(s, s + length):
                present[i] = False
            present[s - 1] = True
            if s + length < days:
                present[s + length] = True
            events.append(Event("silence", day[s], day[s], day[s + length - 1]))
            for i in range(max(0, s - 7), min(days, s + length + 7)):
                busy[i] = True
    drowsy: list[int] = []
    if rng.random() < d.drowsy_share:
        for _ in range(rng.choice((1, 1, 1, 2))):
            candidates = [i for i in range(7, days) if not busy[i] and all(abs(i - j) >= 21 for j in drowsy)]
            if candidates:
                i = rng.choice(candidates)
                drowsy.append(i)
                present[i] = True
                events.append(Event("drowsiness", day[i], day[i], day[i]))
    habits = _Habits(rng, level, heavy)
    zone = ZoneInfo(d.timezone)
    entries: list[Entry] = []
    for i in range(days):
        if not present[i]:
            continue
        answers = habits.answers(rng, latent[i] - usual[i], latent[i], i in drowsy)
        at = _authored(rng, day[i], zone)
        if rng.random() < 0.01:
            # An edit: a first answer a point off, corrected a little later the same evening.
            first = dict(answers, pain_avg=min(10, max(0, int(answers["pain_avg"]) + rng.choice((-1, 1)))))
            first["pain_worst"] = max(first["pain_avg"], int(answers["pain_worst"]))
            entries.append(Entry("diary", day[i], first, {}, _iso(at - timedelta(minutes=20))))
        entries.append(Entry("diary", day[i], answers, {}, _iso(at)))
    events.sort(key=lambda e: (e.start, e.kind))
    return SimPatient(
        f"coh{d.variant}-{d.seed}-{n:04d}",
        d.start,
        round(level, 2),
        round(sd, 2),
        round(phi, 2),
        entries,
        events,
    )


def _drift(rng: random.Random, d: Design) -> list[float]:
    total = rng.uniform(-d.drift_points, d.drift_points)
    amplitude = rng.uniform(0, d.wave_points)
    period = rng.uniform(*d.wave_days)
    phase = rng.uniform(0, 2 * math.pi)
    return [
        total * i / max(1, d.days - 1) + amplitude * math.sin(2 * math.pi * i / period + phase)
        for i in range(d.days)
    ]


def _ar1(rng: random.Random, days: int, sd: float, phi: float, df: float | None) -> list[float]:
    """AR(1) noise whose stationary SD is `sd`: Gaussian, or Student-t with `df` degrees of
    freedom scaled to unit variance (heavier tails, same SD)."""
    innovation_sd = sd * math.sqrt(1 - phi * phi)

    def draw() -> float:
        z = rng.gauss(0, 1)
        if df is None:
            return z
        chi2 = rng.gammavariate(df / 2, 2)
        return z / math.sqrt(chi2 / df) / math.sqrt(df / (df - 2))

    x = sd * draw()
    out = []
    for _ in range(days):
        x = phi * x + innovation_sd * draw()
        out.append(x)
    return out


def _flares(rng: random.Random, d: Design) -> list[float]:
    out = [0.0] * d.days
    interval = rng.uniform(*d.flare_interval_days)
    i = int(rng.expovariate(1 / interval))
    while i < d.days:
        size = rng.uniform(*d.flare_size)
        length = rng.randint(*d.flare_days)
        for k in range(length):
            if i + k < d.days:
                out[i + k] += size * (1.0 if k == 0 else rng.uniform(0.5, 1.0))
        i += length + 1 + int(rng.expovariate(1 / interval))
    return out


def _pain_events(rng: random.Random, d: Design) -> tuple[list[Event], list[float]]:
    shift = [0.0] * d.days
    events: list[Event] = []
    count = rng.choices((0, 1, 2), weights=d.pain_event_weights)[0]
    earliest = d.run_in_days
    # An event must leave two weeks of diary after its onset to be judged at all.
    for _ in range(count):
        ramp = rng.random() < d.ramp_share
        latest = d.days - 14 - (d.ramp_days if ramp else 0)
        if earliest > latest:
            break
        start = rng.randint(earliest, min(latest, earliest + 70))
        if ramp:
            size = rng.uniform(*d.ramp_size)
            end = min(d.days - 1, start + d.ramp_days - 1 + rng.randint(*d.hold_days))
            onset = start + math.ceil(2.0 * d.ramp_days / size) - 1
            for i in range(start, end + 1):
                shift[i] = size * min(1.0, (i - start + 1) / d.ramp_days)
        else:
            size = rng.uniform(*d.step_size)
            end = min(d.days - 1, start + rng.randint(*d.step_days) - 1)
            onset = start
            for i in range(start, end + 1):
                shift[i] = size
        day = d.start + timedelta(days=start)
        events.append(
            Event(
                "ramp" if ramp else "step",
                day,
                d.start + timedelta(days=onset),
                d.start + timedelta(days=end),
                round(size, 2),
            )
        )
        earliest = end + d.gap_days
    return events, shift


def _present(
    rng: random.Random, d: Design, latent: list[float], usual: list[float], mnar: bool
) -> list[bool]:
    rate = rng.uniform(*d.missing)
    base = math.log(rate / (1 - rate))
    out = []
    for i in range(d.days):
        logit = base + (d.mnar_per_point * max(0.0, latent[i] - usual[i]) if mnar else 0.0)
        out.append(rng.random() >= 1 / (1 + math.exp(-logit)))
    out[0] = True  # the diary starts on its first day
    return out


def _silence(rng: random.Random, d: Design, busy: list[bool]) -> tuple[int, int] | None:
    length = rng.randint(*d.silence_days)
    options = [s for s in range(14, d.days - length - 1) if not any(busy[max(0, s - 7) : s + length + 7])]
    return (rng.choice(options), length) if options else None


class _Habits:
    """How one patient answers the other diary items, given the day's pain."""

    def __init__(self, rng: random.Random, level: float, heavy: bool):
        self.heap = rng.uniform(0.15, 0.5) if heavy else 0.0
        self.worst_gap = rng.uniform(0.5, 2.5)
        self.sleep = rng.uniform(5.5, 8.0)
        self.sleep_quality = rng.uniform(4.0, 8.0)
        self.activity = rng.uniform(3.0, 8.0)
        self.mood = rng.uniform(3.5, 8.0)
        self.rescue = rng.uniform(0.05, 1.5)
        self.side = {item: rng.uniform(0.0, 0.35) for item in ("nausea", "constipation", "dizziness")}
        self.drowsy = rng.uniform(0.0, 0.3)
        self.skips_optional = rng.uniform(0.0, 0.1)
        self.notes = rng.uniform(0.0, 0.05)

    def _nrs(self, rng: random.Random, x: float) -> int:
        v = min(10, max(0, round(x)))
        if v % 2 and rng.random() < self.heap:
            v = v + 1 if x > v else v - 1
        return min(10, max(0, v))

    def answers(self, rng: random.Random, excess: float, pain: float, drowsy: bool) -> dict[str, object]:
        avg = self._nrs(rng, pain)
        worst = max(avg, self._nrs(rng, pain + rng.gammavariate(2.0, self.worst_gap / 2)))
        sleep = min(24.0, max(0.0, round(2 * rng.gauss(self.sleep - 0.3 * excess, 0.9)) / 2))
        out: dict[str, object] = {"pain_avg": avg, "pain_worst": worst, "sleep_hours": sleep}
        for item, value in (
            ("sleep_quality", self.sleep_quality - 0.5 * excess + 0.5 * (sleep - self.sleep)),
            ("activity", self.activity - 0.6 * excess),
            ("mood", self.mood - 0.4 * excess),
        ):
            if rng.random() >= self.skips_optional:
                out[item] = self._nrs(rng, value + rng.gauss(0, 1.1))
        out["rescue_doses"] = min(30, _poisson(rng, self.rescue * math.exp(0.35 * excess)))
        out["se_drowsiness"] = 3 if drowsy else _level(rng, self.drowsy, top=2)
        for item, p in self.side.items():
            out[f"se_{item}"] = _level(rng, p, top=3)
        if rng.random() < self.notes:
            out["note"] = rng.choice(NOTES)
        return out


def _level(rng: random.Random, p: float, top: int) -> int:
    """A side-effect level 0-3: none with 1 - p, else mostly mild, sometimes worse."""
    if rng.random() >= p:
        return 0
    return min(top, rng.choices((1, 2, 3), weights=(78, 20, 2))[0])


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _authored(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    """Most answer in the evening; some the next morning, for the day before."""
    if rng.random() < 0.1:
        return datetime.combine(day + timedelta(days=1), time(rng.randint(7, 10), rng.randint(0, 59)), zone)
    return datetime.combine(day, time(rng.randint(19, 22), rng.randint(0, 59)), zone)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
