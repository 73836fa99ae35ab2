"""Audit log (NEN 7513): who, in which role, did what to which patient's data, when, from where.

The table is append-only: triggers refuse UPDATE and DELETE (see migration 1).
"""

from __future__ import annotations

import sqlite3

from backend.platform.storage import iso, utcnow


def record(
    conn: sqlite3.Connection,
    *,
    user_id: int | None,
    user_email: str | None,
    role: str | None,
    patient_id: str | None,
    action: str,
    object: str | None = None,  # noqa: A002 - the NEN 7513 field name
    source: str | None = None,
) -> None:
    """Append one access to the audit log (inside the caller's write transaction)."""
    conn.execute(
        "INSERT INTO audit_log (at, user_id, user_email, role, patient_id, action, object, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (iso(utcnow()), user_id, user_email, role, patient_id, action, object, source),
    )


def history(conn: sqlite3.Connection, patient_id: str, limit: int = 500) -> list[sqlite3.Row]:
    """A patient's access history, newest first (for the admin page)."""
    return conn.execute(
        "SELECT * FROM audit_log WHERE patient_id = ? ORDER BY id DESC LIMIT ?",
        (patient_id, limit),
    ).fetchall()
