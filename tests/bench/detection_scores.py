"""Detection scores by what the clinic sees: simulate a cohort, run `pijnwacht replay` over its
long CSV, score the alert rows against the labelled truth (backend/tools/yardstick.py, issue 12).

    .venv/bin/python tests/bench/detection_scores.py                      # every simulator
    .venv/bin/python tests/bench/detection_scores.py --simulators B --seeds 3 --patients 240 --days 180
    .venv/bin/python tests/bench/detection_scores.py --set noise_z=1.2    # thresholds override
    .venv/bin/python tests/bench/detection_scores.py --knob quiet_days --values 3,7,14

Simulators: `simulate` (backend/tools/simulate.py), `A` and `B` (backend/tools/cohorts.py: Gaussian, and
heavy tails + weekday + heaping + missing on bad days). For each: Pijnwacht's rules (default
thresholds, or `--set` ones, given to replay as a pathway [detection] table) and three simple
anchors through the same replay and lifecycle, the targets with PASS / FALL SHORT, and the
trade-off curve (sensitivity against false alerts) over one Thresholds field of the pain rule
(`--knob`; default: the first of KNOBS the current Thresholds has), every value a full replay.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import msgspec  # noqa: E402

from backend.alerts.detection import Thresholds  # noqa: E402
from backend.tools import cohorts, simulate, yardstick  # noqa: E402
from backend.tools.simulate import ANCHORS, SimPatient  # noqa: E402
from backend.tools.yardstick import TARGETS, Scores  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The pain rule's main knob, in order of preference (the first that Thresholds has).
KNOBS = ("noise_z", "change_points")
FACTORS = (0.6, 0.8, 1.0, 1.25, 1.5)
OURS = "Pijnwacht"
# name -> (maker of a cohort from patients, days, seed; default days: the unseen cohorts' sizes)
SIMULATORS: dict[str, tuple[Callable[[int, int, int], list[SimPatient]], int]] = {
    "simulate": (
        lambda n, days, seed: simulate.simulate(simulate.CohortSpec(patients=n, days=days, seed=seed)),
        180,
    ),
    "A": (
        lambda n, days, seed: cohorts.cohort(cohorts.Design(variant="A", patients=n, days=days, seed=seed)),
        150,
    ),
    "B": (
        lambda n, days, seed: cohorts.cohort(cohorts.Design(variant="B", patients=n, days=days, seed=seed)),
        180,
    ),
}
TITLES = {
    "simulate": "backend/tools/simulate.py (Gaussian AR(1), 1-2 day flares)",
    "A": "backend/tools/cohorts.py A (Gaussian AR(1), drift, 1-3 day flares, 3-25 % missing)",
    "B": "backend/tools/cohorts.py B (as A + Student-t noise, weekday effect, heaping, missing on bad days)",
}


def default_knob() -> str | None:
    fields = {f.name for f in msgspec.structs.fields(Thresholds)}
    return next((k for k in KNOBS if k in fields), None)


def knob_values(knob: str, factors: Sequence[float] = FACTORS) -> list[Any]:
    base = getattr(Thresholds(), knob)
    values = [round(base * f) if isinstance(base, int) else round(base * f, 3) for f in factors]
    return list(dict.fromkeys(values))


def measure(
    cohort: list[SimPatient],
    detection: dict[str, Any],
    knob: str | None,
    values: Sequence[Any],
    anchors: bool = True,
) -> dict[str, Any]:
    """Every figure for one cohort: ours, the anchors, the curve."""
    from backend.diary.questionnaires import load_library

    library = load_library(ROOT / "questionnaires")
    with tempfile.TemporaryDirectory(prefix="yardstick-") as tmp:
        folder = Path(tmp)
        long_csv = folder / "responses.long.csv"
        yardstick.write_long_csv(cohort, long_csv)

        def run(**kw: Any) -> Scores:
            return yardstick.score_cohort(cohort, folder, library=library, long_csv=long_csv, **kw)

        out: dict[str, Any] = {"rules": {OURS: run(detection=detection or None)}, "curve": []}
        if anchors:
            for name, detector in ANCHORS.items():
                out["rules"][name] = run(detector=detector, detection=detection or None)
        if knob:
            for v in values:
                out["curve"].append((v, run(detection={**detection, knob: v})))
    return out


def _n(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def table(name: str, size: str, result: dict[str, Any], knob: str | None) -> str:
    rules: dict[str, Scores] = result["rules"]
    first = rules[OURS]
    lines = [
        f"\n**{TITLES.get(name, name)}**, {size}: {first.pain_events} pain events "
        f"({first.steps} steps, {first.ramps} ramps), {first.drowsiness_days} severe-drowsiness days, "
        f"{first.silences} silences, {first.patient_months:.0f} patient-months\n",
        "| rule | sensitivity | false pain alerts / patient-month | median delay (d)"
        " | alerts / detected event | severe drowsiness caught (false) | silences caught |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule, s in rules.items():
        drowsy = silences = "–"
        if rule == OURS:
            drowsy = f"{s.drowsiness_caught}/{s.drowsiness_days} ({s.drowsiness_false})"
            silences = f"{s.silences_caught}/{s.silences}"
        lines.append(
            f"| {rule} | {s.sensitivity:.3f} | {s.false_pain_alerts_per_patient_month:.3f}"
            f" | {_n(s.median_delay_days, 1)} | {_n(s.alerts_per_detected_event)} | {drowsy} | {silences} |"
        )
    verdicts = yardstick.verdicts(first)
    lines.append(
        "\nTargets (Pijnwacht): "
        + " · ".join(
            f"{t} {TARGETS[t][0]} **{'PASS' if ok else 'FALL SHORT'}**" for t, ok in verdicts.items()
        )
    )
    if result["curve"]:
        default = getattr(Thresholds(), knob) if knob else None
        lines += [
            f"\nTrade-off over `{knob}` (default {default}):\n",
            f"| {knob} | sensitivity | false / patient-month | median delay (d) | alerts / detected event |",
            "|---|---|---|---|---|",
        ]
        for v, s in result["curve"]:
            mark = " (default)" if v == default else ""
            lines.append(
                f"| {v}{mark} | {s.sensitivity:.3f} | {s.false_pain_alerts_per_patient_month:.3f}"
                f" | {_n(s.median_delay_days, 1)} | {_n(s.alerts_per_detected_event)} |"
            )
    return "\n".join(lines)


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, json.loads(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulators", default=",".join(SIMULATORS), help="comma-separated: simulate,A,B")
    ap.add_argument("--seeds", default="11", help="comma-separated; each seed is its own cohort")
    ap.add_argument("--patients", type=int, default=240)
    ap.add_argument("--days", type=int, help="default: 180 (simulate, B), 150 (A)")
    ap.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--knob", default=default_knob(), help="Thresholds field of the curve ('' for none)")
    ap.add_argument("--values", help="comma-separated knob values (default: the default x 0.6 .. 1.5)")
    ap.add_argument("--no-anchors", action="store_true")
    ap.add_argument("--json", help="also write every figure as JSON to this file")
    args = ap.parse_args(argv)
    detection = dict(args.set)
    knob = args.knob or None
    values = [json.loads(v) for v in args.values.split(",")] if args.values and knob else []
    if knob and not values:
        values = knob_values(knob)
    dump: dict[str, Any] = {}
    ok = True
    for name in args.simulators.split(","):
        make, days = SIMULATORS[name]
        days = args.days or days
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            result = measure(make(args.patients, days, seed), detection, knob, values, not args.no_anchors)
            size = f"{args.patients} patients × {days} days, seed {seed}"
            print(table(name, size, result, knob))
            print(f"\n({time.perf_counter() - t0:.0f} s)", flush=True)
            ok &= all(yardstick.verdicts(result["rules"][OURS]).values())
            dump[f"{name}/{seed}"] = {
                "rules": {r: msgspec.to_builtins(s) for r, s in result["rules"].items()},
                "curve": {"knob": knob, "points": [[v, msgspec.to_builtins(s)] for v, s in result["curve"]]},
            }
    if detection:
        print(f"\nThresholds set: {detection}")
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1, ensure_ascii=False))
    print(f"\nEvery target met on every cohort: {'yes' if ok else 'no'}")
    return 0


def run(quick: bool = False) -> list[Any]:
    """`make bench` (part 3): our rules' figures on each simulator with their verdicts; the
    full tables (anchors, curve) are printed."""
    from tests.bench.common import Figure

    figures = []
    patients = 100 if quick else 240
    knob = default_knob()
    for name, (make, days) in SIMULATORS.items():
        result = measure(make(patients, days, 11), {}, knob, knob_values(knob) if knob else [])
        print(table(name, f"{patients} patients × {days} days, seed 11", result, knob), flush=True)
        s: Scores = result["rules"][OURS]
        v = yardstick.verdicts(s)
        anchor = result["rules"][list(ANCHORS)[-1]]
        label = f"detection {name}"
        figures += [
            Figure(
                "3 detection",
                f"{label}: pain sensitivity",
                s.sensitivity,
                "",
                target=TARGETS["pain sensitivity"][0],
                ok=v["pain sensitivity"],
                note=f"{s.caught}/{s.pain_events}; anchor 3-day mean {anchor.sensitivity:.3f}",
            ),
            Figure(
                "3 detection",
                f"{label}: false pain alerts",
                s.false_pain_alerts_per_patient_month,
                "/patient-month",
                target=TARGETS["false pain alerts / patient-month"][0],
                ok=v["false pain alerts / patient-month"],
                note=f"anchor 3-day mean {anchor.false_pain_alerts_per_patient_month:.2f}",
            ),
            Figure(
                "3 detection",
                f"{label}: median delay",
                s.median_delay_days,
                "days",
                target=TARGETS["median delay (days)"][0],
                ok=v["median delay (days)"],
            ),
            Figure(
                "3 detection",
                f"{label}: alerts per detected event",
                s.alerts_per_detected_event,
                "",
                target=TARGETS["alerts per detected event"][0],
                ok=v["alerts per detected event"],
            ),
            Figure(
                "3 detection",
                f"{label}: severe drowsiness caught",
                s.drowsiness_caught / s.drowsiness_days if s.drowsiness_days else None,
                "",
                target=TARGETS["severe drowsiness"][0],
                ok=v["severe drowsiness"],
                note=f"{s.drowsiness_caught}/{s.drowsiness_days}, {s.drowsiness_false} false",
            ),
            Figure(
                "3 detection",
                f"{label}: silences caught",
                s.silences_caught / s.silences if s.silences else None,
                "",
                target=TARGETS["silences caught"][0],
                ok=v["silences caught"],
                note=f"{s.silences_caught}/{s.silences}",
            ),
        ]
    return figures


if __name__ == "__main__":
    sys.exit(main())
