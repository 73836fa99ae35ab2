"""Detection scores on simulated cohorts: our default rules against three simple anchors.

    .venv/bin/python tests/bench/detection_scores.py [--seeds 1,2,3] [--patients 100]
                                                    [--days 180] [--json FILE]

Prints a markdown table (for the README) per cohort variant, every figure the mean over the
seeds with the worst seed in brackets, and the targets of issue 4. Cohort variants: the default
clinic (baseline 2.5-7, SD 0.8-1.8, AR(1) 0.3-0.7), noisier patients (SD 1.2-2.4), more missing
days (15-40 %), stickier pain (AR(1) 0.5-0.8). The seeds are not the ones the test uses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.simulate import ANCHORS, CohortSpec, Scores, our_rules, score, simulate  # noqa: E402

VARIANTS: dict[str, dict] = {
    "default": {},
    "noisy (SD 1.2-2.4)": {"noise_sd": (1.2, 2.4)},
    "sparse (15-40 % missing)": {"missing": (0.15, 0.4)},
    "sticky (AR 0.5-0.8)": {"autocorrelation": (0.5, 0.8)},
}
OURS = "Pijnwacht pain_rise (default)"
DETECTORS = [OURS, *ANCHORS]
TARGETS = "sensitivity ≥ 0.90 · false ≤ 0.25 /patient-month · median delay ≤ 4 d · ≤ 1.2 alerts/event"


def _one(job: tuple[str, int, int, int]) -> tuple[str, int, dict[str, Scores]]:
    variant, seed, patients, days = job
    cohort = simulate(CohortSpec(seed=seed, patients=patients, days=days, **VARIANTS[variant]))
    out = {OURS: score(cohort, our_rules())}
    for name, detector in ANCHORS.items():
        out[name] = score(cohort, detector)
    return variant, seed, out


def _fmt(values: list[float | None], worst: str, digits: int) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    mean = statistics.mean(vals)
    bad = max(vals) if worst == "max" else min(vals)
    text = f"{mean:.{digits}f}"
    if len(vals) > 1:
        text += f" ({bad:.{digits}f})"
    return text


def table(results: dict[str, dict[int, dict[str, Scores]]]) -> str:
    lines: list[str] = []
    for variant, by_seed in results.items():
        seeds = sorted(by_seed)
        first = by_seed[seeds[0]][OURS]
        lines.append(
            f"\n**{variant}** — seeds {', '.join(map(str, seeds))}; per seed ≈ "
            f"{first.pain_events} pain events, {first.drowsiness_days} severe-drowsiness days, "
            f"{first.silences} silences\n"
        )
        lines.append(
            "| rule | sensitivity (≤ 7 d) | false pain alerts / patient-month | median delay (d)"
            " | alerts / detected event | drowsiness same day | 5-day silences caught |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for name in DETECTORS:
            s = [by_seed[sd][name] for sd in seeds]
            drowsy = silences = "–"
            if name == OURS:
                drowsy = f"{sum(x.drowsiness_same_day for x in s)}/{sum(x.drowsiness_days for x in s)}"
                silences = f"{sum(x.silences_caught for x in s)}/{sum(x.silences for x in s)}"
            lines.append(
                f"| {name} | {_fmt([x.sensitivity for x in s], 'min', 3)}"
                f" | {_fmt([x.false_pain_alerts_per_patient_month for x in s], 'max', 2)}"
                f" | {_fmt([x.median_delay_days for x in s], 'max', 1)}"
                f" | {_fmt([x.alerts_per_detected_event for x in s], 'max', 2)}"
                f" | {drowsy} | {silences} |"
            )
    lines.append(f"\nMean over seeds (worst seed). Targets: {TARGETS}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="11,12,13")
    ap.add_argument("--patients", type=int, default=100)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    ap.add_argument("--json", help="also write every figure as JSON to this file")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v for v in VARIANTS if v in args.variants.split(",") or v == args.variants]
    if not variants:
        variants = [v for v in VARIANTS if any(v.startswith(x) for x in args.variants.split(","))]
    jobs = [(v, seed, args.patients, args.days) for v in variants for seed in seeds]
    started = time.perf_counter()
    results: dict[str, dict[int, dict[str, Scores]]] = {v: {} for v in variants}
    with ProcessPoolExecutor(args.workers) as pool:
        for variant, seed, scores in pool.map(_one, jobs):
            results[variant][seed] = scores
    print(f"{args.patients} patients x {args.days} days per cohort; {time.perf_counter() - started:.0f} s")
    print(table(results))
    if args.json:
        import msgspec

        data = {
            v: {str(sd): {name: msgspec.to_builtins(s) for name, s in by.items()} for sd, by in r.items()}
            for v, r in results.items()
        }
        Path(args.json).write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
