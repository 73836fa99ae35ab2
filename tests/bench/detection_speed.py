"""Detection speed: rule time per new response (365 days of history) and replay rows/s.

    .venv/bin/python tests/bench/detection_speed.py

Three figures, each a median over repeats:
1. `detection.evaluate` alone (pure rules) for a patient with 365 days of diary;
2. `alerts.evaluate_patient` on a real SQLite file (load history + rules + alert update),
   the work every new response adds to its transaction (rolled back after each call);
3. `replay.run_replay` over a long CSV of 300 patients x 150 days (in process), rows/s.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.alerts import lifecycle as alerts  # noqa: E402
from backend.alerts.detection import Thresholds, evaluate  # noqa: E402
from backend.platform.storage import connect, open_database  # noqa: E402
from backend.tools.replay import LONG_HEADER, run_replay  # noqa: E402
from backend.tools.simulate import CohortSpec, simulate  # noqa: E402


def pure_rules() -> float:
    patients = simulate(CohortSpec(seed=5, patients=20, days=365))
    t = Thresholds()
    times = []
    for p in patients:
        today = p.entries[-1].local_date
        for _ in range(50):
            t0 = time.perf_counter()
            evaluate(p.entries, t, today, p.enrolled_on)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def stored_rules(folder: Path) -> float:
    patients = simulate(CohortSpec(seed=6, patients=30, days=365))
    db = open_database(folder / "speed.db")
    db.close()
    conn = connect(folder / "speed.db")
    conn.execute("BEGIN")
    for p in patients:
        conn.execute(
            "INSERT INTO patients (id, display_name, pathway_id, anchor_date, enrolled_at)"
            " VALUES (?, 'x', 'chronic-pain', ?, ?)",
            (p.id, p.enrolled_on.isoformat(), f"{p.enrolled_on.isoformat()}T08:00:00Z"),
        )
        conn.executemany(
            "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version,"
            " authored_at, authored_at_client, local_date, answers, scores, content_hash,"
            " received_at) VALUES (?, ?, 'diary', 1, ?, ?, ?, ?, '{}', 'x', ?)",
            [
                (
                    str(uuid.uuid4()),
                    p.id,
                    e.authored_at,
                    e.authored_at,
                    e.local_date.isoformat(),
                    json.dumps(e.answers),
                    e.authored_at,
                )
                for e in p.entries
            ],
        )
    conn.execute("COMMIT")
    times = []
    for _ in range(5):
        for p in patients:
            today = p.entries[-1].local_date + timedelta(days=0)
            conn.execute("BEGIN IMMEDIATE")
            t0 = time.perf_counter()
            alerts.evaluate_patient(conn, p.id, today, None, {})
            times.append((time.perf_counter() - t0) * 1000)
            conn.execute("ROLLBACK")
    conn.close()
    return statistics.median(times)


def replay_rate(folder: Path) -> tuple[float, int]:
    patients = simulate(CohortSpec(seed=7, patients=300, days=150))
    src = folder / "long.csv"
    rows = 0
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(LONG_HEADER)
        for p in patients:
            for e in p.entries:
                rid = str(uuid.uuid4())
                for k, v in e.answers.items():
                    w.writerow([p.id, rid, "diary", 1, e.authored_at, e.local_date.isoformat(), k, v])
                    rows += 1
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        run_replay(src, folder / "alerts.csv", None, None, None, None)
        rates.append(rows / (time.perf_counter() - t0))
    return statistics.median(rates), rows


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("| figure | median |")
        print("|---|---|")
        print(f"| rules per new response, 365 days of history (pure) | {pure_rules():.3f} ms |")
        print(f"| evaluate_patient on SQLite (load + rules + alert update) | {stored_rules(folder):.3f} ms |")
        rate, rows = replay_rate(folder)
        print(
            f"| replay, 300 patients x 150 days ({rows:,} rows) | {rate:,.0f} rows/s ({rows / rate:.1f} s) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
