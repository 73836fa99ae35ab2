"""Benchmark: the long responses CSV export of a large database (rows/s, peak RSS).

Builds (once, cached beside the output) a database of N patients x D days of diaries with
bulk inserts, then runs `write_export(path, iter_long(conn))` several times and reports the
median rows per second and the peak resident memory of the process.

    .venv/bin/python tests/bench/export_long.py --patients 10000 --days 365 --runs 3
    .venv/bin/python tests/bench/export_long.py --patients 1000 --days 365   # quicker
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import msgspec  # noqa: E402

from backend.exports.files import write_export  # noqa: E402
from backend.exports.long import iter_long  # noqa: E402
from backend.platform import migrations  # noqa: E402
from backend.platform.storage import connect  # noqa: E402

START = date(2025, 1, 1)


def diary_answers(rng: random.Random) -> dict:
    pain = rng.randint(0, 10)
    answers = {
        "pain_avg": pain,
        "pain_worst": min(10, pain + rng.randint(0, 3)),
        "sleep_hours": rng.randint(6, 18) / 2,
        "sleep_quality": rng.randint(0, 10),
        "activity": rng.randint(0, 10),
        "mood": rng.randint(0, 10),
        "rescue_doses": rng.randint(0, 3),
        "se_drowsiness": rng.randint(0, 3),
        "se_nausea": rng.randint(0, 3),
        "se_constipation": rng.randint(0, 3),
        "se_dizziness": rng.randint(0, 3),
    }
    if rng.random() < 0.1:
        answers["note"] = 'Slecht geslapen, veel last, "zie" arts'
    return answers


def build(path: Path, patients: int, days: int) -> int:
    """A database of `patients` x `days` diary responses; returns the number of answer rows."""
    conn = connect(path)
    conn.execute("PRAGMA synchronous = OFF")  # a throw-away benchmark file
    migrations.apply(conn)
    rng = random.Random(7)
    # A pool of answer sets: json encoding 3.65 M random dicts would dominate the build.
    pool = [diary_answers(rng) for _ in range(5000)]
    encoded = [(msgspec.json.encode(a).decode(), len(a)) for a in pool]
    enc = msgspec.json.encode
    total = 0
    conn.execute("BEGIN")
    for p in range(patients):
        pid = f"P{p:06d}"
        conn.execute(
            "INSERT INTO patients (id, display_name, pathway_id, anchor_date, enrolled_at)"
            " VALUES (?, ?, 'chronic-pain', ?, ?)",
            (pid, f"Patient {p}", START.isoformat(), "2025-01-01T08:00:00Z"),
        )
        rows = []
        for d in range(days):
            day = START + timedelta(days=d)
            answers, n = encoded[rng.randrange(len(encoded))]
            total += n
            rows.append(
                (
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    pid,
                    day.isoformat(),
                    f"{day.isoformat()}T19:{d % 60:02d}:00Z",
                    f"{day.isoformat()}T21:{d % 60:02d}:00+02:00",
                    answers,
                    enc(answers[:16]).decode(),
                    f"{day.isoformat()}T19:{d % 60:02d}:05Z",
                )
            )
        conn.executemany(
            "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version,"
            " local_date, authored_at, authored_at_client, answers, scores, content_hash,"
            " received_at) VALUES (?, ?, 'diary', 1, ?, ?, ?, ?, '{}', ?, ?)",
            rows,
        )
        if p % 500 == 499:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="data/bench")
    args = ap.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"export-{args.patients}x{args.days}.db"
    if not db.exists():
        t0 = time.perf_counter()
        partial = db.with_suffix(".building")
        for suffix in ("", "-wal", "-shm"):
            Path(str(partial) + suffix).unlink(missing_ok=True)
        build(partial, args.patients, args.days)
        partial.rename(db)
        print(f"built {db} in {time.perf_counter() - t0:.1f} s")
    conn = connect(db, readonly=True)
    rows = conn.execute(
        "SELECT count(*) FROM responses r, json_each(r.answers) j WHERE j.type != 'null'"
    ).fetchone()[0]
    out = folder / "export-long.csv"
    rates = []
    cpu_rates = []
    for run in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        size = write_export(out, iter_long(conn))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates.append(rows / dt)
        cpu_rates.append(rows / cpu)
        print(
            f"run {run + 1}: {rows:,} rows, {size / 1e6:,.0f} MB in {dt:.1f} s"
            f" = {rows / dt:,.0f} rows/s ({rows / cpu:,.0f} rows per CPU second)"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"median {statistics.median(rates):,.0f} rows/s wall,"
        f" {statistics.median(cpu_rates):,.0f} rows per CPU second over {args.runs} runs;"
        f" peak RSS {peak_mb:.0f} MB ({args.patients} patients x {args.days} days)"
    )
    out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
