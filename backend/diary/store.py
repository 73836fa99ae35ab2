"""The `responses` table: the only SQL on the answers patients sent.

`add` is the hot path of every diary entry: one INSERT per new response (it looks only when
the id was taken), inside the writer's transaction. The reads hand out plain tuples from a
cursor, never a list of every row, so the largest export streams.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import msgspec

from backend.platform.storage import data_version

if TYPE_CHECKING:
    from backend.diary.responses import Checked

Outcome = Literal["created", "duplicate", "conflict", "throttled"]

# How many responses one questionnaire of one day may get in an hour (the first included;
# settings.max_edits_per_hour, PIJNWACHT_MAX_EDITS_PER_HOUR, sets it for the server):
# a person corrects a day a few times; a phone re-sending it without end is broken, and
# without a cap every edit would still be stored and judged (issue 17). Counted per day in
# current_response_ids (current_response_schema.CURRENT_RESPONSE_TRIGGERS keeps the count).
MAX_EDITS_PER_HOUR = 100


class Outcomes(list):
    """The outcome of each item, in order; `retry_at`: when a throttled day takes edits again."""

    retry_at: str | None = None


def add(
    conn: sqlite3.Connection,
    patient_id: str,
    items: Iterable[Checked],
    received_at: str,
    *,
    max_edits: int = MAX_EDITS_PER_HOUR,
) -> Outcomes:
    """Store checked responses idempotently by UUID: the same id with the same content is a
    no-op ("duplicate"), with other content (or another patient's) a "conflict".

    "throttled": not stored, the day had `max_edits` responses in its hour already (0: no cap)
    (a re-sent one is still "duplicate": the phone may always hear it was saved). The
    insert trigger makes the response the day's current one if it is the last written.
    """
    outcomes = Outcomes()
    encode = msgspec.json.encode
    for c in items:
        # One statement for a new response (the common case): stored unless its id is taken
        # or its day is at the cap; only then is it looked at again.
        cur = conn.execute(
            "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version,"
            " authored_at, authored_at_client, local_date, task_id, answers, scores, content_hash,"
            " received_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " WHERE ? = 0 OR NOT EXISTS (SELECT 1 FROM current_response_ids WHERE patient_id = ?"
            " AND questionnaire_id = ? AND local_date = ? AND edits >= ? AND edits_until > ?)"
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
                max_edits,
                patient_id,
                c.questionnaire,
                c.local_date,
                max_edits,
                received_at,
            ),
        )
        if cur.rowcount == 1:
            outcomes.append("created")
            continue
        seen = _seen(conn, patient_id, c)
        if seen is not None:
            outcomes.append(seen)
            continue
        until = conn.execute(
            "SELECT edits_until FROM current_response_ids"
            " WHERE patient_id = ? AND questionnaire_id = ? AND local_date = ?",
            (patient_id, c.questionnaire, c.local_date),
        ).fetchone()[0]
        outcomes.append("throttled")
        outcomes.retry_at = max(outcomes.retry_at or "", until)
    return outcomes


def _seen(conn: sqlite3.Connection, patient_id: str, c: Checked) -> Outcome | None:
    """ "duplicate" (this patient, this content) or "conflict" for a stored id; None if new."""
    row = conn.execute("SELECT patient_id, content_hash FROM responses WHERE id = ?", (c.id,)).fetchone()
    if row is None:
        return None
    return "duplicate" if row[0] == patient_id and row[1] == c.content_hash else "conflict"


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


_ENTRY = (
    "SELECT c.local_date, c.authored_at, c.questionnaire_id, r.answers, r.scores"
    " FROM current_response_ids c JOIN responses r ON r.id = c.response_id"
    " WHERE c.patient_id = ? AND c.questionnaire_id = ?"
)


def detection_rows(conn: sqlite3.Connection, patient_id: str, since: str, until: str) -> list[tuple]:
    """The current responses detection reads (one per questionnaire and day, edits resolved
    by current_response_ids), unsorted: the diary of `since`..`until` (or, when there is
    none, the last diary before `until`) and the last two of every other questionnaire up to
    `until` (the rules compare the latest with the one before), as (local_date, authored_at,
    questionnaire_id, answers, scores). The same cost after 20 or 30 000 edits of a day and
    after one or ten years of history."""
    cur = _tuples(conn)
    rows = cur.execute(
        f"{_ENTRY} AND c.local_date >= ? AND c.local_date <= ?", (patient_id, "diary", since, until)
    ).fetchall()
    if not rows:
        rows = cur.execute(
            f"{_ENTRY} AND c.local_date <= ? ORDER BY c.local_date DESC LIMIT 1", (patient_id, "diary", until)
        ).fetchall()
    # The patient's other questionnaires: a skip along the primary key, one seek each.
    qid = ""
    while True:
        nxt = cur.execute(
            "SELECT questionnaire_id FROM current_response_ids WHERE patient_id = ? AND questionnaire_id > ?"
            " ORDER BY questionnaire_id LIMIT 1",
            (patient_id, qid),
        ).fetchone()
        if nxt is None:
            return rows
        qid = nxt[0]
        if qid != "diary":
            rows += cur.execute(
                f"{_ENTRY} AND c.local_date <= ? ORDER BY c.local_date DESC LIMIT 2", (patient_id, qid, until)
            ).fetchall()


# -- what changed since detection last read a patient (incremental detection, issue 17) -------
# A connection that evaluates patients again and again (the writer) keeps what it read per
# patient; this temporary table and its triggers (this connection's own, inside its
# transactions: a rolled-back write takes its traces with it) say what changed since.
# `detection_seen`: the patients whose read is kept, with a token the keeper chose, and in
# `stored` the responses stored for them since, as a JSON list (a copy of what detection
# reads: the read after an edit is the copy, not a join), returned and emptied with the next
# token. A change by another connection shows in `data_version`; an update or delete of a
# response forgets the patient, and so does a list grown past NOTES_MAX (a batch of
# thousands: the patient is read afresh). Detection also reads the patient's open alerts:
# `alerts` is the token under which they were read, cleared by any write of one of the
# patient's alerts (the lifecycle's own, a clinician's acknowledgement).
# (~70 diary entries: each note re-writes the list, and a full read costs less than that)
NOTES_MAX = 20_000
_WATCH = (
    "CREATE TEMP TABLE IF NOT EXISTS detection_seen (patient_id TEXT PRIMARY KEY, token INTEGER NOT NULL,"
    " was INTEGER, alerts INTEGER, alerts_was INTEGER, stored TEXT, got TEXT)",
    # (a token of -1 is never a keeper's: the patient is read afresh)
    "CREATE TEMP TRIGGER IF NOT EXISTS detection_insert AFTER INSERT ON main.responses BEGIN"
    " UPDATE detection_seen SET"
    f" token = CASE WHEN length(stored) > {NOTES_MAX} THEN -1 ELSE token END,"
    f" stored = CASE WHEN length(stored) > {NOTES_MAX} OR token = -1 THEN NULL"
    " ELSE json_insert(coalesce(stored, '[]'), '$[#]', json_array(new.local_date, new.authored_at,"
    " new.questionnaire_id, CAST(new.answers AS TEXT), CAST(new.scores AS TEXT))) END"
    " WHERE patient_id = new.patient_id; END",
    "CREATE TEMP TRIGGER IF NOT EXISTS detection_update AFTER UPDATE ON main.responses BEGIN"
    " DELETE FROM detection_seen WHERE patient_id IN (old.patient_id, new.patient_id); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS detection_delete AFTER DELETE ON main.responses BEGIN"
    " DELETE FROM detection_seen WHERE patient_id = old.patient_id; END",
    "CREATE TEMP TRIGGER IF NOT EXISTS detection_alert_insert AFTER INSERT ON main.alerts BEGIN"
    " UPDATE detection_seen SET alerts = NULL WHERE patient_id = new.patient_id; END",
    "CREATE TEMP TRIGGER IF NOT EXISTS detection_alert_update AFTER UPDATE ON main.alerts BEGIN"
    " UPDATE detection_seen SET alerts = NULL WHERE patient_id IN (old.patient_id, new.patient_id); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS detection_alert_delete AFTER DELETE ON main.alerts BEGIN"
    " UPDATE detection_seen SET alerts = NULL WHERE patient_id = old.patient_id; END",
)


class Seen(NamedTuple):
    """What `renew_token` found of a patient in this connection's transaction state."""

    version: int  # SQLite's data_version: it changes when another connection committed
    token: int | None  # the token `kept` last stored (None: nothing kept, rolled back, forgotten)
    alerts: int | None  # the token the open alerts were kept under (None: one changed since)
    stored: list[tuple]  # the responses stored since, as `detection_rows` gives them


def renew_token(conn: sqlite3.Connection, patient_id: str, token: int) -> Seen:
    """What the keeper of a patient's read needs to know (`Seen`), the tokens replaced by
    `token` and the stored responses taken (one statement: the keeper's next token is taken
    with the check); sets the watch up on first use. `stored`: the last response stored for
    each (questionnaire, day) since; it is that day's current response unless the one the
    caller kept was authored later (current_response_ids: the latest authored, of equals the
    last stored; a stored one is the last)."""
    try:
        row = conn.execute(
            "UPDATE detection_seen SET token = ?1, was = token, alerts_was = alerts, alerts = ?1,"
            " got = stored, stored = NULL WHERE patient_id = ?2 RETURNING was, alerts_was, got",
            (token, patient_id),
        ).fetchone()
    except sqlite3.OperationalError:  # not set up on this connection (or its set-up rolled back)
        for sql in _WATCH:
            conn.execute(sql)
        row = None
    if row is None:
        return Seen(data_version(conn), None, None, [])
    last: dict[tuple[str, str], tuple] = {}
    for note in msgspec.json.decode(row[2]) if row[2] else ():  # as stored
        key = (note[2], note[0])
        if key not in last or note[1] >= last[key][1]:
            last[key] = tuple(note)
    return Seen(data_version(conn), row[0], row[1], list(last.values()))


def kept(conn: sqlite3.Connection, patient_id: str, token: int) -> None:
    """From now on, note the days the patient's responses change (`Seen.stored`), and
    whether one of their alerts does."""
    conn.execute(
        "INSERT OR REPLACE INTO detection_seen (patient_id, token, alerts) VALUES (?1, ?2, ?2)",
        (patient_id, token),
    )


def forget(conn: sqlite3.Connection, patient_id: str | None = None) -> None:
    """Stop noting changes of the patient (None: of everyone)."""
    if patient_id is None:
        conn.execute("DELETE FROM detection_seen")
    else:
        conn.execute("DELETE FROM detection_seen WHERE patient_id = ?", (patient_id,))


def last_diary_received(conn: sqlite3.Connection, patient_id: str) -> str | None:
    """When a diary of the patient last reached the server (UTC ISO), or None."""
    row = conn.execute(
        "SELECT received_at FROM responses INDEXED BY responses_received"
        " WHERE patient_id = ? AND questionnaire_id = 'diary' ORDER BY received_at DESC LIMIT 1",
        (patient_id,),
    ).fetchone()
    return row[0] if row is not None else None


# -- exports: the history and the current responses of a patient or everyone, in a period --------
def _where(patient_id: str | None, date_from: str | None, date_to: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if patient_id is not None:
        clauses.append("patient_id = ?")
        params.append(patient_id)
    if date_from:
        clauses.append("local_date >= ?")
        params.append(date_from)
    if date_to:
        clauses.append("local_date <= ?")
        params.append(date_to)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _table(current: bool) -> str:
    # current_responses: the one response per questionnaire and day that counts (edits resolved).
    return "current_responses" if current else "responses"


def any_in(
    conn: sqlite3.Connection,
    patient_id: str | None,
    date_from: str | None,
    date_to: str | None,
    *,
    current: bool = False,
) -> bool:
    """Whether there is a response of the patient (None: anyone) in the period."""
    where, params = _where(patient_id, date_from, date_to)
    return conn.execute(f"SELECT 1 FROM {_table(current)}{where} LIMIT 1", params).fetchone() is not None


def patients_in(
    conn: sqlite3.Connection, date_from: str | None, date_to: str | None, *, current: bool = False
) -> list[str]:
    """The ids of the patients with responses in the period, sorted."""
    where, params = _where(None, date_from, date_to)
    sql = f"SELECT DISTINCT patient_id FROM {_table(current)}{where} ORDER BY 1"
    return [row[0] for row in conn.execute(sql, params)]


def history(
    conn: sqlite3.Connection, patient_id: str | None, date_from: str | None, date_to: str | None
) -> sqlite3.Cursor:
    """Every response (superseded edits too) as (patient_id, id, questionnaire_id,
    questionnaire_version, authored_at, local_date, answers), by patient, day, authored_at."""
    where, params = _where(patient_id, date_from, date_to)
    return _tuples(conn).execute(
        "SELECT patient_id, id, questionnaire_id, questionnaire_version, authored_at, local_date,"
        f" answers FROM responses{where} ORDER BY patient_id, local_date, authored_at, rowid",
        params,
    )


def current_score_keys(
    conn: sqlite3.Connection, patient_id: str | None, date_from: str | None, date_to: str | None
) -> set[tuple[str, str]]:
    """The (questionnaire, score id) pairs of the current responses in the period."""
    where, params = _where(patient_id, date_from, date_to)
    sql = f"SELECT DISTINCT r.questionnaire_id, j.key FROM current_responses r, json_each(r.scores) j{where}"
    return {(qid, key) for qid, key in conn.execute(sql, params)}


def current_days(
    conn: sqlite3.Connection, patient_id: str | None, date_from: str | None, date_to: str | None
) -> sqlite3.Cursor:
    """The current responses as (patient_id, local_date, questionnaire_id, answers, scores), by
    patient and day."""
    where, params = _where(patient_id, date_from, date_to)
    return _tuples(conn).execute(
        "SELECT patient_id, local_date, questionnaire_id, answers, scores"
        f" FROM current_responses{where} ORDER BY patient_id, local_date",
        params,
    )


def current_versions(
    conn: sqlite3.Connection, patient_id: str | None, date_from: str | None, date_to: str | None
) -> list[tuple[str, int]]:
    """The (questionnaire, version) pairs of the current responses in the period, sorted."""
    where, params = _where(patient_id, date_from, date_to)
    sql = (
        f"SELECT DISTINCT questionnaire_id, questionnaire_version FROM current_responses{where} ORDER BY 1, 2"
    )
    return [(r[0], r[1]) for r in conn.execute(sql, params)]


def current_full(
    conn: sqlite3.Connection, patient_id: str | None, date_from: str | None, date_to: str | None
) -> sqlite3.Cursor:
    """The current responses whole: (id, patient_id, questionnaire_id, questionnaire_version,
    authored_at, local_date, answers, scores), by patient, day and questionnaire."""
    where, params = _where(patient_id, date_from, date_to)
    return _tuples(conn).execute(
        "SELECT id, patient_id, questionnaire_id, questionnaire_version, authored_at, local_date,"
        f" answers, scores FROM current_responses{where} ORDER BY patient_id, local_date, questionnaire_id",
        params,
    )


def current_of(conn: sqlite3.Connection, patient_id: str) -> sqlite3.Cursor:
    """One patient's current responses as (local_date, questionnaire_id, answers, scores)."""
    return _tuples(conn).execute(
        "SELECT local_date, questionnaire_id, answers, scores FROM current_responses WHERE patient_id = ?",
        (patient_id,),
    )


def score_keys_of(conn: sqlite3.Connection, patient_ids: Iterable[str]) -> set[tuple[str, str]]:
    """The (questionnaire, score id) pairs the patients' questionnaires (not the diary) have."""
    ids = list(patient_ids)
    found: set[tuple[str, str]] = set()
    for start in range(0, len(ids), 500):  # SQLite's variable limit
        part = ids[start : start + 500]
        found.update(
            (r[0], r[1])
            for r in conn.execute(
                "SELECT DISTINCT r.questionnaire_id, j.key FROM responses r, json_each(r.scores) j"
                f" WHERE r.patient_id IN ({','.join('?' * len(part))}) AND r.questionnaire_id != 'diary'",
                part,
            )
        )
    return found


def current_between(conn: sqlite3.Connection, patient_id: str, since: str, until: str) -> list[tuple]:
    """(local_date, questionnaire_id, questionnaire_version, answers JSON, scores JSON) of the
    patient's current responses dated since..until (inclusive), by day."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur.execute(
        "SELECT local_date, questionnaire_id, questionnaire_version, answers, scores FROM current_responses"
        " WHERE patient_id = ? AND local_date >= ? AND local_date <= ? ORDER BY local_date, authored_at",
        (patient_id, since, until),
    ).fetchall()


def scored_of(conn: sqlite3.Connection, patient_id: str) -> list[tuple]:
    """(local_date, questionnaire_id, questionnaire_version, scores JSON) of the patient's current
    scored responses other than the diary, oldest first."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur.execute(
        "SELECT local_date, questionnaire_id, questionnaire_version, scores FROM current_responses"
        " WHERE patient_id = ? AND questionnaire_id != 'diary' AND scores IS NOT NULL"
        " ORDER BY local_date, authored_at",
        (patient_id,),
    ).fetchall()
