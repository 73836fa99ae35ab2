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


def history(
    conn: sqlite3.Connection,
    patient_id: str,
    limit: int = 500,
    *,
    before: int | None = None,
    after: int | None = None,
) -> list[sqlite3.Row]:
    """A patient's access history, newest first (for the admin page): a page of `limit` rows,
    the newest ones, or those older than row `before`, or the ones just newer than `after`
    (keyset paging: a page stays the same page however many rows are written meanwhile)."""
    if after is not None:
        rows = conn.execute(
            "SELECT * FROM audit_log WHERE patient_id = ? AND id > ? ORDER BY id LIMIT ?",
            (patient_id, after, limit),
        ).fetchall()
        return rows[::-1]
    return conn.execute(
        "SELECT * FROM audit_log WHERE patient_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (patient_id, MAX_ID if before is None else before, limit),
    ).fetchall()


MAX_ID = 2**63 - 1


def recently_recorded(
    conn: sqlite3.Connection,
    *,
    user_id: int,
    action: str,
    object: str | None,  # noqa: A002
    patient_ids: list[str],
    since: str,
) -> set[str]:
    """The patients of `patient_ids` for whom this user already has this same row (action and
    object) since `since`: an automatic refresh need not log them again."""
    if not patient_ids:
        return set()
    marks = ",".join("?" * len(patient_ids))
    rows = conn.execute(
        f"SELECT DISTINCT patient_id FROM audit_log WHERE patient_id IN ({marks})"
        " AND at >= ? AND user_id = ? AND action = ? AND object IS ?",
        (*patient_ids, since, user_id, action, object),
    ).fetchall()
    return {r["patient_id"] for r in rows}


def on_object(
    conn: sqlite3.Connection, patient_id: str, object: str, actions: tuple[str, ...]
) -> list[sqlite3.Row]:  # noqa: A002
    """Who did these actions to one object of a patient's data, and when (oldest first)."""
    marks = ",".join("?" * len(actions))
    return conn.execute(
        "SELECT a.at, a.action, COALESCE(u.name, a.user_email) AS name FROM audit_log a"
        " LEFT JOIN users u ON u.id = a.user_id"
        f" WHERE a.patient_id = ? AND a.object = ? AND a.action IN ({marks})"
        " ORDER BY a.id",
        (patient_id, object, *actions),
    ).fetchall()
