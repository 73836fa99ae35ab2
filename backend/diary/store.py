"""The `responses` table: the only SQL on the answers patients sent.

`add` is the hot path of every diary entry: one INSERT per new response (it looks only when
the id was taken), inside the writer's transaction. The reads hand out plain tuples from a
cursor, never a list of every row, so the largest export streams.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from backend.diary.responses import Checked

Outcome = Literal["created", "duplicate", "conflict"]


def add(
    conn: sqlite3.Connection, patient_id: str, items: Iterable[Checked], received_at: str
) -> list[Outcome]:
    """Store checked responses idempotently by UUID: the same id with the same content is a
    no-op ("duplicate"), with other content (or another patient's) a "conflict"."""
    outcomes: list[Outcome] = []
    encode = msgspec.json.encode
    for c in items:
        # Insert first, look only when the id was taken: a new response (the common case)
        # costs one statement instead of two (make bench).
        cur = conn.execute(
            "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version,"
            " authored_at, authored_at_client, local_date, task_id, answers, scores, content_hash,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (
                c.id,
                patient_id,
                c.questionnaire,
                c.version,
                c.authored_at,
                c.authored_at_client,
                c.local_date,
                c.task_id,
                encode(c.answers).decode(),
                encode(c.scores).decode(),
                c.content_hash,
                received_at,
            ),
        )
        if cur.rowcount == 1:
            outcomes.append("created")
            continue
        row = conn.execute("SELECT patient_id, content_hash FROM responses WHERE id = ?", (c.id,)).fetchone()
        same = row[0] == patient_id and row[1] == c.content_hash
        outcomes.append("duplicate" if same else "conflict")
    return outcomes


def _tuples(conn: sqlite3.Connection) -> sqlite3.Cursor:
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: no Row object per response
    return cur


def of_patient(conn: sqlite3.Connection, patient_id: str, since: str | None = None) -> Iterator[tuple]:
    """A patient's responses received after `since` (all without it), in the order received:
    (id, questionnaire_id, questionnaire_version, authored_at_client, local_date, task_id,
    answers, received_at)."""
    sql = (
        "SELECT id, questionnaire_id, questionnaire_version, authored_at_client, local_date,"
        " task_id, answers, received_at FROM responses WHERE patient_id = ?"
    )
    params: list[Any] = [patient_id]
    if since:
        sql += " AND received_at > ?"
        params.append(since)
    return _tuples(conn).execute(sql + " ORDER BY received_at, rowid", params)


_ENTRY = "SELECT local_date, authored_at, rowid, questionnaire_id, answers, scores FROM responses"


def detection_rows(conn: sqlite3.Connection, patient_id: str, since: str, until: str) -> list[tuple]:
    """Every response detection reads, unsorted, superseded edits included: the diary of
    `since`..`until` (or, when there is none, the last diary before `until`) and every
    questionnaire up to `until`, as (local_date, authored_at, rowid, questionnaire_id,
    answers, scores)."""
    cur = _tuples(conn)
    rows = cur.execute(
        f"{_ENTRY} WHERE patient_id = ? AND local_date <= ?"
        " AND (questionnaire_id != 'diary' OR local_date >= ?)",
        (patient_id, until, since),
    ).fetchall()
    if not any(r[3] == "diary" for r in rows):
        rows += cur.execute(
            f"{_ENTRY} WHERE patient_id = ? AND questionnaire_id = 'diary' AND local_date <= ?"
            " ORDER BY local_date DESC, authored_at DESC, rowid DESC LIMIT 1",
            (patient_id, until),
        ).fetchall()
    return rows


def last_diary_received(conn: sqlite3.Connection, patient_id: str) -> str | None:
    """When a diary of the patient last reached the server (UTC ISO), or None."""
    row = conn.execute(
        "SELECT received_at FROM responses INDEXED BY responses_received"
        " WHERE patient_id = ? AND questionnaire_id = 'diary' ORDER BY received_at DESC LIMIT 1",
        (patient_id,),
    ).fetchone()
    return row[0] if row is not None else None
