"""The `alerts` and `alert_notes` tables: the only SQL on them.

What to write is decided elsewhere (`lifecycle.step` for the rules, the inbox for what a
clinician does); these functions only read and write, each change a compare-and-set on the
alert's state so that two evaluations or two clinicians never apply one change twice.
Writes run on the writer's connection, inside its transaction.
"""

from __future__ import annotations

import sqlite3

_CLOSE = (
    "UPDATE alerts SET closed_at = ?, updated_at = ?,"
    " status = CASE WHEN status IN ('open', 'acknowledged') THEN 'closed' ELSE status END"
    " WHERE id = ? AND closed_at IS NULL"
)
# A clinician who acknowledges or resolves an alert has seen it as it stands now: later news is
# measured from here.
_SEEN = "seen_level = level, seen_on = last_evidence_on"


# -- the rules' side ------------------------------------------------------------------------------
def episodes(conn: sqlite3.Connection, patient_id: str) -> list[sqlite3.Row]:
    """The patient's alerts whose episode is not over (open, acknowledged, or resolved by a
    clinician while the condition still holds), oldest first: id, rule_id, category,
    severity, status, opened_on, last_evidence_on, reason, level, seen_level, seen_on, news."""
    return conn.execute(
        "SELECT id, rule_id, category, severity, status, opened_on, last_evidence_on, reason,"
        " level, seen_level, seen_on, news FROM alerts"
        " WHERE patient_id = ? AND closed_at IS NULL AND status != 'closed' ORDER BY id",
        (patient_id,),
    ).fetchall()


def close(conn: sqlite3.Connection, alert_id: int | None, at: str) -> bool:
    """End an alert's episode (an open or acknowledged one becomes closed); False when it
    had ended already."""
    return conn.execute(_CLOSE, (at, at, alert_id)).rowcount == 1


def add_evidence(
    conn: sqlite3.Connection,
    alert_id: int | None,
    *,
    day: str,
    reason: str,
    severity: str | None,
    level: float | None,
    at: str,
) -> None:
    """New evidence for an open alert: its day, reason and level, a higher severity if given
    (the row is left alone when nothing changed)."""
    conn.execute(
        "UPDATE alerts SET last_evidence_on = ?, reason = ?, severity = coalesce(?, severity),"
        " level = ?, updated_at = ? WHERE id = ?"
        " AND (last_evidence_on != ? OR reason != ? OR ? IS NOT NULL OR level IS NOT ?)",
        (day, reason, severity, level, at, alert_id, day, reason, severity, level),
    )


def open_alert(
    conn: sqlite3.Connection,
    patient_id: str,
    *,
    rule_id: str,
    category: str,
    severity: str,
    day: str,
    reason: str,
    level: float | None,
    at: str,
    resurfaced_from: int | None = None,
    news: str | None = None,
) -> int | None:
    """A new open alert; its id, or None when the patient already has one open for the rule."""
    cur = conn.execute(
        "INSERT INTO alerts (patient_id, rule_id, category, severity, status, opened_on,"
        " opened_at, updated_at, last_evidence_on, reason, level, seen_level, seen_on,"
        " resurfaced_from, news) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (patient_id, rule_id, category, severity, day, at, at, day, reason)
        + (level, level, day, resurfaced_from, news),
    )
    return int(cur.lastrowid) if cur.rowcount == 1 else None


def supersede(conn: sqlite3.Connection, old_id: int | None, new_id: int) -> None:
    """The resurfaced alert points to the alert that carries its news."""
    conn.execute("UPDATE alerts SET superseded_by = ? WHERE id = ?", (new_id, old_id))


def escalate(conn: sqlite3.Connection, opened_before: str, at: str) -> list[int]:
    """Mark urgent alerts open since `opened_before` escalated (once each); their ids."""
    rows = conn.execute(
        "UPDATE alerts SET escalated_at = ?, updated_at = ?"
        " WHERE status = 'open' AND severity = 'urgent' AND escalated_at IS NULL"
        " AND opened_at <= ? RETURNING id",
        (at, at, opened_before),
    ).fetchall()
    return sorted(r[0] for r in rows)


# -- what clinicians do ---------------------------------------------------------------------------
def patient_of(conn: sqlite3.Connection, alert_id: int) -> str | None:
    row = conn.execute("SELECT patient_id FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return row[0] if row else None


def acknowledge(conn: sqlite3.Connection, alert_id: int, user_id: int, at: str) -> bool:
    """Open -> acknowledged; False when someone else was first (or it is no longer open)."""
    cur = conn.execute(
        "UPDATE alerts SET status = 'acknowledged', acknowledged_by = ?, acknowledged_at = ?,"
        f" updated_at = ?, {_SEEN} WHERE id = ? AND status = 'open'",
        (user_id, at, at, alert_id),
    )
    return cur.rowcount == 1


def assign(conn: sqlite3.Connection, alert_id: int, user_id: int | None, at: str) -> bool:
    cur = conn.execute(
        "UPDATE alerts SET assigned_to = ?, updated_at = ? WHERE id = ?"
        " AND status IN ('open', 'acknowledged')",
        (user_id, at, alert_id),
    )
    return cur.rowcount == 1


def resolve(conn: sqlite3.Connection, alert_id: int, user_id: int, outcome: str, at: str) -> bool:
    """Open or acknowledged -> resolved with an outcome (acknowledged by the same clinician if
    nobody had)."""
    cur = conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_by = ?, resolved_at = ?, outcome = ?,"
        " acknowledged_by = coalesce(acknowledged_by, ?), acknowledged_at = coalesce(acknowledged_at, ?),"
        f" updated_at = ?, {_SEEN} WHERE id = ? AND status IN ('open', 'acknowledged')",
        (user_id, at, outcome, user_id, at, at, alert_id),
    )
    return cur.rowcount == 1


def add_note(conn: sqlite3.Connection, alert_id: int, user_id: int, text: str, at: str) -> int:
    cur = conn.execute(
        "INSERT INTO alert_notes (alert_id, user_id, at, text) VALUES (?, ?, ?, ?)",
        (alert_id, user_id, at, text),
    )
    return int(cur.lastrowid)
