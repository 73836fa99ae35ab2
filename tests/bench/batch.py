"""Benchmark 2: batch sync — responses/s through `POST /api/v1/responses:batch` vs raw SQLite.

The server side: wrk posts 100-item batches (fresh UUIDs, rotating device tokens) to a real
`pijnwacht serve`; every item is validated, stored idempotently, and each batch runs task
bookkeeping and detection once for its patient. The reference: the same kind of rows
(checked by the same `responses.check`, so the same columns and content) inserted by plain
`executemany` through `storage.connect` (the same pragmas: WAL, synchronous=FULL) into a copy
of the same seeded database, one transaction per 100 rows — what SQLite alone can do.
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import msgspec  # noqa: E402

from tests.bench.common import (  # noqa: E402
    LUA,
    Figure,
    Load,
    Server,
    median,
    seed,
    workdir,
    wrk_on,
)

PATIENTS = 1000
HISTORY_DAYS = 60
BATCH = 100
CONNECTIONS = 4
TARGET = 0.50


def raw_rows(n: int, creds, load: Load) -> list[list[tuple]]:
    """n rows as the server would store them, in transactions of BATCH."""
    from backend.diary.questionnaires import load_library
    from backend.diary.responses import ResponseIn, check
    from backend.patients.enrolment import Patient
    from backend.platform.settings import load_settings

    library = load_library(load_settings({}).questionnaires_dir)
    now = datetime.now(UTC)
    received = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    days = load.days.split(",")
    groups: list[list[tuple]] = []
    for g in range(n // BATCH):
        pid = creds[g % len(creds)][0]
        patient = Patient(
            pid,
            "x",
            "chronic-pain",
            "Europe/Amsterdam",
            "nl",
            "20:00",
            "2025-01-01",
            "2025-01-01T00:00:00Z",
            "active",
        )
        rows = []
        for k in range(BATCH):
            day = days[k % len(days)]
            body = ResponseIn(
                "diary",
                1,
                load.authored_at,
                day,
                {
                    "pain_avg": 2 + k % 6,
                    "pain_worst": 4 + k % 6,
                    "sleep_hours": 6.5,
                    "sleep_quality": 5,
                    "activity": 4,
                    "mood": 6,
                    "rescue_doses": 1,
                    "se_drowsiness": 0,
                    "se_nausea": 1,
                    "se_constipation": 0,
                    "se_dizziness": 0,
                },
            )
            c = check(str(uuid.uuid4()), body, patient, library, now)
            rows.append(
                (
                    c.id,
                    pid,
                    c.questionnaire,
                    c.version,
                    c.authored_at,
                    c.authored_at_client,
                    c.local_date,
                    c.task_id,
                    msgspec.json.encode(c.answers).decode(),
                    msgspec.json.encode(c.scores).decode(),
                    c.content_hash,
                    received,
                )
            )
        groups.append(rows)
    return groups


def raw_sqlite(path: Path, groups: list[list[tuple]]) -> float:
    """Rows/s of plain inserts, one BEGIN IMMEDIATE ... COMMIT per group (same pragmas)."""
    from backend.platform.storage import connect

    conn = connect(path)
    t0 = time.perf_counter()
    for rows in groups:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version,"
            " authored_at, authored_at_client, local_date, task_id, answers, scores, content_hash,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    return sum(len(r) for r in groups) / dt


def run(quick: bool = False) -> list[Figure]:
    folder = workdir()
    db = folder / "batch.db"
    creds = seed(db, patients=PATIENTS, history_patients=PATIENTS, days=HISTORY_DAYS, tokens=PATIENTS)
    pristine = folder / "pristine.db"
    shutil.copy(db, pristine)
    load = Load(folder, creds)
    seconds, runs = (3, 1) if quick else (8, 3)
    groups = raw_rows(100 * BATCH if quick else 300 * BATCH, creds, load)
    api, api_cpu, raw, bad = [], [], [], 0
    p99 = []
    with Server(db) as srv:
        wrk_on(srv, seconds=2, connections=CONNECTIONS, script=LUA / "batch.lua", args=load.args(str(BATCH)))
        for _ in range(runs):
            r, per_cpu = wrk_on(
                srv,
                seconds=seconds,
                connections=CONNECTIONS,
                script=LUA / "batch.lua",
                args=load.args(str(BATCH)),
            )
            api.append(r.rps * BATCH)
            api_cpu.append(per_cpu * BATCH)
            p99.append(r.p99_ms)
            bad += r.non_2xx + r.errors
            # A fresh copy of the same seeded database each time: the same ids go in again.
            reference = folder / f"raw-{len(raw)}.db"
            shutil.copy(pristine, reference)
            raw.append(raw_sqlite(reference, groups))
        peak = srv.sample_memory()
    ratios = [a / r for a, r in zip(api, raw, strict=True)]
    note = f"{CONNECTIONS} connections, p99 {median(p99):.0f} ms per batch"
    if bad:
        note += f"; {bad} non-2xx/socket errors!"
    return [
        Figure("2 batch", "batch sync via API", median(api), "responses/s", note=note, runs=api),
        Figure(
            "2 batch",
            "raw SQLite inserts, same rows",
            median(raw),
            "rows/s",
            note="executemany, 100 rows per fsync'd transaction",
            runs=raw,
        ),
        Figure(
            "2 batch",
            "batch / raw SQLite",
            median(ratios) * 100,
            "%",
            target=f">= {TARGET:.0%}",
            ok=median(ratios) >= TARGET and not bad,
            runs=[x * 100 for x in ratios],
        ),
        Figure(
            "2 batch",
            "batch responses per server CPU-second",
            median(api_cpu),
            "responses/s",
            note="the server's CPU-bound ceiling",
            runs=api_cpu,
        ),
        Figure("7 memory", "server peak RSS (batch)", peak, "MB"),
    ]


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(run(quick="--quick" in sys.argv)))
