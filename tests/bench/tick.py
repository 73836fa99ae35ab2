"""Benchmark: one scheduler tick with 10 000, 100 000 and 1 000 000 patients on daily diaries.

Run: .venv/bin/python tests/bench/tick.py [--patients 10000 100000 1000000] [--runs 3]

Each patient is on chronic-pain with the default reminder time 20:00, one push device,
and planned ahead like a live system (yesterday's diary done, today's and the next days'
open). Two ticks are timed, each `--runs` times on a fresh copy of the state:

- quiet: a minute with nothing due (14:00) - what almost every tick of the day costs;
- 20:00: every patient's diary reminder due in the same minute (the default reminder time
  makes this the worst minute of the day): claim all, queue one push per patient, log.

Target: < 1 s at 100 000, growing no faster than linearly. The database is built with bulk
inserts (synchronous OFF while building only); the ticks run with the normal pragmas.
The last column is the 20:00 tick's CPU time (the process's, writer thread included): on a
shared machine the wall time is mostly other processes' turn, the CPU time much less so.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.diary.questionnaires import load_library  # noqa: E402
from backend.patients.pathways import load_pathways  # noqa: E402
from backend.platform.settings import Settings  # noqa: E402
from backend.platform.storage import iso, open_database  # noqa: E402
from backend.tasks import tick  # noqa: E402

AMS = ZoneInfo("Europe/Amsterdam")
QUESTIONNAIRES = Path(__file__).resolve().parents[2] / "questionnaires"
TODAY = date(2026, 5, 12)
DAYS_AHEAD = 3


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), AMS).astimezone(UTC)


def build(path: Path, n: int, pathways) -> None:
    db = open_database(path)  # migrations
    db.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    enrolled = iso(local(TODAY - timedelta(days=30), 9))
    anchor = (TODAY - timedelta(days=30)).isoformat()
    conn.executemany(
        "INSERT INTO patients (id, display_name, pathway_id, anchor_date, enrolled_at)"
        " VALUES (?, 'x', 'chronic-pain', ?, ?)",
        ((f"p{i:07d}", anchor, enrolled) for i in range(n)),
    )
    p = pathways["chronic-pain"]
    planned_until = TODAY + timedelta(days=DAYS_AHEAD)
    roll_at = iso(local(planned_until - timedelta(days=1), 0))
    conn.execute(
        "UPDATE patient_schedule SET pathway_id = ?, pathway_checksum = ?, plan_key = 'bench',"
        " planned_until = ?, next_roll_at = ?",
        (p.id, p.checksum, planned_until.isoformat(), roll_at),
    )
    conn.executemany(
        "INSERT INTO push_subscriptions (patient_id, endpoint, p256dh, auth, created_at)"
        " VALUES (?, ?, 'k', 'a', ?)",
        ((f"p{i:07d}", f"https://push.example/{i}", enrolled) for i in range(n)),
    )
    for offset in range(-1, DAYS_AHEAD + 1):
        day = TODAY + timedelta(days=offset)
        due = local(day, 20)
        row = (
            day.isoformat(),
            day.isoformat(),
            iso(local(day, 0)),
            iso(due),
            iso(local(day + timedelta(days=1), 0)),
            "done" if offset < 0 else "open",
            json.dumps([iso(due)]),
            None if offset < 0 else iso(due),
            enrolled,
        )
        conn.executemany(
            "INSERT INTO tasks (patient_id, questionnaire_id, local_date, until_date, opens_at,"
            " due_at, expires_at, status, reminder_times, next_reminder_at, created_at)"
            " VALUES (?, 'diary', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((f"p{i:07d}", *row) for i in range(n)),
        )
    # The day's nightly sweep ran at 02:00 UTC, long before the minutes timed here (it is a
    # pass of its own, once a day, not part of a minute's cost).
    conn.execute("INSERT INTO settings_kv (key, value) VALUES ('nightly_sweep', ?)", (TODAY.isoformat(),))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def reset(path: Path) -> None:
    """Undo a 20:00 tick: today's reminders due again, queue and log empty."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.execute(
        "UPDATE tasks SET next_reminder_at = due_at, reminders_sent = 0,"
        " reminder_claimed_at = NULL WHERE local_date = ? AND questionnaire_id = 'diary'",
        (TODAY.isoformat(),),
    )
    conn.execute("DELETE FROM push_queue")
    conn.execute("DELETE FROM reminder_log")
    conn.execute("COMMIT")
    conn.close()


def timed(path: Path, settings: Settings, pathways, now: datetime) -> tuple[float, int, int, float]:
    """(wall seconds, reminders, pushes queued, CPU seconds) of one tick."""
    db = open_database(path)
    try:
        started, cpu = clock.perf_counter(), clock.process_time()
        report = tick.run_tick(db, settings, now, None, pathways)
        seconds = clock.perf_counter() - started
        return seconds, report.reminders, report.pushes_queued, clock.process_time() - cpu
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--burst-max",
        type=int,
        default=1_000_000,
        help="time the 20:00 tick only up to this many patients (it is linear; slow to wait for)",
    )
    args = ap.parse_args()
    library = load_library(QUESTIONNAIRES)
    pathways = load_pathways(QUESTIONNAIRES, library)
    print(
        f"{'patients':>10} {'build s':>8} {'quiet tick s':>13} {'20:00 tick s':>13} "
        f"{'reminders':>10} {'ms per 1k':>10} {'20:00 CPU s':>12}",
        flush=True,
    )
    for n in args.patients:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            settings = Settings(db=str(path))
            t0 = clock.perf_counter()
            build(path, n, pathways)
            built = clock.perf_counter() - t0
            quiet = [timed(path, settings, pathways, local(TODAY, 14))[0] for _ in range(args.runs)]
            line = f"{n:>10} {built:>8.1f} {statistics.median(quiet):>13.4f}"
            if n > args.burst_max:
                print(f"{line} {'-':>13} {'-':>10} {'-':>10}", flush=True)
                continue
            busy, cpus, claimed, queued = [], [], 0, 0
            for _ in range(args.runs):
                reset(path)
                seconds, claimed, queued, cpu = timed(path, settings, pathways, local(TODAY, 20))
                busy.append(seconds)
                cpus.append(cpu)
            assert claimed == n, f"claimed {claimed} of {n}"
            assert queued == n, f"queued {queued} pushes for {n} patients with one device each"
            med = statistics.median(busy)
            cpu = statistics.median(cpus)
            print(f"{line} {med:>13.3f} {claimed:>10} {1e6 * med / n:>10.1f} {cpu:>12.3f}", flush=True)


if __name__ == "__main__":
    main()
