"""The SQL of the tasks' tables: `tasks` (one questionnaire due on one day), `patient_schedule`
(how far each patient is planned, and from what), `reminder_log` (every reminder claimed)
and `scheduler_lease` (which process ticks), plus the scratch tables of the 20:00 claim.

Every other module reaches these tables through the functions here. The planning rules are
in `scheduler`, the claim's steps in `reminders`, the tick's order in `tick`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import date, datetime
from typing import NamedTuple

from backend.platform.storage import iso, prune_chunk_by_id
from backend.tasks.schedule import PlannedTask

# -- planning -------------------------------------------------------------------------------


def plan_state(conn: sqlite3.Connection, patient_id: str) -> sqlite3.Row | None:
    """(plan_key, planned_until) of the patient's last plan; None: never planned."""
    return conn.execute(
        "SELECT plan_key, planned_until FROM patient_schedule WHERE patient_id = ?",
        (patient_id,),
    ).fetchone()


def save_plan_state(
    conn: sqlite3.Connection,
    patient_id: str,
    *,
    pathway_id: str | None,
    pathway_checksum: str | None,
    key: str,
    planned_until: str | None,
    roll_at: str | None,
    at: str,
) -> None:
    conn.execute(
        "INSERT INTO patient_schedule (patient_id, pathway_id, pathway_checksum, plan_key,"
        " planned_until, next_roll_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (patient_id) DO UPDATE SET pathway_id = excluded.pathway_id,"
        " pathway_checksum = excluded.pathway_checksum, plan_key = excluded.plan_key,"
        " planned_until = excluded.planned_until, next_roll_at = excluded.next_roll_at,"
        " updated_at = excluded.updated_at",
        (patient_id, pathway_id, pathway_checksum, key, planned_until, roll_at, at),
    )


def cancel_open(conn: sqlite3.Connection, patient_id: str) -> int:
    """Every open task of the patient cancelled (they left); how many."""
    return conn.execute(
        "UPDATE tasks SET status = 'cancelled', next_reminder_at = NULL"
        " WHERE patient_id = ? AND status = 'open'",
        (patient_id,),
    ).rowcount


def _row(patient_id: str, t: PlannedTask, next_reminder: str | None, at: str) -> tuple:
    return (
        patient_id,
        t.questionnaire,
        t.label,
        t.local_date.isoformat(),
        t.until_date.isoformat(),
        iso(t.opens_at),
        iso(t.due_at),
        iso(t.expires_at),
        json.dumps([iso(r) for r in t.reminders]),
        next_reminder,
        at,
    )


_INSERT = (
    "INSERT INTO tasks (patient_id, questionnaire_id, label, local_date, until_date, opens_at,"
    " due_at, expires_at, reminder_times, next_reminder_at, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def add_new(
    conn: sqlite3.Connection, patient_id: str, tasks: Iterable[tuple[PlannedTask, str | None]], at: str
) -> int:
    """Store (task, next reminder) pairs not stored yet (a task of that questionnaire and day
    exists: skipped); how many were added."""
    before = conn.total_changes
    conn.executemany(_INSERT + " ON CONFLICT DO NOTHING", [_row(patient_id, t, nxt, at) for t, nxt in tasks])
    return conn.total_changes - before


def add(
    conn: sqlite3.Connection, patient_id: str, t: PlannedTask, next_reminder: str | None, at: str
) -> None:
    conn.execute(_INSERT, _row(patient_id, t, next_reminder, at))


def tasks_until_from(conn: sqlite3.Connection, patient_id: str, day: date) -> list[sqlite3.Row]:
    """(id, questionnaire_id, local_date, status, reminders_sent) of the patient's tasks whose
    window reaches `day` or later."""
    return conn.execute(
        "SELECT id, questionnaire_id, local_date, status, reminders_sent FROM tasks"
        " WHERE patient_id = ? AND until_date >= ?",
        (patient_id, day.isoformat()),
    ).fetchall()


def replan(
    conn: sqlite3.Connection, task_id: int, t: PlannedTask, times: list[str], next_reminder: str | None
) -> None:
    """A stored task moved to its new plan, open again."""
    conn.execute(
        "UPDATE tasks SET label = ?, until_date = ?, opens_at = ?, due_at = ?,"
        " expires_at = ?, reminder_times = ?, next_reminder_at = ?, status = 'open'"
        " WHERE id = ?",
        (
            t.label,
            t.until_date.isoformat(),
            iso(t.opens_at),
            iso(t.due_at),
            iso(t.expires_at),
            json.dumps(times),
            next_reminder,
            task_id,
        ),
    )


def cancel(conn: sqlite3.Connection, task_id: int) -> None:
    conn.execute("UPDATE tasks SET status = 'cancelled', next_reminder_at = NULL WHERE id = ?", (task_id,))


def due_for_planning(conn: sqlite3.Connection, at: str, limit: int) -> list[str]:
    """Patients whose plan is due (new, changed, near the end of its horizon), oldest first."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT patient_id FROM patient_schedule WHERE next_roll_at <= ? ORDER BY next_roll_at LIMIT ?",
            (at, limit),
        )
    ]


def plan_again_at(conn: sqlite3.Connection, patient_id: str, at: str) -> None:
    conn.execute("UPDATE patient_schedule SET next_roll_at = ? WHERE patient_id = ?", (at, patient_id))


def mark_stale_plans(conn: sqlite3.Connection, pathways: Iterable[tuple[str, str]], at: str) -> int:
    """Patients planned from another version (checksum) of their pathway than these (id,
    checksum) pairs are due for planning; how many."""
    n = 0
    for pathway_id, checksum in pathways:
        # `<` or `>` rather than `!=`: two index range scans that are empty when nothing changed.
        n += conn.execute(
            "UPDATE patient_schedule SET next_roll_at = ? WHERE pathway_id = ?"
            " AND (pathway_checksum < ? OR pathway_checksum > ?)"
            " AND (next_roll_at IS NULL OR next_roll_at > ?) AND plan_key != 'left'",
            ("", pathway_id, checksum, checksum, at),
        ).rowcount
    return n


def expire(conn: sqlite3.Connection, at: str) -> int:
    """Open tasks whose window has closed by `at` become expired; how many."""
    return conn.execute(
        "UPDATE tasks SET status = 'expired', next_reminder_at = NULL"
        " WHERE status = 'open' AND expires_at <= ?",
        (at,),
    ).rowcount


# -- what the patient does ------------------------------------------------------------------


def open_task_window(conn: sqlite3.Connection, patient_id: str, task_id: int) -> sqlite3.Row | None:
    """(expires_at, timezone) of an open task of this patient; None: no such open task."""
    return conn.execute(
        "SELECT t.expires_at, p.timezone FROM tasks t JOIN patients p ON p.id = t.patient_id"
        " WHERE t.id = ? AND t.patient_id = ? AND t.status = 'open'",
        (task_id, patient_id),
    ).fetchone()


def rearm(conn: sqlite3.Connection, patient_id: str, task_id: int, at: str) -> bool:
    """Compare-and-set: the open task's next reminder at `at`, if its window is open then."""
    cur = conn.execute(
        "UPDATE tasks SET next_reminder_at = ? WHERE id = ? AND patient_id = ? AND status = 'open'"
        " AND expires_at > ?",
        (at, task_id, patient_id, at),
    )
    return cur.rowcount == 1


def open_tasks(conn: sqlite3.Connection, patient_id: str, now: datetime) -> list[dict]:
    """The patient's tasks to do now: open, begun (from local midnight of their day), not expired.

    A task shows from the start of its day (today's diary in the morning, too), not only
    from its reminder time. Sorted by due time.
    """
    rows = conn.execute(
        "SELECT id, questionnaire_id, label, local_date, due_at, expires_at, status FROM tasks"
        " WHERE patient_id = ? AND status = 'open' AND opens_at <= ? AND expires_at > ?"
        " ORDER BY due_at, questionnaire_id",
        (patient_id, iso(now), iso(now)),
    ).fetchall()
    return [
        {
            "id": r["id"],
            "questionnaire": r["questionnaire_id"],
            "label": r["label"],
            "local_date": r["local_date"],
            "due_at": r["due_at"],
            "expires_at": r["expires_at"],
            "status": r["status"],
        }
        for r in rows
    ]


def complete_task(
    conn: sqlite3.Connection,
    *,
    patient_id: str,
    questionnaire_id: str,
    task_id: int | None,
    local_date: str,
    response_id: str,
) -> int | None:
    """Mark the task a new response answers as done; return its id (None: no such task).

    With `task_id`: that task, if it is the patient's and for this questionnaire (else the
    id is ignored and the response is matched as without one). Without: the task of this
    questionnaire whose window holds the response's local_date (the diary: that very day),
    preferring an open one. An expired task is completed too: a diary written on time
    offline and synced late was answered. An edit (a task already done) changes nothing.
    Call inside the writer transaction that stores the response.
    """
    row = None
    if task_id is not None:
        row = conn.execute(
            "SELECT id, status FROM tasks WHERE id = ? AND patient_id = ? AND questionnaire_id = ?",
            (task_id, patient_id, questionnaire_id),
        ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT id, status FROM tasks WHERE patient_id = ? AND questionnaire_id = ?"
            " AND local_date <= ? AND until_date >= ? AND status IN ('open', 'expired', 'done')"
            " ORDER BY status = 'open' DESC, status = 'expired' DESC, local_date DESC LIMIT 1",
            (patient_id, questionnaire_id, local_date, local_date),
        ).fetchone()
    if row is None or row["status"] == "cancelled":
        return None
    if row["status"] != "done":
        conn.execute(
            "UPDATE tasks SET status = 'done', response_id = ?, next_reminder_at = NULL"
            " WHERE id = ? AND status IN ('open', 'expired')",
            (response_id, row["id"]),
        )
    return int(row["id"])


# -- the reminders' claim -------------------------------------------------------------------
# The claim, in SQL: a few statements per chunk of up to CLAIM_CHUNK due reminders, no
# Python per reminder (the 20:00 minute has every patient's diary due at once). The chunk
# lives in scratch tables of the writer's connection (TEMP: never in the file, never seen
# by another connection), emptied by every job: its tasks, with the reminder time each was
# read at (the log keeps it after the claim moved it) and its patient's language and time
# zone (read once, as the task is picked), and one push message per patient.
_CHUNK_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS scheduler_claim (id INTEGER NOT NULL,"
    " patient_id TEXT NOT NULL, questionnaire_id TEXT NOT NULL, expires_at TEXT NOT NULL,"
    " planned_at TEXT NOT NULL, answered INTEGER NOT NULL, language TEXT NOT NULL,"
    " timezone TEXT NOT NULL, PRIMARY KEY (patient_id, id)) WITHOUT ROWID",
    # The messages are queued by push's store (`enqueue_messages`), which sets `devices`.
    "CREATE TEMP TABLE IF NOT EXISTS scheduler_message (patient_id TEXT PRIMARY KEY,"
    " payload TEXT NOT NULL, ttl INTEGER NOT NULL, tag TEXT NOT NULL, devices INTEGER)"
    " WITHOUT ROWID",
    # When the next quiet hours begin (unix seconds) in each time zone of the chunk's patients.
    "CREATE TEMP TABLE IF NOT EXISTS scheduler_quiet (timezone TEXT PRIMARY KEY,"
    " starts_s INTEGER NOT NULL) WITHOUT ROWID",
)
# A chunk row; `answered`: a response for the task's questionnaire and day exists already
# (stored before its task existed, or not linked), so the task is done, its reminder skipped.
# The patient is joined as `tasks CROSS JOIN patients` (tasks first, along its index; one
# lookup of the patient per task).
_CHUNK_ROW = (
    "INSERT INTO temp.scheduler_claim (id, patient_id, questionnaire_id, expires_at,"
    " planned_at, answered, language, timezone)"
    " SELECT t.id, t.patient_id, t.questionnaire_id, t.expires_at, t.next_reminder_at,"
    " EXISTS (SELECT 1 FROM responses r WHERE r.patient_id = t.patient_id"
    "  AND r.questionnaire_id = t.questionnaire_id AND r.local_date = t.local_date),"
    " p.language, p.timezone"
)
# A chunk: the first :limit due reminders, earliest first, along the reminder index ...
_PICK = (
    f"{_CHUNK_ROW} FROM tasks AS t CROSS JOIN patients AS p"
    " WHERE p.id = t.patient_id"
    " AND t.next_reminder_at <= :now AND t.next_reminder_at > :late AND t.status = 'open'"
    " ORDER BY t.next_reminder_at, t.id LIMIT :limit"
)
# ... and the other due tasks of their patients (begun ones: a reminder comes after its
# task opens), so that a patient's tasks due at once make one push, wherever they fall in
# the reminder index.
#
# Here and below a big table is reached as `big.key IN (SELECT key FROM temp...)`, with
# INDEXED BY where SQLite might choose otherwise: one index lookup per row of the chunk.
# Written as a join ("FROM chunk CROSS JOIN big") SQLite may use a Bloom filter, built by
# reading all of `big` for every chunk: each chunk then costs as much as the whole table,
# and the 20:00 minute grows with the square of the patients.
_PICK_MORE = (
    f"{_CHUNK_ROW} FROM tasks AS t INDEXED BY tasks_patient_open CROSS JOIN patients AS p"
    " WHERE p.id = t.patient_id AND t.patient_id IN (SELECT patient_id FROM temp.scheduler_claim)"
    " AND t.id NOT IN (SELECT id FROM temp.scheduler_claim)"
    " AND t.status = 'open' AND t.opens_at <= :now"
    " AND t.next_reminder_at <= :now AND t.next_reminder_at > :late"
)
_COMPLETE = (
    "UPDATE tasks SET status = 'done', next_reminder_at = NULL, response_id ="
    " (SELECT r.id FROM responses r WHERE r.patient_id = tasks.patient_id"
    "  AND r.questionnaire_id = tasks.questionnaire_id AND r.local_date = tasks.local_date"
    "  ORDER BY r.authored_at LIMIT 1)"
    " WHERE id IN (SELECT id FROM temp.scheduler_claim WHERE answered) AND status = 'open'"
)
# The claim: compare (still open, its reminder still due) and set (next_reminder_at to the
# next planned reminder after now, or NULL). The planned times are ascending
# (PlannedTask.reminders), so when the last is not after now none is: NULL without walking
# the list (the diary's one reminder, the whole 20:00 minute).
_SWAP = (
    "UPDATE tasks SET reminders_sent = reminders_sent + 1, reminder_claimed_at = :now,"
    " next_reminder_at = CASE WHEN tasks.reminder_times ->> '$[#-1]' <= :now THEN NULL"
    "  ELSE (SELECT min(j.value) FROM json_each(tasks.reminder_times) j WHERE j.value > :now) END"
    " WHERE id IN (SELECT id FROM temp.scheduler_claim) AND status = 'open'"
    " AND next_reminder_at <= :now AND next_reminder_at > :late"
)
# One message per patient: the diary's task, or else the first of the patient's tasks in
# claim order (reminder time, then id), names it - its tag and topic, and the url of a lone
# questionnaire (/#/today for the diary or several tasks). It is kept for an offline device
# while the earliest-expiring task can still be answered and the patient's quiet hours have
# not begun (at least 60 s, at most MAX_TTL; whole seconds rounded down, like int()).
# The payload is the JSON push's `queue.payload` makes: a head with title and body in the
# patient's language ({head}, see `reminders.payload_heads`), then url and tag, which need no
# escaping.
#
# Almost every patient has one task in the chunk (the 20:00 minute: the diary), and that
# row is its message as it stands; only a patient with several is grouped (aggregates cost
# more than the rest of the statement). "First" there is the least of (not the diary,
# reminder time, id) as one text, whose last 20 characters are the id. The chunk is keyed
# by (patient, task), so "another task of this patient" is one probe and the grouping is
# a walk in key order.
_OTHER_TASK = (
    "EXISTS (SELECT 1 FROM temp.scheduler_claim o WHERE o.patient_id = c.patient_id AND o.id != c.id)"
)
_MESSAGES = (
    "INSERT INTO temp.scheduler_message (patient_id, payload, ttl, tag)"
    " SELECT m.patient_id, {head}"
    "  || CASE WHEN m.diary OR m.n > 1 THEN '/#/today' ELSE '/#/task/' || m.first_id END"
    '  || \'","tag":"task-\' || m.first_id || \'"}}\','
    " min(max(min(unixepoch(m.expires_at), coalesce((SELECT q.starts_s FROM temp.scheduler_quiet q"
    "  WHERE q.timezone = m.timezone), unixepoch(m.expires_at))) - :now_s - :now_frac, 60), :max_ttl),"
    " 'task-' || m.first_id"
    " FROM ({rows}) AS m"
)
_ONE_TASK = (
    "SELECT c.patient_id, c.language, c.timezone, 1 AS n, c.questionnaire_id = :diary AS diary,"
    " c.expires_at, c.id AS first_id FROM temp.scheduler_claim c"
)
_GROUPED = (
    f"{_ONE_TASK} WHERE NOT {_OTHER_TASK}"
    " UNION ALL"
    " SELECT c.patient_id, max(c.language), max(c.timezone), count(*), max(c.questionnaire_id = :diary),"
    "  min(c.expires_at), CAST(substr(min((c.questionnaire_id != :diary)"
    "   || c.planned_at || printf('%020d', c.id)), -20) AS INTEGER)"
    f"  FROM temp.scheduler_claim c WHERE {_OTHER_TASK} GROUP BY c.patient_id"
)
# Whether any patient has several tasks in the chunk (a walk of the chunk in key order).
_SEVERAL = "SELECT 1 FROM temp.scheduler_claim GROUP BY patient_id HAVING count(*) > 1 LIMIT 1"
# The log: per claimed task, how many devices its patient had then.
_LOG = (
    "INSERT INTO reminder_log (task_id, patient_id, planned_at, claimed_at, pushes)"
    " SELECT c.id, c.patient_id, c.planned_at, :now, coalesce((SELECT m.devices"
    "  FROM temp.scheduler_message m WHERE m.patient_id = c.patient_id), 0)"
    " FROM temp.scheduler_claim c"
)
MESSAGES_TABLE = "temp.scheduler_message"


def claim_chunk_tables(conn: sqlite3.Connection) -> None:
    """The claim's scratch tables, made if missing and emptied."""
    for sql in _CHUNK_TABLES:
        conn.execute(sql)
    conn.execute("DELETE FROM temp.scheduler_claim")
    conn.execute("DELETE FROM temp.scheduler_message")
    conn.execute("DELETE FROM temp.scheduler_quiet")


def drop_late(conn: sqlite3.Connection, params: dict) -> int:
    """Reminders more than the grace late (`:late`) move to the next planned one after `:now`."""
    return conn.execute(
        "UPDATE tasks SET next_reminder_at = (SELECT min(j.value)"
        " FROM json_each(tasks.reminder_times) j WHERE j.value > :now)"
        " WHERE next_reminder_at <= :late",
        params,
    ).rowcount


def pick(conn: sqlite3.Connection, params: dict) -> int:
    """The chunk: the first `:limit` due reminders; how many."""
    return conn.execute(_PICK, params).rowcount


def pick_more(conn: sqlite3.Connection, params: dict) -> int:
    """The chunk's patients' other due tasks added; how many."""
    return conn.execute(_PICK_MORE, params).rowcount


def complete_answered(conn: sqlite3.Connection) -> tuple[int, int]:
    """The chunk's tasks already answered: done, and out of the chunk; (completed, answered)."""
    completed = conn.execute(_COMPLETE).rowcount
    answered = conn.execute("DELETE FROM temp.scheduler_claim WHERE answered").rowcount
    return completed, answered


def swap(conn: sqlite3.Connection, params: dict) -> int:
    """The claim's compare-and-set on the chunk's tasks; how many claimed."""
    return conn.execute(_SWAP, params).rowcount


def chunk_timezones(conn: sqlite3.Connection) -> list[str]:
    """The time zones of the chunk's patients (read with their tasks)."""
    return [tz for (tz,) in conn.execute("SELECT DISTINCT timezone FROM temp.scheduler_claim")]


def set_quiet_starts(conn: sqlite3.Connection, starts: Iterable[tuple[str, int]]) -> None:
    """(time zone, unix seconds) when the next quiet hours begin there."""
    conn.executemany("INSERT INTO temp.scheduler_quiet (timezone, starts_s) VALUES (?, ?)", starts)


class MessagesSql(NamedTuple):
    """The statements writing one message per patient of the chunk into MESSAGES_TABLE: when
    every patient has one task (the 20:00 minute), and when some have several."""

    one_task_each: str
    grouped: str


def messages_sql(head: str) -> MessagesSql:
    """`head`: an SQL expression for the payload's head (see _MESSAGES)."""
    return MessagesSql(
        _MESSAGES.format(head=head, rows=_ONE_TASK), _MESSAGES.format(head=head, rows=_GROUPED)
    )


def write_messages(conn: sqlite3.Connection, sql: MessagesSql, params: dict) -> None:
    """Run `messages_sql(head)` with its parameters: without the grouping (two probes a
    message) when no patient has several tasks in the chunk."""
    several = conn.execute(_SEVERAL).fetchone() is not None
    conn.execute(sql.grouped if several else sql.one_task_each, params)


def log_claims(conn: sqlite3.Connection, at: str) -> None:
    conn.execute(_LOG, {"now": at})


# -- history, once a day, and the lease -----------------------------------------------------


def claim_day(conn: sqlite3.Connection, key: str, day: str) -> bool:
    """Compare-and-set on the day a once-a-day job last ran (`key` in settings_kv): True for
    exactly one caller each day."""
    return (
        conn.execute(
            "INSERT INTO settings_kv (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            " WHERE settings_kv.value < excluded.value",
            (key, day),
        ).rowcount
        == 1
    )


def prune_reminder_log(
    conn: sqlite3.Connection, before: str, after_id: int, limit: int
) -> tuple[int, int | None]:
    """One chunk of the log's prune (`storage.prune_chunk_by_id`): rows claimed before
    `before`; no index on claimed_at (one entry less for every reminder of the 20:00 minute)."""
    return prune_chunk_by_id(conn, "reminder_log", "claimed_at", before, after_id, limit)


def take_lease(conn: sqlite3.Connection, name: str, holder: str, *, at: str, expires_at: str) -> bool:
    """Take or renew the lease `name` for `holder`; False when another holds it unexpired."""
    cur = conn.execute(
        "INSERT INTO scheduler_lease (name, holder, expires_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE scheduler_lease.holder = excluded.holder OR scheduler_lease.expires_at <= ?",
        (name, holder, expires_at, at),
    )
    return cur.rowcount == 1


def release_lease(conn: sqlite3.Connection, name: str, holder: str) -> bool:
    cur = conn.execute("DELETE FROM scheduler_lease WHERE name = ? AND holder = ?", (name, holder))
    return cur.rowcount == 1


def add_receipt(conn: sqlite3.Connection, patient_id: str, task_id: int, event: str, at: str) -> bool:
    """The service worker saw a reminder of this patient's task shown or opened; False when the
    task is not theirs."""
    return (
        conn.execute(
            "INSERT INTO push_receipts (patient_id, task_id, event, at)"
            " SELECT patient_id, id, ?, ? FROM tasks WHERE id = ? AND patient_id = ?",
            (event, at, task_id, patient_id),
        ).rowcount
        == 1
    )


# -- the clinic's patient page: reminders sent and the phone's receipts (tasks/delivery.py judges)
def reminders_since(conn: sqlite3.Connection, patient_id: str, since: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT l.task_id, l.claimed_at, l.pushes, t.status FROM reminder_log l"
        " JOIN tasks t ON t.id = l.task_id"
        " WHERE l.patient_id = ? AND l.claimed_at >= ? ORDER BY l.claimed_at",
        (patient_id, since),
    ).fetchall()


def receipts_since(conn: sqlite3.Connection, patient_id: str, since: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT task_id, event, at FROM push_receipts WHERE patient_id = ? AND at >= ?", (patient_id, since)
    ).fetchall()
