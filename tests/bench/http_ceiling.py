"""Benchmark 1: the HTTP ceiling ratio — the full write path against the bare endpoint.

One `pijnwacht serve` process (pinned to CPU 1) is driven by wrk (pinned to CPU 0) in the same
run, alternating `GET /healthz` and `PUT /api/v1/responses/{uuid}` (authenticated, validated,
stored with fsync'd group commit, task bookkeeping and detection in the same transaction).
The database holds 1 000 enrolled patients with 60 days of diaries each; the PUTs rotate
over their device tokens. Measured twice: with the configured default log level (info: one
uvicorn access-log line per request) and with PIJNWACHT_LOG_LEVEL=warning (no access log).

(Named http_ceiling.py, not http.py: a file named http.py in this folder would shadow the
standard library's http package for any script run from here.)
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.common import (  # noqa: E402
    LUA,
    Figure,
    Load,
    Server,
    median,
    seed,
    workdir,
    wrk,
    wrk_on,
)

PATIENTS = 1000
HISTORY_DAYS = 60
CONNECTIONS = 32
TARGET_RATIO = 0.40


def measure(db: Path, load: Load, *, log_level: str, seconds: float, runs: int) -> dict:
    with Server(db, log_level=log_level) as srv:
        # Warm up: imports, caches, SQLite page cache, the first checkpoint.
        wrk(srv.url + "/healthz", seconds=1, connections=CONNECTIONS)
        wrk(srv.url, seconds=2, connections=CONNECTIONS, script=LUA / "put.lua", args=load.args())
        health, put, health_cpu, put_cpu = [], [], [], []
        for _ in range(runs):
            h, hc = wrk_on(srv, "/healthz", seconds=seconds, connections=CONNECTIONS)
            p, pc = wrk_on(srv, seconds=seconds, connections=CONNECTIONS,
                           script=LUA / "put.lua", args=load.args())
            health.append(h)
            put.append(p)
            health_cpu.append(hc)
            put_cpu.append(pc)
        peak = srv.sample_memory()
    bad = sum(r.non_2xx + r.errors for r in health + put)
    return {
        "healthz": [r.rps for r in health], "put": [r.rps for r in put],
        "ratio": [p.rps / h.rps for h, p in zip(health, put, strict=True)],
        "put_p50": median(r.p50_ms for r in put), "put_p99": median(r.p99_ms for r in put),
        "bad": bad, "peak_mb": peak,
        "healthz_cpu": health_cpu, "put_cpu": put_cpu,
        "cpu_ratio": [p / h for h, p in zip(health_cpu, put_cpu, strict=True)],
    }


def run(quick: bool = False) -> list[Figure]:
    """Measure and return the figures (medians of several alternating runs)."""
    folder = workdir()
    db = folder / "http.db"
    creds = seed(db, patients=PATIENTS, history_patients=PATIENTS, days=HISTORY_DAYS, tokens=PATIENTS)
    load = Load(folder, creds)
    seconds, runs = (3, 1) if quick else (8, 3)
    figures: list[Figure] = []
    for level, label in (("info", "default log level info, access log on"),
                         ("warning", "log level warning, no access log")):
        m = measure(db, load, log_level=level, seconds=seconds, runs=runs)
        ratio = median(m["ratio"])
        note = f"{label}; {CONNECTIONS} connections"
        if m["bad"]:
            note += f"; {m['bad']} non-2xx/socket errors!"
        figures += [
            Figure("1 http", f"GET /healthz [{level}]", median(m["healthz"]), "req/s",
                   note=note, runs=m["healthz"]),
            Figure("1 http", f"PUT /responses/{{uuid}} [{level}]", median(m["put"]), "req/s",
                   note=f"p50 {m['put_p50']:.1f} ms, p99 {m['put_p99']:.1f} ms", runs=m["put"]),
            Figure("1 http", f"ceiling ratio PUT/healthz [{level}]", ratio * 100, "%",
                   target=f">= {TARGET_RATIO:.0%}",
                   ok=None if level != "info" else (ratio >= TARGET_RATIO and not m["bad"]),
                   note="the configured default" if level == "info" else "for comparison",
                   runs=[r * 100 for r in m["ratio"]]),
            Figure("1 http", f"CPU ceiling ratio PUT/healthz [{level}]", median(m["cpu_ratio"]) * 100,
                   "%", note=f"requests per server CPU-second: healthz {median(m['healthz_cpu']):,.0f},"
                   f" PUT {median(m['put_cpu']):,.0f} (robust when other work shares the machine)",
                   runs=[r * 100 for r in m["cpu_ratio"]]),
            Figure("7 memory", f"server peak RSS (http, {level})", m["peak_mb"], "MB"),
        ]
    return figures


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(run(quick="--quick" in sys.argv)))
