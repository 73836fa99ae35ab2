"""`make bench`: every benchmark in one run, one table, bench-results/bench.json.

    .venv/bin/python -m tests.bench                   # everything (about 10-15 minutes)
    .venv/bin/python -m tests.bench --quick           # smaller and shorter (a few minutes)
    .venv/bin/python -m tests.bench --only http,batch # some parts

Parts: http (1), batch (2), detection (3), tick (4), clinic (5), push (6), export (7),
edits (8: cost flat in edits and history, the one-patient write load; issue 17).
Memory (7) is gathered from the others: the servers' peak RSS and the export's.
A part whose module has not landed yet is listed as "not measured", and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from tests.bench import common
from tests.bench.common import Figure, not_measured, table

PARTS = ["http", "batch", "detection", "tick", "clinic", "push", "export", "edits"]
LABELS = dict(
    zip(
        PARTS,
        ["1 http", "2 batch", "3 detection", "4 tick", "5 clinic", "6 push", "7 memory", "8 edits"],
        strict=True,
    )
)

PLACEMENT = (
    "wrk is pinned to CPU 0 and the server to CPU 1 (taskset), so the load generator never "
    "takes the server's core; figures are medians of several runs in this one process run."
)


def _part(name: str) -> Callable[[bool], list[Figure]]:
    if name == "http":
        from tests.bench import http_ceiling

        return http_ceiling.run
    if name == "batch":
        from tests.bench import batch

        return batch.run
    if name == "edits":
        from tests.bench import edits

        return edits.run
    from tests.bench import others

    return getattr(others, name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data, shorter runs")
    ap.add_argument("--only", default="", help=f"comma-separated parts: {','.join(PARTS)}")
    ap.add_argument("--out", default=str(common.RESULTS / "bench.json"))
    args = ap.parse_args(argv)
    chosen = [p.strip() for p in args.only.split(",") if p.strip()] or PARTS
    unknown = set(chosen) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    if not shutil.which("wrk") and {"http", "batch"} & set(chosen):
        print("wrk is not installed (apt-get install wrk): http and batch need it", file=sys.stderr)
        return 2
    info = common.machine()
    print(
        f"Pijnwacht benchmarks on {info['cpus']} CPUs ({info['cpu']}), Python {info['python']},"
        f" load average {info['load_average']:.1f}{' (quick)' if args.quick else ''}",
        flush=True,
    )
    if info["taskset"]:
        print(PLACEMENT)
    else:
        print("taskset is missing: wrk and the server share the CPUs (the ratio is pessimistic).")
    figures: list[Figure] = []
    timings: dict[str, float] = {}
    for name in chosen:
        t0 = time.perf_counter()
        print(f"\n== {name} ...", flush=True)
        try:
            got = _part(name)(args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken part must not lose the others
            traceback.print_exc()
            got = [not_measured(LABELS[name], name, f"{type(exc).__name__}: {exc}"[:160])]
        finally:
            common.clean_scratch()
        timings[name] = time.perf_counter() - t0
        print(table(got), flush=True)
        figures += got
    # Memory (7): the largest server RSS seen across parts, next to the export's.
    servers = [
        f.value
        for f in figures
        if f.part == "7 memory" and f.name.startswith("server") and f.value is not None
    ]
    if servers:
        figures.append(
            Figure(
                "7 memory",
                "server peak RSS, all parts",
                max(servers),
                "MB",
                note="VmHWM of each `pijnwacht serve` process; the largest",
            )
        )
    order = {p: n for n, p in enumerate(["1", "2", "3", "4", "5", "6", "8", "7"])}
    figures.sort(key=lambda f: order.get(f.part[:1], 9))
    print("\n" + table(figures))
    common.RESULTS.mkdir(exist_ok=True)
    result = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": info,
        "placement": PLACEMENT if info["taskset"] else "unpinned",
        "seconds_per_part": timings,
        "figures": [f.as_dict() for f in figures],
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"\nwritten to {args.out}; took {sum(timings.values()) / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
