"""Benchmark: the nightly push-queue prune at 100 000 patients x 30 days, per writer job.

Run: .venv/bin/python tests/bench/prune.py [--patients 100000] [--days 31] [--runs 3]

The queue holds one sent reminder push per patient per day for `--days` days (the 31st day
past the 30 days kept); the nightly prune (`scheduler.prune_daily`, as the first tick of a
UTC day runs it) deletes that oldest day, a chunk per writer job. Every writer job is timed
(each commits with the normal pragmas, synchronous FULL). Target: < 100 ms a job.
Prints: `patients days deleted jobs median-ms max-ms total-s` per run.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time as clock
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.platform.storage import open_database  # noqa: E402
from backend.tasks import scheduler  # noqa: E402

NOW = datetime(2026, 5, 12, 2, 0, tzinfo=UTC)


def build(path: Path, n: int, days: int) -> None:
    open_database(path).close()  # migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    # Day d (0 = the oldest) at 18:00 UTC, one row per patient, in the order a tick queues.
    first = NOW - timedelta(days=days)
    conn.execute(
        "WITH RECURSIVE d(day) AS (SELECT 0 UNION ALL SELECT day + 1 FROM d WHERE day + 1 < ?),"
        " p(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM p WHERE i + 1 < ?)"
        " INSERT INTO push_queue (subscription_id, payload, urgency, ttl, topic, created_at,"
        " expires_at, status, attempts, next_attempt_at, sent_at)"
        ' SELECT i + 1, \'{"title":"Pijnwacht","body":"Tijd voor uw dagboek","url":"/#/today",'
        "\"tag\":\"task-' || (day * ? + i) || '\"}', 'normal', 3600, 'task-' || (day * ? + i), t.at,"
        " t.at, 'sent', 1, t.at, t.at"
        " FROM d CROSS JOIN p, (SELECT strftime('%Y-%m-%dT18:00:00Z', ?, '+' || d2.day || ' days') AS at,"
        "  d2.day AS dd FROM d AS d2) AS t WHERE t.dd = d.day ORDER BY day, i",
        (days, n, n, n, first.isoformat()),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def run_once(path: Path) -> tuple[int, list[float], float]:
    db = open_database(path)
    jobs: list[float] = []
    write_sync = db.write_sync

    def timed(fn):
        started = clock.perf_counter()
        try:
            return write_sync(fn)
        finally:
            jobs.append(clock.perf_counter() - started)

    db.write_sync = timed  # type: ignore[method-assign]
    try:
        started = clock.perf_counter()
        deleted = scheduler.prune_daily(db, NOW)
        return deleted, jobs, clock.perf_counter() - started
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "built.db"
        build(built, args.patients, args.days)
        for _ in range(args.runs):
            path = Path(tmp) / "run.db"
            shutil.copyfile(built, path)
            deleted, jobs, total = run_once(path)
            assert deleted == args.patients, f"pruned {deleted}, expected one day: {args.patients}"
            print(
                f"{args.patients} {args.days} {deleted} {len(jobs)}"
                f" {1000 * statistics.median(jobs):.1f} {1000 * max(jobs):.1f} {total:.3f}"
                f" (slowest: job {jobs.index(max(jobs)) + 1})",
                flush=True,
            )


if __name__ == "__main__":
    main()
