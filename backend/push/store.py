"""The SQL of push's two tables, `push_subscriptions` (a browser's endpoint and keys, of a
patient or a clinician) and `push_queue` (one row per push to one device).

Every other module reaches these tables through the functions here. Every state change of a
queue row is a compare-and-set on its `claim`, so two flushes never send the same row and a
sender that crashed after claiming leaves rows a later flush takes over.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from backend.platform.storage import parse_iso, prune_chunk_by_id

# -- push_subscriptions -------------------------------------------------------------------


def subscription_by_endpoint(conn: sqlite3.Connection, endpoint: str) -> sqlite3.Row | None:
    """(id, patient_id, user_id, deactivated_at) of the endpoint's row, active or not."""
    return conn.execute(
        "SELECT id, patient_id, user_id, deactivated_at FROM push_subscriptions WHERE endpoint = ?",
        (endpoint,),
    ).fetchone()


def insert_subscription(
    conn: sqlite3.Connection,
    *,
    patient_id: str | None,
    user_id: int | None,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str | None,
    at: str,
) -> int:
    cur = conn.execute(
        "INSERT INTO push_subscriptions (patient_id, user_id, endpoint, p256dh, auth,"
        " user_agent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (patient_id, user_id, endpoint, p256dh, auth, user_agent, at),
    )
    return int(cur.lastrowid)


def renew_subscription(
    conn: sqlite3.Connection,
    subscription_id: int,
    *,
    patient_id: str | None,
    user_id: int | None,
    p256dh: str,
    auth: str,
    user_agent: str | None,
) -> None:
    """New keys (and perhaps a new owner) for an endpoint; active again, failures forgotten."""
    conn.execute(
        "UPDATE push_subscriptions SET patient_id = ?, user_id = ?, p256dh = ?, auth = ?,"
        " user_agent = COALESCE(?, user_agent), failures = 0, deactivated_at = NULL"
        " WHERE id = ?",
        (patient_id, user_id, p256dh, auth, user_agent, subscription_id),
    )


def active_subscription_id(
    conn: sqlite3.Connection, endpoint: str, *, patient_id: str | None, user_id: int | None
) -> int | None:
    row = conn.execute(
        "SELECT id FROM push_subscriptions WHERE endpoint = ? AND deactivated_at IS NULL"
        " AND patient_id IS ? AND user_id IS ?",
        (endpoint, patient_id, user_id),
    ).fetchone()
    return None if row is None else int(row[0])


def deactivate(conn: sqlite3.Connection, subscription_id: int, at: str) -> None:
    conn.execute("UPDATE push_subscriptions SET deactivated_at = ? WHERE id = ?", (at, subscription_id))


def dropped_by_service(conn: sqlite3.Connection, subscription_id: int, at: str) -> int:
    """The push service said the subscription is gone (404/410): 1 if it was active."""
    return conn.execute(
        "UPDATE push_subscriptions SET deactivated_at = ?, failures = failures + 1"
        " WHERE id = ? AND deactivated_at IS NULL",
        (at, subscription_id),
    ).rowcount


def note_success(conn: sqlite3.Connection, subscription_id: int, at: str) -> None:
    conn.execute(
        "UPDATE push_subscriptions SET last_success_at = ?, failures = 0 WHERE id = ?",
        (at, subscription_id),
    )


def note_failure(conn: sqlite3.Connection, subscription_id: int) -> None:
    conn.execute("UPDATE push_subscriptions SET failures = failures + 1 WHERE id = ?", (subscription_id,))


def subscribed_user_ids(conn: sqlite3.Connection) -> list[int]:
    """The clinicians with at least one active device."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT user_id FROM push_subscriptions"
            " WHERE user_id IS NOT NULL AND deactivated_at IS NULL"
        )
    ]


# -- push_queue ---------------------------------------------------------------------------


def kill_queued(conn: sqlite3.Connection, subscription_id: int, why: str) -> None:
    """Messages still queued for this subscription will never be sent (`why` recorded)."""
    conn.execute(
        "UPDATE push_queue SET status = 'dead', last_status = ?"
        " WHERE subscription_id = ? AND status = 'queued'",
        (why, subscription_id),
    )


def enqueue(
    conn: sqlite3.Connection,
    owner: Literal["patient_id", "user_id"],
    owner_id: str | int,
    *,
    payload: str,
    urgency: str,
    ttl: int,
    topic: str | None,
    at: str,
    expires_at: str,
) -> int:
    """One queued row per active device of the owner; how many."""
    return conn.execute(
        "INSERT INTO push_queue (subscription_id, payload, urgency, ttl, topic, created_at,"
        " expires_at, next_attempt_at)"
        f" SELECT id, ?, ?, ?, ?, ?, ?, ? FROM push_subscriptions"
        f" WHERE {owner} = ? AND deactivated_at IS NULL",
        (payload, urgency, ttl, topic, at, expires_at, at, owner_id),
    ).rowcount


def enqueue_messages(conn: sqlite3.Connection, table: str, *, at: str, at_s: int) -> int:
    """Queue, in two statements, one push per active device for every row of `table` (a
    TEMP table of the caller with columns patient_id, payload, ttl, tag, devices: one
    message per patient, payload as `queue.payload` makes it); set each row's `devices` to
    how many active devices its patient has. `at_s`: `at` in unix seconds. How many queued.

    The subscriptions are reached as `patient_id IN (SELECT ...)` along their patient index
    (one lookup per message), never by a join SQLite might answer with a scan of the table.
    """
    conn.execute(
        f"UPDATE {table} SET devices = (SELECT count(*) FROM push_subscriptions s"
        f" WHERE s.patient_id = {table}.patient_id AND s.deactivated_at IS NULL)"
    )
    return conn.execute(
        "INSERT INTO push_queue (subscription_id, payload, urgency, ttl, topic, created_at,"
        " expires_at, next_attempt_at)"
        " SELECT s.id, m.payload, 'normal', m.ttl, m.tag, :now,"
        "  strftime('%Y-%m-%dT%H:%M:%SZ', :now_s + m.ttl, 'unixepoch'), :now"
        f" FROM push_subscriptions AS s INDEXED BY push_subscriptions_patient CROSS JOIN {table} AS m"
        f" WHERE s.patient_id IN (SELECT patient_id FROM {table})"
        " AND s.deactivated_at IS NULL AND m.patient_id = s.patient_id",
        {"now": at, "now_s": at_s},
    ).rowcount


def prune_chunk(conn: sqlite3.Connection, before: str, after_id: int, limit: int) -> tuple[int, int | None]:
    """One chunk of the queue's prune (`storage.prune_chunk_by_id`): the finished rows (sent or
    dead) created before `before`; a pending old row is passed over, kept."""
    return prune_chunk_by_id(
        conn, "push_queue", "created_at", before, after_id, limit, keep="status IN ('sent', 'dead')"
    )


@dataclass
class QueuedPush:
    """A claimed queue row with its device's endpoint and keys."""

    id: int
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: str
    urgency: str
    topic: str | None
    expires_at: datetime
    attempts: int


def claim(
    conn: sqlite3.Connection, *, at: str, stale_before: str, limit: int, claim: str
) -> tuple[list[QueuedPush], int, int]:
    """Take up to `limit` due rows (and rows left in 'sending' since before `stale_before`)
    for the sender `claim`; return them, how many expired unsent, and how many were for a
    device unsubscribed meanwhile (those die)."""
    # Messages past their TTL are pointless now ("time for your diary" at midnight).
    expired = conn.execute(
        "UPDATE push_queue SET status = 'dead', last_status = 'expired'"
        " WHERE status = 'queued' AND next_attempt_at <= ? AND expires_at < ?",
        (at, at),
    ).rowcount
    claimed = conn.execute(
        "UPDATE push_queue SET status = 'sending', claimed_at = ?, claim = ?,"
        " attempts = attempts + 1"
        " WHERE id IN (SELECT id FROM push_queue"
        "   WHERE (status = 'queued' AND next_attempt_at <= ?)"
        "      OR (status = 'sending' AND claimed_at <= ?)"
        "   ORDER BY next_attempt_at, id LIMIT ?)"
        " RETURNING id",
        (at, claim, at, stale_before, limit),
    ).fetchall()
    if not claimed:
        return [], expired, 0
    rows = conn.execute(
        "SELECT q.id, q.subscription_id, s.endpoint, s.p256dh, s.auth, q.payload,"
        " q.urgency, q.topic, q.expires_at, q.attempts, s.deactivated_at"
        " FROM push_queue q JOIN push_subscriptions s ON s.id = q.subscription_id"
        " WHERE q.claim = ? AND q.status = 'sending' ORDER BY q.id",
        (claim,),
    ).fetchall()
    live: list[QueuedPush] = []
    gone = 0
    for r in rows:
        if r[10] is not None:
            conn.execute(
                "UPDATE push_queue SET status = 'dead', last_status = 'unsubscribed'"
                " WHERE id = ? AND claim = ?",
                (r[0], claim),
            )
            gone += 1
            continue
        live.append(QueuedPush(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], parse_iso(r[8]), r[9]))
    return live, expired, gone


def _settle(conn: sqlite3.Connection, row_id: int, claim: str, sql: str, *params: Any) -> bool:
    """Compare-and-set on a row this sender claimed and still holds."""
    cur = conn.execute(
        f"UPDATE push_queue SET {sql} WHERE id = ? AND claim = ? AND status = 'sending'",
        (*params, row_id, claim),
    )
    return cur.rowcount == 1


def release(conn: sqlite3.Connection, row_id: int, claim: str) -> bool:
    """Back in line, not tried: the attempt is not counted."""
    return _settle(
        conn, row_id, claim, "status = 'queued', claim = NULL, claimed_at = NULL, attempts = attempts - 1"
    )


def mark_sent(conn: sqlite3.Connection, row_id: int, claim: str, *, at: str, last: str) -> bool:
    return _settle(conn, row_id, claim, "status = 'sent', sent_at = ?, last_status = ?", at, last)


def mark_dead(conn: sqlite3.Connection, row_id: int, claim: str, *, last: str) -> bool:
    return _settle(conn, row_id, claim, "status = 'dead', last_status = ?", last)


def retry_at(conn: sqlite3.Connection, row_id: int, claim: str, *, when: str, last: str) -> bool:
    return _settle(
        conn,
        row_id,
        claim,
        "status = 'queued', claim = NULL, claimed_at = NULL, next_attempt_at = ?, last_status = ?",
        when,
        last,
    )
