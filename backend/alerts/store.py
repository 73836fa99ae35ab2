"""The `alerts` and `alert_notes` tables: the only SQL on them.

What to write is decided elsewhere (`lifecycle.step` for the rules, the inbox for what a
clinician does); these functions only read and write, each change a compare-and-set on the
alert's state so that two evaluations or two clinicians never apply one change twice.
Writes run on the writer's connection, inside its transaction. The clinic's reads (the inbox,
one alert with its history, a patient's alerts, the response times) return rows with the
names of patient and clinicians joined in; they run on a reader (`await db.read(...)`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backend.alerts.detection import SEVERITY_RANK

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
    reason_on: str,
    severity: str | None,
    level: float | None,
    at: str,
) -> None:
    """New evidence for an open alert: its day, reason (written for the day `reason_on`) and
    level, a higher severity if given (the row is left alone when nothing changed)."""
    conn.execute(
        "UPDATE alerts SET last_evidence_on = ?, reason = ?, reason_on = ?, severity = coalesce(?, severity),"
        " level = ?, updated_at = ? WHERE id = ?"
        " AND (last_evidence_on != ? OR reason != ? OR ? IS NOT NULL OR level IS NOT ?)",
        (day, reason, reason_on, severity, level, at, alert_id, day, reason, severity, level),
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
        " opened_at, updated_at, last_evidence_on, reason, reason_on, level, seen_level, seen_on,"
        " resurfaced_from, news) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (patient_id, rule_id, category, severity, day, at, at, day, reason, day)
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
    if not 0 <= alert_id <= MAX_ID:
        return None
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


# -- the clinic's reads ---------------------------------------------------------------------------
STATUSES = ("open", "acknowledged", "resolved", "closed")
# The one severity order, from detection: most serious first.
_SEVERITY_ORDER = (
    "CASE a.severity "
    + " ".join(f"WHEN '{s}' THEN {-rank}" for s, rank in sorted(SEVERITY_RANK.items()))
    + " ELSE 9 END"
)
# Severity first; within it, news on an alert the team had seen (resurfaced, still open) on
# top; then the longest waiting.
ORDER = (
    f" ORDER BY {_SEVERITY_ORDER},"
    " CASE WHEN a.status = 'open' AND a.resurfaced_from IS NOT NULL THEN 0 ELSE 1 END, a.opened_at, a.id"
)
# The inbox's other orders a nurse may choose: newest first, or longest waiting first.
ORDERS = {
    "urgent": ORDER,
    "newest": " ORDER BY a.opened_at DESC, a.id DESC",
    "oldest": " ORDER BY a.opened_at, a.id",
}
SELECT = (
    "SELECT a.*, p.display_name, p.pathway_id, p.timezone, p.thresholds AS patient_thresholds,"
    " p.status AS patient_status, p.enrolled_at AS patient_enrolled_at,"
    " u.name AS assignee_name,"
    " ack.name AS acknowledged_name, res.name AS resolved_name"
    " FROM alerts a JOIN patients p ON p.id = a.patient_id"
    " LEFT JOIN users u ON u.id = a.assigned_to"
    " LEFT JOIN users ack ON ack.id = a.acknowledged_by"
    " LEFT JOIN users res ON res.id = a.resolved_by"
)
MAX_ID = 2**63 - 1


@dataclass
class Filter:
    """The inbox's filters (query parameters); `status` "live" = open or acknowledged."""

    severity: str = ""
    category: str = ""
    status: str = "live"
    assignee: str = ""  # a user id, "none", or "" for anyone
    pathway: str = ""
    patient: str = ""  # part of a name or id
    patient_id: str = ""  # one patient exactly (two patients can share a name)
    order: str = "urgent"  # a key of ORDERS

    def sql(self) -> tuple[str, list[Any]]:
        where, params = [], []
        if self.severity in SEVERITY_RANK:
            where.append("a.severity = ?")
            params.append(self.severity)
        if self.category:
            where.append("a.category = ?")
            params.append(self.category)
        if self.status == "live":
            where.append("a.status IN ('open', 'acknowledged')")
        elif self.status in STATUSES:
            where.append("a.status = ?")
            params.append(self.status)
        if self.assignee == "none":
            where.append("a.assigned_to IS NULL")
        elif self.assignee.isascii() and self.assignee.isdigit() and int(self.assignee) <= MAX_ID:
            where.append("a.assigned_to = ?")
            params.append(int(self.assignee))
        if self.pathway:
            where.append("p.pathway_id = ?")
            params.append(self.pathway)
        if self.patient:
            like = "%" + self.patient.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(p.display_name LIKE ? ESCAPE '\\' OR p.id LIKE ? ESCAPE '\\')")
            params += [like, like]
        if self.patient_id:
            where.append("a.patient_id = ?")
            params.append(self.patient_id)
        return (" WHERE " + " AND ".join(where) if where else ""), params


def inbox(
    conn: sqlite3.Connection, f: Filter, limit: int | None = None, offset: int = 0
) -> list[sqlite3.Row]:
    where, params = f.sql()
    sql = SELECT + where + ORDERS.get(f.order, ORDER)
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return conn.execute(sql, params).fetchall()


def inbox_count(conn: sqlite3.Connection, f: Filter) -> int:
    """How many alerts the inbox's filters match (its "van N")."""
    where, params = f.sql()
    sql = "SELECT COUNT(*) FROM alerts a JOIN patients p ON p.id = a.patient_id" + where
    return conn.execute(sql, params).fetchone()[0]


def one(conn: sqlite3.Connection, alert_id: int) -> sqlite3.Row | None:
    if not 0 <= alert_id <= MAX_ID:
        return None
    return conn.execute(SELECT + " WHERE a.id = ?", (alert_id,)).fetchone()


def notes(conn: sqlite3.Connection, alert_ids: Sequence[int]) -> list[sqlite3.Row]:
    """The notes on these alerts, oldest first, with the writer's name."""
    if not alert_ids:
        return []
    marks = ",".join("?" * len(alert_ids))
    return conn.execute(
        "SELECT n.alert_id, n.at, n.text, u.name FROM alert_notes n JOIN users u ON u.id = n.user_id"
        f" WHERE n.alert_id IN ({marks}) ORDER BY n.at, n.id",
        list(alert_ids),
    ).fetchall()


def of_patient_by_id(
    conn: sqlite3.Connection, patient_id: str, alert_ids: Sequence[int]
) -> list[sqlite3.Row]:
    """These alerts, those of this patient only (another's id gives nothing)."""
    ids = [i for i in alert_ids if 0 <= i <= MAX_ID]
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return conn.execute(
        SELECT + f" WHERE a.patient_id = ? AND a.id IN ({marks})", (patient_id, *ids)
    ).fetchall()


def of_patient(conn: sqlite3.Connection, patient_id: str, limit: int = 50) -> list[sqlite3.Row]:
    """A patient's alerts, newest first."""
    return conn.execute(
        SELECT + " WHERE a.patient_id = ? ORDER BY a.opened_at DESC, a.id DESC LIMIT ?", (patient_id, limit)
    ).fetchall()


def in_period(conn: sqlite3.Connection, patient_id: str, start: str, end: str) -> list[sqlite3.Row]:
    """The patient's alerts live at some time in start..end (dates), most serious first."""
    return conn.execute(
        SELECT + " WHERE a.patient_id = ? AND a.opened_on <= ?"
        " AND (coalesce(a.closed_at, a.resolved_at) IS NULL OR coalesce(a.closed_at, a.resolved_at) >= ?)"
        f" ORDER BY {_SEVERITY_ORDER}, a.opened_on DESC, a.id DESC",
        (patient_id, end, start),
    ).fetchall()


def opened_since(conn: sqlite3.Connection, since: str) -> list[sqlite3.Row]:
    """Every alert opened at or after `since` (UTC ISO), for the response times."""
    return conn.execute(
        "SELECT severity, status, opened_at, acknowledged_at, resolved_at FROM alerts WHERE opened_at >= ?",
        (since,),
    ).fetchall()


def colleagues(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """The accounts an alert can be assigned to."""
    return conn.execute("SELECT id, name FROM users WHERE disabled_at IS NULL ORDER BY name").fetchall()


def is_colleague(conn: sqlite3.Connection, user_id: int) -> bool:
    return (
        conn.execute("SELECT 1 FROM users WHERE id = ? AND disabled_at IS NULL", (user_id,)).fetchone()
        is not None
    )


def open_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """The clinic menu's counts: live alerts (open or acknowledged) and how many are urgent."""
    row = conn.execute(
        "SELECT count(*) AS open, sum(severity = 'urgent') AS urgent FROM alerts"
        " WHERE status IN ('open', 'acknowledged')"
    ).fetchone()
    return {"open": row["open"] or 0, "urgent": row["urgent"] or 0} if row else {}
