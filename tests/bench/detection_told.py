"""A comparator for the pain rule: a rule told each simulated patient's true level, day-to-day
SD and carry-over, scored like Pijnwacht's rules (backend/tools/yardstick.py).

The simulators know what no rule can (SimPatient.baseline, .noise_sd, .autocorrelation). This
"told" rule judges each diary day by the window of the last 4 to 8 days (at least 4 entries)
whose mean stands out most from the true level, in standard errors of the true AR(1) noise, and
opens a pain row when that reaches a limit and no alert of its is open; the alert closes after
`QUIET_DAYS` days below it. Sweeping the limit gives its trade-off curve; its best sensitivity
within the false-alert budget is printed. It is not told the drift, the flares or the events
and has no test against flares, so it is no upper bound: it shows what estimating the level
and the noise from the diary costs Pijnwacht's rule, and what knowing them would not buy.

    .venv/bin/python tests/bench/detection_told.py --simulators simulate,A,B --seeds 1,2
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.tools import yardstick  # noqa: E402
from backend.tools.replay import AlertRow  # noqa: E402
from backend.tools.simulate import SimPatient  # noqa: E402

MIN_ENTRIES = 4
WINDOW_DAYS = (4, 8)
QUIET_DAYS = 3
BUDGET = 0.25  # false pain alerts per patient-month (issue 12)
LIMITS = tuple(round(1.5 + 0.1 * i, 1) for i in range(36))  # 1.5 .. 5.0 standard errors


def standard_error(sd: float, phi: float, n: int) -> float:
    """SE of the mean of n consecutive days of AR(1) noise with marginal SD `sd`."""
    inflation = 1 + 2 * sum((1 - k / n) * phi**k for k in range(1, n))
    return sd * math.sqrt(inflation / n)


def evidence(p: SimPatient) -> list[tuple[date, float]]:
    """Per diary day: the strongest window's rise above the true level, in standard errors."""
    pain: dict[date, float] = {}
    for e in p.entries:
        value = e.answers.get("pain_avg")
        if e.questionnaire == "diary" and isinstance(value, int | float):
            pain[e.local_date] = float(value)  # the later entry of a day wins
    days = sorted(pain)
    out = []
    for i, today in enumerate(days):
        best = -math.inf
        for w in range(WINDOW_DAYS[0], WINDOW_DAYS[1] + 1):
            values = [pain[d] for d in days[max(0, i - w + 1) : i + 1] if (today - d).days < w]
            if len(values) >= MIN_ENTRIES:
                rise = sum(values) / len(values) - p.baseline
                best = max(best, rise / standard_error(p.noise_sd, p.autocorrelation, len(values)))
        out.append((today, best))
    return out


def rows(p: SimPatient, z: Sequence[tuple[date, float]], limit: float) -> list[AlertRow]:
    """The pain rows the told rule opens at this limit (one open alert, closes after quiet days)."""
    out: list[AlertRow] = []
    last_over: date | None = None
    for today, value in z:
        if value >= limit:
            if last_over is None or (today - last_over).days > QUIET_DAYS:
                out.append(AlertRow(p.id, "told", "pain", "routine", today, ""))
            last_over = today
    return out


def curve(
    cohort: Sequence[SimPatient], limits: Sequence[float] = LIMITS
) -> list[tuple[float, yardstick.Scores]]:
    """(limit, scores) of the told rule over the limits."""
    z = {p.id: evidence(p) for p in cohort}
    events = {p.id: p.events for p in cohort}
    diary = {p.id: [e.local_date for e in p.entries if e.questionnaire == "diary"] for p in cohort}
    return [
        (limit, yardstick.score_alerts(events, [r for p in cohort for r in rows(p, z[p.id], limit)], diary))
        for limit in limits
    ]


def best_within(
    points: Sequence[tuple[float, yardstick.Scores]], budget: float = BUDGET
) -> tuple[float, yardstick.Scores] | None:
    """The point of best sensitivity within the false-alert budget."""
    within = [(lim, s) for lim, s in points if s.false_pain_alerts_per_patient_month <= budget]
    return max(within, key=lambda p: (p[1].sensitivity, -p[0]), default=None)


def table(points: Sequence[tuple[float, yardstick.Scores]]) -> str:
    best = best_within(points)
    lines = [
        "| limit (SE) | sensitivity | false / patient-month | median delay (d) | alerts / detected event |",
        "|---|---|---|---|---|",
    ]
    for lim, s in points[::5]:
        lines.append(
            f"| {lim} | {s.sensitivity:.3f} | {s.false_pain_alerts_per_patient_month:.3f}"
            f" | {s.median_delay_days} | {s.alerts_per_detected_event} |"
        )
    if best is not None:
        lim, s = best
        lines.append(
            f"\nBest within {BUDGET} false / patient-month: sensitivity **{s.sensitivity:.3f}** "
            f"(limit {lim}; false {s.false_pain_alerts_per_patient_month:.3f}, "
            f"delay {s.median_delay_days} d, {s.alerts_per_detected_event} alerts / detected event)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from tests.bench.detection_scores import SIMULATORS, TITLES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulators", default=",".join(SIMULATORS))
    ap.add_argument("--seeds", default="11")
    ap.add_argument("--patients", type=int, default=240)
    ap.add_argument("--days", type=int)
    args = ap.parse_args(argv)
    for name in args.simulators.split(","):
        make, days = SIMULATORS[name]
        for seed in (int(s) for s in args.seeds.split(",")):
            cohort = make(args.patients, args.days or days, seed)
            print(
                f"\n**{TITLES[name]}**, {args.patients} × {args.days or days} days, seed {seed}: told rule\n"
            )
            print(table(curve(cohort)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
