"""`pijnwacht backup FILE` beside a running server that is taking writes.

The backup must finish although the database changes all the time, open as a whole database
on its own (integrity ok, no -wal needed), hold every response confirmed before it started,
and serve again when restored: a new server on the copy lets the patient in and shows them
their history.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.server import Phones, Server, enrol_direct, redeem

pytestmark = pytest.mark.timeout(120)

AMS = ZoneInfo("Europe/Amsterdam")


def grow(db, patient_id: str, rows: int) -> None:
    """Give the database a realistic size (years of diaries) straight into the file."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    today = datetime.now(AMS).date()
    note = "a" * 900
    conn.execute("BEGIN IMMEDIATE")
    for i in range(rows):
        day = (today - timedelta(days=30 + i % 700)).isoformat()
        conn.execute(
            "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version,"
            " authored_at, authored_at_client, local_date, task_id, answers, scores,"
            " content_hash, received_at) VALUES (?, ?, 'diary', 1, ?, ?, ?, NULL, ?, '{}', ?, ?)",
            (
                str(uuid.uuid4()),
                patient_id,
                f"{day}T18:00:{i % 60:02d}Z",
                f"{day}T20:00:00+02:00",
                day,
                f'{{"pain_avg": 5, "note": "{note}"}}',
                f"h{i}",
                f"{day}T18:00:00Z",
            ),
        )
    conn.execute("COMMIT")
    conn.close()


def test_backup_while_the_server_takes_writes_holds_every_confirmed_response(tmp_path):
    server = Server(tmp_path / "live.db").start()
    target = tmp_path / "backups" / "pijnwacht-backup.db"
    try:
        patients = [redeem(server.url, code) for code in enrol_direct(server.db, 4)]
        # About 20 MiB, far more than one backup step of 1024 pages: the case where a stepwise copy
        # restarts whenever another connection writes, and may never finish.
        grow(server.db, patients[0][0], 20000)
        with Phones(server.url, [h for _p, h in patients]) as writers:
            deadline = time.monotonic() + 20
            while len(writers.confirmed) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.monotonic()
            before = writers.confirmed_by(started)
            result = server.run("backup", str(target), timeout=90)
            took = time.monotonic() - started
            after = len(writers.confirmed)
        assert result.returncode == 0, result.stderr
        assert "integrity ok" in result.stdout
        assert len(before) > 0 and after > len(before), "writes did not overlap the backup"
    finally:
        server.stop()

    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    assert not (tmp_path / "backups" / "pijnwacht-backup.db-wal").exists()
    assert not list(target.parent.glob(".*partial*")), "a partial file was left behind"
    copy = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        ids = {r[0] for r in copy.execute("SELECT id FROM responses")}
    finally:
        copy.close()
    missing = before - ids
    assert not missing, f"{len(missing)} responses confirmed before the backup are not in it"
    assert took < 20, f"the backup took {took:.1f}s beside a busy server"
    print(f"backup took {took:.2f}s beside {after - len(before)} writes")

    # Restore: a server on the copy lets the same phone in and shows its history.
    restored = tmp_path / "restored" / "pijnwacht.db"
    restored.parent.mkdir()
    restored.write_bytes(target.read_bytes())
    with Server(restored) as again:
        pid, headers = patients[1]
        r = httpx.get(again.url + "/api/v1/responses", headers=headers, timeout=10)
        assert r.status_code == 200
        got = {x["id"] for x in r.json()["responses"]}
        assert got and got <= ids
        assert {rid for rid in before if rid in got} == got & before


def test_backup_refuses_to_overwrite_the_database_itself(tmp_path):
    server = Server(tmp_path / "live.db")
    r = server.run("enrol", "--name", "A", "--pathway", "chronic-pain", "--json")
    assert r.returncode == 0, r.stderr
    r = server.run("backup", str(tmp_path / "live.db"))
    assert r.returncode != 0 and "another file" in r.stderr
    r = server.run("--db", str(tmp_path / "missing.db"), "backup", str(tmp_path / "b.db"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
