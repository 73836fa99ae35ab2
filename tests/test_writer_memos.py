"""What the writer keeps between jobs (issue 17) never differs from what a fresh read gives.

The writer connection keeps detection's read of each patient (`alerts.entries.read_patient`:
their entries and open alerts)
and its check of each device (`patients.store.patient_for_device(keep=True)`), and reads
again only what changed. Here both are compared with a new connection's read after every
step of seeded random work through the real writer: diary entries for today, for earlier
days and for days before all others, with tied and out-of-order authored times; another
questionnaire; savepoints and whole jobs rolled back; an operator's updates and deletes of
responses; alerts opened, acknowledged, resolved, closed and deleted; patient and device
changes (the team's news, a discharge, a revoke) and writes by another connection (the CLI).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from datetime import date, timedelta

import pytest

from backend.alerts import entries, lifecycle
from backend.alerts import store as alerts_store
from backend.patients import enrolment
from backend.patients import store as patients_store
from backend.platform.storage import connect, open_database
from tests.conftest import make_patient, store_response

START = date(2026, 3, 2)
TODAY = START + timedelta(days=35)
PATIENTS = ("p1", "p2", "p3")
DAYS = 57


class RolledBack(Exception):
    pass


def _change(conn: sqlite3.Connection, rng: random.Random, tokens: dict[str, str]) -> None:
    """One random change of one patient's responses, row or device."""
    pid = rng.choice(PATIENTS)
    day = TODAY - timedelta(days=rng.choice([0, 0, 1, 2, 5, 20, 40, 70]))
    at = f"{day}T{rng.choice(['18', '19', '20'])}:{rng.choice(['00', '30'])}:00Z"
    pick = "(SELECT rowid FROM responses WHERE patient_id = ? ORDER BY random() LIMIT 1)"
    k = rng.random()
    if k < 0.5:
        store_response(conn, pid, day, {"pain_avg": rng.randint(0, 10)}, at=at)
    elif k < 0.56:
        store_response(conn, pid, day, {}, questionnaire="pgic", scores={"pgic": rng.randint(1, 7)}, at=at)
    elif k < 0.62:
        conn.execute(f"DELETE FROM responses WHERE rowid = {pick}", (pid,))
    elif k < 0.68:
        answers = f'{{"pain_avg": {rng.randint(0, 10)}}}'
        conn.execute(f"UPDATE responses SET answers = ? WHERE rowid = {pick}", (answers, pid))
    elif k < 0.72:
        conn.execute(f"UPDATE responses SET authored_at = ? WHERE rowid = {pick}", (at, pid))
    elif k < 0.78:
        patients_store.set_team_seen(conn, pid, rng.choice([None, "2026-04-01T00:00:00Z"]))
    elif k < 0.82:
        conn.execute("UPDATE patients SET status = ? WHERE id = ?", (rng.choice(["active", "left"]), pid))
    elif k < 0.86:
        revoked = rng.choice([None, "2026-04-01T00:00:00Z"])
        conn.execute("UPDATE devices SET revoked_at = ? WHERE patient_id = ?", (revoked, pid))
    elif k < 0.89:  # the lifecycle opens an alert
        alerts_store.open_alert(
            conn,
            pid,
            rule_id=rng.choice(["pain_rise", "silence", "drowsiness_severe"]),
            category="pain",
            severity=rng.choice(["routine", "urgent"]),
            day=day.isoformat(),
            reason=f"reden {rng.randint(0, 99)}",
            level=rng.choice([None, 5.5]),
            at=at,
        )
    elif k < 0.93:  # a clinician acknowledges or resolves one, new evidence, it closes
        status, level = rng.choice(["open", "acknowledged", "resolved", "closed"]), rng.randint(0, 10)
        alert = "(SELECT id FROM alerts WHERE patient_id = ? ORDER BY random() LIMIT 1)"
        conn.execute(f"UPDATE alerts SET status = ?, level = ? WHERE id = {alert}", (status, level, pid))
    elif k < 0.95:
        newest = "(SELECT max(id) FROM alerts WHERE patient_id = ?)"
        conn.execute(f"DELETE FROM alerts WHERE id = {newest}", (pid,))
    else:  # read (and keep) in the middle of the job, before what follows in it
        if rng.random() < 0.5:
            entries.load_entries(conn, pid, TODAY, DAYS)  # the entries alone
        else:
            entries.read_patient(conn, pid, TODAY, DAYS, lifecycle.load_open_alerts)
        enrolment.patient_for_token(conn, tokens[pid], keep=True)


def _fresh(path, pid: str, token: str) -> tuple[list, object]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row  # as the project's connections read
    try:
        return (
            entries.read_patient(conn, pid, TODAY, DAYS, lifecycle.load_open_alerts, keep=False),
            enrolment.patient_for_token(conn, token),
        )
    finally:
        conn.close()


@pytest.mark.parametrize("kept_devices", [patients_store.KEPT_DEVICES, 2])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_what_the_writer_keeps_is_what_a_fresh_read_gives(tmp_path, monkeypatch, seed, kept_devices):
    """(With room for 2 devices, the device checks start again often: their marks with them.)"""
    monkeypatch.setattr(patients_store, "KEPT_DEVICES", kept_devices)
    rng = random.Random(seed)
    path = tmp_path / "pijnwacht.db"
    db = open_database(path)
    tokens = {pid: f"token-{pid}-{seed}" for pid in PATIENTS}

    def seed_patients(conn):
        for pid in PATIENTS:
            make_patient(
                conn, pid, name="Test", pathway="opioid", anchor=START, enrolled_at=f"{START}T08:00:00Z"
            )
            for i in range(30):
                day = START + timedelta(days=i)
                store_response(conn, pid, day, {"pain_avg": rng.randint(0, 10)}, at=f"{day}T19:00:00Z")
            patients_store.insert_device(conn, enrolment._hash(tokens[pid]), pid, f"{START}T08:00:00Z")

    db.write_sync(seed_patients)
    for step in range(120):
        if rng.random() < 0.1:  # another process (the CLI's own connection)
            other = connect(path)
            other.execute("BEGIN IMMEDIATE")
            _change(other, rng, tokens)
            other.execute("COMMIT")
            other.close()
        else:
            plan = [(rng.random() < 0.2, rng.random() < 0.5) for _ in range(rng.randint(1, 3))]
            whole = rng.random() < 0.15

            def job(conn, plan=plan, whole=whole):
                for savepoint, back in plan:
                    if savepoint:
                        conn.execute("SAVEPOINT change")
                    _change(conn, rng, tokens)
                    if savepoint:
                        if back:
                            conn.execute("ROLLBACK TO change")
                        conn.execute("RELEASE change")
                if whole:
                    raise RolledBack

            with contextlib.suppress(RolledBack):
                db.write_sync(job)
        for pid in PATIENTS:
            kept = db.write_sync(
                lambda conn, pid=pid: (
                    entries.read_patient(conn, pid, TODAY, DAYS, lifecycle.load_open_alerts),
                    enrolment.patient_for_token(conn, tokens[pid], keep=True),
                )
            )
            assert kept == _fresh(path, pid, tokens[pid]), f"step {step}, {pid}"
    db.close()


def test_a_device_check_kept_after_a_full_memo_was_cleared_goes_with_a_rollback(tmp_path, monkeypatch):
    """The memo of device checks, full, starts again; a patient changed just before in the
    same job, then rolled back: the check kept of them is not the one given afterwards."""
    monkeypatch.setattr(patients_store, "KEPT_DEVICES", 2)
    db = open_database(tmp_path / "pijnwacht.db")
    tokens = {pid: f"token-{pid}" for pid in PATIENTS}

    def seed_patients(conn):
        for pid in PATIENTS:
            make_patient(
                conn, pid, name="Test", pathway="opioid", anchor=START, enrolled_at=f"{START}T08:00:00Z"
            )
            patients_store.insert_device(conn, enrolment._hash(tokens[pid]), pid, f"{START}T08:00:00Z")
            patients_store.set_team_seen(conn, pid, "2026-04-01T00:00:00Z")

    def check(conn, pid):
        return enrolment.patient_for_token(conn, tokens[pid], keep=True)

    db.write_sync(seed_patients)
    db.write_sync(lambda conn: [check(conn, pid) for pid in ("p1", "p2")])  # the memo is full

    def job(conn):
        patients_store.set_team_seen(conn, "p1", None)  # p1 changes (its first mark)
        check(conn, "p3")  # no room: the memo starts again
        assert check(conn, "p1").team_seen_at is None
        raise RolledBack

    with contextlib.suppress(RolledBack):
        db.write_sync(job)
    assert db.write_sync(lambda conn: check(conn, "p1")).team_seen_at == "2026-04-01T00:00:00Z"
    db.close()


def test_a_batch_of_thousands_for_a_kept_patient_stops_the_notes_and_reads_afresh(tmp_path):
    """The notes of what was stored for a kept patient stop growing past NOTES_MAX (a
    phone's backlog of thousands in one job): the patient is read afresh, as a fresh read
    gives it, and the connection holds no copy of the backlog."""
    path = tmp_path / "pijnwacht.db"
    db = open_database(path)
    rng = random.Random(7)

    def seed_patient(conn):
        make_patient(
            conn, "p1", name="Test", pathway="opioid", anchor=START, enrolled_at=f"{START}T08:00:00Z"
        )
        for i in range(30):
            day = START + timedelta(days=i)
            store_response(conn, "p1", day, {"pain_avg": rng.randint(0, 10)}, at=f"{day}T19:00:00Z")

    db.write_sync(seed_patient)
    db.write_sync(lambda conn: entries.load_entries(conn, "p1", TODAY, DAYS))  # kept

    def backlog(conn):
        for i in range(3000):
            day = TODAY - timedelta(days=i % 20)
            at = f"{day}T20:{i // 60 % 60:02d}:{i % 60:02d}Z"
            store_response(conn, "p1", day, {"pain_avg": rng.randint(0, 10), "note": "x" * 40}, at=at)
        return conn.execute(
            "SELECT token, length(stored) FROM detection_seen WHERE patient_id = 'p1'"
        ).fetchone()

    token, length = db.write_sync(backlog)
    assert token == -1 and length is None  # (its notes dropped)
    kept = db.write_sync(lambda conn: entries.load_entries(conn, "p1", TODAY, DAYS))
    conn = sqlite3.connect(path)
    try:
        assert kept == entries.load_entries(conn, "p1", TODAY, DAYS, keep=False)
    finally:
        conn.close()
    db.close()
