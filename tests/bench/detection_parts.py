"""Benchmark 3: detection — rule time per new response, and `pijnwacht replay` rows/s.

Both go through the interfaces the rest of the system uses, so they measure what runs live:
- `alerts.evaluate_patient(conn, patient_id, today, library, pathways)`, the after-store hook
  every new response triggers (load the patient's history, run every rule, update alerts),
  for patients with 365 days of diaries, each call inside a transaction rolled back after
  (the state stays the same for the next call);
- `pijnwacht replay RESPONSES.csv -o ALERTS.csv` (contract.md) over a long CSV made by
  `pijnwacht export --format long` from the same database; rows/s of answer rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.common import BIN, ROOT, Figure, median, not_measured, seed, workdir  # noqa: E402

# "Well under 1 ms": half of it, so a PASS leaves room for the rest of the request.
TARGET_MS = 0.5


def rule_time(db: Path, patient_ids: list[str]) -> list[float]:
    from backend.alerts import lifecycle as alerts
    from backend.diary.questionnaires import load_library
    from backend.patients.pathways import load_pathways
    from backend.platform.settings import load_settings
    from backend.platform.storage import connect

    folder = load_settings({}).questionnaires_dir
    library = load_library(folder)
    pathways = load_pathways(folder, library)
    conn = connect(db)
    today = datetime.now(UTC).date()
    times = []
    for pid in patient_ids:
        conn.execute("BEGIN IMMEDIATE")
        # CPU time of this thread: the rules are pure computation plus SQLite reads from the
        # page cache, and on a shared machine wall time mostly measures the neighbours.
        t0 = time.thread_time()
        alerts.evaluate_patient(conn, pid, today, library, pathways)
        times.append((time.thread_time() - t0) * 1000)
        conn.execute("ROLLBACK")
    conn.close()
    return times


def replay_rate(db: Path, folder: Path) -> tuple[float, int]:
    env = {**os.environ, "PIJNWACHT_DB": str(db)}
    csv = folder / "long.csv"
    subprocess.run(
        [str(BIN / "pijnwacht"), "export", "--format", "long", "-o", str(csv)],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    with open(csv, "rb") as fh:
        rows = sum(1 for _ in fh) - 1
    t0 = time.perf_counter()
    subprocess.run(
        [str(BIN / "pijnwacht"), "replay", str(csv), "-o", str(folder / "alerts.csv")],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return rows / (time.perf_counter() - t0), rows


def run(quick: bool = False) -> list[Figure]:
    from backend.alerts import lifecycle as alerts

    if not hasattr(alerts, "evaluate_patient"):
        return [
            not_measured(
                "3 detection",
                "rule time per new response",
                "alerts.evaluate_patient not landed",
                target="well under 1 ms",
            )
        ]
    folder = workdir()
    db = folder / "detection.db"
    history = 50 if quick else 300
    seed(db, patients=history, history_patients=history, days=365)
    ids = [f"p{n:07d}" for n in range(history)]
    rule_time(db, ids[:5])  # warm up
    times = rule_time(db, ids)
    med = median(times)
    p95 = sorted(times)[int(0.95 * (len(times) - 1))]
    figures = [
        Figure(
            "3 detection",
            "rule time per new response (365 days of history)",
            med,
            "ms",
            target=f"< {TARGET_MS:g} ms (well under 1 ms)",
            ok=med < TARGET_MS,
            runs=times,
            note=f"median over {len(times)} patients; p95 {p95:.2f} ms;"
            " CPU time; history load + every rule + alert update",
        )
    ]
    try:
        rate, rows = replay_rate(db, folder)
        figures.append(
            Figure(
                "3 detection",
                "replay",
                rate,
                "rows/s",
                note=f"{rows:,} answer rows of {history} patients x 365 days, process start included",
            )
        )
    except subprocess.CalledProcessError as exc:
        why = (exc.stderr or b"").decode()[-120:].strip() or "failed"
        figures.append(not_measured("3 detection", "replay", f"pijnwacht replay: {why}"))
    return figures


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(run(quick="--quick" in sys.argv)))
