"""The clinic's reads of reminders sent and the phone's receipts for them (the patient page's
delivery table, backend/tasks/delivery.py judges them)."""

from __future__ import annotations

import sqlite3


def reminders(conn: sqlite3.Connection, patient_id: str, since: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT l.task_id, l.claimed_at, l.pushes, t.status FROM reminder_log l"
        " JOIN tasks t ON t.id = l.task_id"
        " WHERE l.patient_id = ? AND l.claimed_at >= ? ORDER BY l.claimed_at",
        (patient_id, since),
    ).fetchall()


def receipts(conn: sqlite3.Connection, patient_id: str, since: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT task_id, event, at FROM push_receipts WHERE patient_id = ? AND at >= ?", (patient_id, since)
    ).fetchall()
