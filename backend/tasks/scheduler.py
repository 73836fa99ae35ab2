"""Scheduler: the shell that keeps each patient's tasks in SQLite and reminds on time.

The database is the schedule (design.md): `materialise` stores what `schedule.plan` says
as rows of `tasks`. The tick's task steps are here - `plan_due` (patients whose horizon runs
out or whose pathway, dates or reminder time changed), `expire` (tasks past their window),
`claim_due` (the reminders that are due, one push per patient queued in the same
transaction) - and `tick.run_tick` calls them, by name, every minute.

Never a reminder twice: the due reminders are claimed a chunk at a time, inside the
writer's `BEGIN IMMEDIATE`, by one `UPDATE tasks ... WHERE id IN (the chunk) AND status =
'open' AND next_reminder_at <= now AND next_reminder_at > now - grace` - the compare is
"still open and still due", the swap moves `next_reminder_at` to the task's next planned
time (or NULL) - and the job is rolled back unless it claimed every task of the chunk. Two
passes at once (two servers, cron beside a server, a restart half-way) serialise on that
lock; the second reads nothing due, and were it ever to act on a stale read its compare
would match fewer rows. The push is queued by the same transaction, so a claim without its
push (or a push without its claim) cannot be committed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from backend.patients.pathways import Pathway
from backend.platform.settings import Settings
from backend.platform.storage import Database, iso, parse_iso
from backend.push import sender as webpush
from backend.tasks.schedule import PlannedTask, QuietHours, local_midnight, parse_hhmm, plan

log = logging.getLogger(__name__)

DIARY = "diary"
# Daily tasks are stored this many days ahead, and planned again when fewer than
# ROLL_AHEAD_DAYS remain: a patient is re-planned every few days, never every tick.
HORIZON_DAYS = 7
ROLL_AHEAD_DAYS = 3
# At most this many patients are planned per tick (spread over write jobs of ROLL_CHUNK),
# so the night after a mass enrolment does not hold the writer for minutes.
ROLL_BATCH = 5000
ROLL_CHUNK = 500
# Claimed reminders per write job: other writes (diaries coming in) go between jobs.
CLAIM_CHUNK = 2000
# A reminder found more than this late (server down, laptop asleep) is dropped, not sent:
# "time for your diary" at 03:00 or twice in a row helps nobody.
REMINDER_GRACE = timedelta(hours=1)
# A patient whose planning fails is tried again after this (and logged by id only).
RETRY_AFTER = timedelta(hours=1)
# History kept: claimed reminders in reminder_log, finished rows of the push queue.
KEEP_REMINDER_LOG_DAYS = 90
KEEP_PUSH_QUEUE_DAYS = 30
# One-off tasks are planned this far ahead (all of them: pathways end within a few years).
ONE_OFFS_DAYS = 5 * 366

MESSAGES = {
    "nl": {
        "title": "Pijnwacht",
        "diary": "Tijd voor uw dagboek",
        "questionnaire": "Er staat een vragenlijst voor u klaar",
    },
    "en": {
        "title": "Pijnwacht",
        "diary": "Time for your diary",
        "questionnaire": "A questionnaire is waiting for you",
    },
}


def quiet_hours(settings: Settings | None) -> QuietHours:
    s = settings or Settings()
    return QuietHours(parse_hhmm(s.quiet_start), parse_hhmm(s.quiet_end))


def _enrolled_on(text: str, tz: ZoneInfo) -> date:
    if len(text) == 10:
        return date.fromisoformat(text)
    return parse_iso(text).astimezone(tz).date()


def _next_due(times: list[str], now: datetime) -> str | None:
    """The first reminder still worth sending: not more than REMINDER_GRACE ago. A task
    planned just after its reminder time (the first tick after downtime, a late enrolment)
    gets that reminder at once, as a tick that had been running would have sent it."""
    since = iso(now - REMINDER_GRACE)
    return next((t for t in times if t > since), None)


# -- materialise: a patient's pathway as rows of `tasks` ------------------------------------
def materialise(
    conn: sqlite3.Connection,
    patient_id: str,
    now: datetime,
    pathways: Mapping[str, Pathway],
    *,
    settings: Settings | None = None,
) -> int:
    """Store a patient's tasks (daily ones HORIZON_DAYS ahead, one-offs all); return how many
    rows were created or changed.

    Call inside the writer transaction after enrolling a patient or changing their pathway,
    anchor date, reminder time, zone or status (the scheduler also notices such changes
    itself within a minute). When what the plan depends on changed, open tasks from today
    on are re-planned (a task whose window is still open keeps its reminders already sent)
    and those no longer in the plan are cancelled; tasks of earlier days stay as they are.
    Otherwise only the new days are added. A patient who left has their open tasks cancelled.
    """
    p = conn.execute(
        "SELECT pathway_id, timezone, reminder_time, anchor_date, enrolled_at, status, paused_until"
        " FROM patients WHERE id = ?",
        (patient_id,),
    ).fetchone()
    if p is None:
        raise LookupError(f"no patient {patient_id}")
    at = iso(now)
    state = conn.execute(
        "SELECT plan_key, planned_until FROM patient_schedule WHERE patient_id = ?",
        (patient_id,),
    ).fetchone()
    if p["status"] != "active":
        cur = conn.execute(
            "UPDATE tasks SET status = 'cancelled', next_reminder_at = NULL"
            " WHERE patient_id = ? AND status = 'open'",
            (patient_id,),
        )
        _save_state(conn, patient_id, None, "left", None, None, at)
        return cur.rowcount
    pathway = pathways.get(p["pathway_id"])
    if pathway is None:
        raise LookupError(f"patient {patient_id}: no pathway {p['pathway_id']!r}")
    tz = ZoneInfo(p["timezone"])
    quiet = quiet_hours(settings)
    today = now.astimezone(tz).date()
    enrolled_on = _enrolled_on(p["enrolled_at"], tz)
    key = "|".join(
        (
            pathway.id,
            pathway.checksum,
            p["anchor_date"],
            enrolled_on.isoformat(),
            p["reminder_time"],
            p["timezone"],
            f"{quiet.start:%H:%M}-{quiet.end:%H:%M}",
            f"paused-{p['paused_until']}" if p["paused_until"] else "",
        )
    )
    horizon = today + timedelta(days=HORIZON_DAYS)
    args: dict[str, Any] = dict(
        anchor_date=date.fromisoformat(p["anchor_date"]),
        enrolled_on=enrolled_on,
        reminder_time=parse_hhmm(p["reminder_time"]),
        tz=tz,
        quiet=quiet,
        end=horizon,
        paused_until=date.fromisoformat(p["paused_until"]) if p["paused_until"] else None,
    )
    if state is not None and state["plan_key"] == key and state["planned_until"]:
        # Same plan: add the days after the last planned one (one-offs exist already).
        start = max(today, date.fromisoformat(state["planned_until"]) + timedelta(days=1))
        tasks = plan(pathway, start=start, **args) if start <= horizon else []
        changed = _insert_new(conn, patient_id, tasks, now)
    else:
        tasks = plan(pathway, start=today, one_offs_until=today + timedelta(ONE_OFFS_DAYS), **args)
        changed = _replace_from(conn, patient_id, tasks, today, now)
    roll_at = local_midnight(horizon - timedelta(days=ROLL_AHEAD_DAYS), tz)
    _save_state(conn, patient_id, pathway, key, horizon.isoformat(), iso(roll_at), at)
    return changed


def _save_state(
    conn: sqlite3.Connection,
    patient_id: str,
    pathway: Pathway | None,
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
        (
            patient_id,
            pathway.id if pathway else None,
            pathway.checksum if pathway else None,
            key,
            planned_until,
            roll_at,
            at,
        ),
    )


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


def _insert_new(conn: sqlite3.Connection, patient_id: str, tasks: list[PlannedTask], now: datetime) -> int:
    at = iso(now)
    rows = [
        _row(patient_id, t, _next_due([iso(r) for r in t.reminders], now), at)
        for t in tasks
        if iso(t.expires_at) > at
    ]
    before = conn.total_changes
    conn.executemany(_INSERT + " ON CONFLICT DO NOTHING", rows)
    return conn.total_changes - before


def _replace_from(
    conn: sqlite3.Connection, patient_id: str, tasks: list[PlannedTask], today: date, now: datetime
) -> int:
    at = iso(now)
    existing = {
        (r["questionnaire_id"], r["local_date"]): r
        for r in conn.execute(
            "SELECT id, questionnaire_id, local_date, status, reminders_sent FROM tasks"
            " WHERE patient_id = ? AND until_date >= ?",
            (patient_id, today.isoformat()),
        )
    }
    changed = 0
    planned: set[tuple[str, str]] = set()
    for t in tasks:
        k = (t.questionnaire, t.local_date.isoformat())
        planned.add(k)
        times = [iso(r) for r in t.reminders]
        old = existing.get(k)
        if old is None:
            if iso(t.expires_at) > at:
                conn.execute(_INSERT, _row(patient_id, t, _next_due(times, now), at))
                changed += 1
            continue
        if old["status"] not in ("open", "cancelled") or k[1] < today.isoformat():
            continue  # answered, expired, or of an earlier day: the past stays
        nxt = _next_due(times[old["reminders_sent"] :], now)
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
                nxt,
                old["id"],
            ),
        )
        changed += 1
    for k, old in existing.items():
        if k not in planned and old["status"] == "open" and k[1] >= today.isoformat():
            conn.execute(
                "UPDATE tasks SET status = 'cancelled', next_reminder_at = NULL WHERE id = ?",
                (old["id"],),
            )
            changed += 1
    return changed


def snooze(
    conn: sqlite3.Connection, patient_id: str, task_id: int, hours: int, now: datetime, settings: Settings
) -> datetime | None:
    """ "Herinner me over 1 of 3 uur": one reminder re-armed at that time (planned reminders
    before it are skipped; later ones stay). Compare-and-set like the claim: only an open
    task of this patient whose window is still open. None: nothing to re-arm."""
    from backend.tasks.schedule import snooze_time

    row = conn.execute(
        "SELECT t.expires_at, p.timezone FROM tasks t JOIN patients p ON p.id = t.patient_id"
        " WHERE t.id = ? AND t.patient_id = ? AND t.status = 'open'",
        (task_id, patient_id),
    ).fetchone()
    if row is None:
        return None
    at = snooze_time(
        now,
        hours,
        expires_at=parse_iso(row["expires_at"]),
        tz=ZoneInfo(row["timezone"]),
        quiet=quiet_hours(settings),
    )
    if at is None:
        return None
    cur = conn.execute(
        "UPDATE tasks SET next_reminder_at = ? WHERE id = ? AND patient_id = ? AND status = 'open'"
        " AND expires_at > ?",
        (iso(at), task_id, patient_id, iso(at)),
    )
    return at if cur.rowcount == 1 else None


# -- what the patient API needs -------------------------------------------------------------
def open_tasks(conn: sqlite3.Connection, patient_id: str, now: datetime) -> list[dict]:
    """The patient's tasks to do now: open, begun (from local midnight of their day), not expired.

    A task shows from the start of its day (today's diary in the morning, too), not only
    from its reminder time. Sorted by due time.
    """
    at = iso(now)
    rows = conn.execute(
        "SELECT id, questionnaire_id, label, local_date, due_at, expires_at, status FROM tasks"
        " WHERE patient_id = ? AND status = 'open' AND opens_at <= ? AND expires_at > ?"
        " ORDER BY due_at, questionnaire_id",
        (patient_id, at, at),
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
    now: datetime,
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


# -- the tick -------------------------------------------------------------------------------
def mark_stale_plans(conn: sqlite3.Connection, pathways: Mapping[str, Pathway], at: str) -> int:
    """Patients planned from an older version of their pathway file are re-planned."""
    n = 0
    for p in pathways.values():
        # `<` or `>` rather than `!=`: two index range scans that are empty when nothing changed.
        n += conn.execute(
            "UPDATE patient_schedule SET next_roll_at = ? WHERE pathway_id = ?"
            " AND (pathway_checksum < ? OR pathway_checksum > ?)"
            " AND (next_roll_at IS NULL OR next_roll_at > ?) AND plan_key != 'left'",
            ("", p.id, p.checksum, p.checksum, at),
        ).rowcount
    return n


def expire(conn: sqlite3.Connection, at: str) -> int:
    return conn.execute(
        "UPDATE tasks SET status = 'expired', next_reminder_at = NULL"
        " WHERE status = 'open' AND expires_at <= ?",
        (at,),
    ).rowcount


def prune_daily(conn: sqlite3.Connection, now: datetime) -> int:
    """Once a day (the first tick of a UTC day): delete history past its keeping time."""
    today = now.date().isoformat()
    claimed = conn.execute(
        "INSERT INTO settings_kv (key, value) VALUES ('scheduler.pruned_on', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        " WHERE settings_kv.value < excluded.value",
        (today,),
    ).rowcount
    if not claimed:
        return 0  # done today already (by this or another process)
    n = conn.execute(
        "DELETE FROM reminder_log WHERE claimed_at < ?",
        (iso(now - timedelta(days=KEEP_REMINDER_LOG_DAYS)),),
    ).rowcount
    return n + webpush.prune_queue(conn, now=now, keep_days=KEEP_PUSH_QUEUE_DAYS)


def plan_due(
    db: Database, settings: Settings, now: datetime, pathways: Mapping[str, Pathway]
) -> tuple[int, int]:
    """Plan the patients that are new, changed, or near the end of their horizon (at most
    ROLL_BATCH, in write jobs of ROLL_CHUNK); return (planned, failed)."""
    at = iso(now)
    left = ROLL_BATCH
    planned = failed = 0
    while left > 0:

        def job(conn: sqlite3.Connection, limit: int = min(left, ROLL_CHUNK)) -> tuple[int, int]:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT patient_id FROM patient_schedule WHERE next_roll_at <= ?"
                    " ORDER BY next_roll_at LIMIT ?",
                    (at, limit),
                )
            ]
            errors = 0
            for pid in ids:
                conn.execute("SAVEPOINT plan_one")
                try:
                    materialise(conn, pid, now, pathways, settings=settings)
                except Exception as exc:  # noqa: BLE001 - one bad patient must not stop the rest
                    conn.execute("ROLLBACK TO plan_one")
                    errors += 1
                    # Pushed forward before going on, so a failing patient is not retried
                    # every tick (the message names the patient id, never health data).
                    log.error("planning patient %s failed: %s", pid, type(exc).__name__)
                    conn.execute(
                        "UPDATE patient_schedule SET next_roll_at = ? WHERE patient_id = ?",
                        (iso(now + RETRY_AFTER), pid),
                    )
                conn.execute("RELEASE plan_one")
            return len(ids), errors

        done, errors = db.write_sync(job)
        planned += done - errors
        failed += errors
        left -= done
        if done < ROLL_CHUNK:
            break
    return planned, failed


# The claim, in SQL: a few statements per chunk of up to CLAIM_CHUNK due reminders, no
# Python per reminder (the 20:00 minute has every patient's diary due at once). The chunk
# lives in scratch tables of the writer's connection (TEMP: never in the file, never seen
# by another connection), emptied by every job: its tasks, with the reminder time each was
# read at (the log keeps it after the claim moved it), and one push message per patient.
_CHUNK_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS scheduler_claim (id INTEGER PRIMARY KEY,"
    " patient_id TEXT NOT NULL, questionnaire_id TEXT NOT NULL, expires_at TEXT NOT NULL,"
    " planned_at TEXT NOT NULL, answered INTEGER NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS scheduler_message (patient_id TEXT PRIMARY KEY,"
    " payload TEXT NOT NULL, ttl INTEGER NOT NULL, tag TEXT NOT NULL) WITHOUT ROWID",
    # When the next quiet hours begin (unix seconds) in each time zone of the chunk's patients.
    "CREATE TEMP TABLE IF NOT EXISTS scheduler_quiet (timezone TEXT PRIMARY KEY,"
    " starts_s INTEGER NOT NULL) WITHOUT ROWID",
)
# A chunk row; `answered`: a response for the task's questionnaire and day exists already
# (stored before its task existed, or not linked), so the task is done, its reminder skipped.
_CHUNK_ROW = (
    "INSERT INTO temp.scheduler_claim (id, patient_id, questionnaire_id, expires_at,"
    " planned_at, answered)"
    " SELECT t.id, t.patient_id, t.questionnaire_id, t.expires_at, t.next_reminder_at,"
    " EXISTS (SELECT 1 FROM responses r WHERE r.patient_id = t.patient_id"
    "  AND r.questionnaire_id = t.questionnaire_id AND r.local_date = t.local_date)"
)
# A chunk: the first :limit due reminders, earliest first, along the reminder index ...
_PICK = (
    f"{_CHUNK_ROW} FROM tasks AS t"
    " WHERE t.next_reminder_at <= :now AND t.next_reminder_at > :late AND t.status = 'open'"
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
    f"{_CHUNK_ROW} FROM tasks AS t INDEXED BY tasks_patient_open"
    " WHERE t.patient_id IN (SELECT patient_id FROM temp.scheduler_claim)"
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
# next planned reminder after now, or NULL).
_SWAP = (
    "UPDATE tasks SET reminders_sent = reminders_sent + 1, reminder_claimed_at = :now,"
    " next_reminder_at = (SELECT min(j.value) FROM json_each(tasks.reminder_times) j"
    "  WHERE j.value > :now)"
    " WHERE id IN (SELECT id FROM temp.scheduler_claim) AND status = 'open'"
    " AND next_reminder_at <= :now AND next_reminder_at > :late"
)
# One message per patient: the diary's task, or else the first of the patient's tasks in
# claim order (reminder time, then id), names it - its tag and topic, and the url of a lone
# questionnaire (/#/today for the diary or several tasks). It is kept for an offline device
# while the earliest-expiring task can still be answered and the patient's quiet hours have
# not begun (at least 60 s, at most MAX_TTL; whole seconds rounded down, like int()).
# "First" is the least of (not the diary, reminder time, id) as one text, whose last 20
# characters are the id. The payload is the JSON push.enqueue makes: a head with title and
# body in the patient's language ({head}, see `_payload_heads`), then url and tag, which need
# no escaping.
_MESSAGES = (
    "INSERT INTO temp.scheduler_message (patient_id, payload, ttl, tag)"
    " SELECT m.patient_id, {head}"
    "  || CASE WHEN m.diary OR m.n > 1 THEN '/#/today' ELSE '/#/task/' || m.first_id END"
    '  || \'","tag":"task-\' || m.first_id || \'"}}\','
    " min(max(min(unixepoch(m.expires_at), coalesce((SELECT q.starts_s FROM temp.scheduler_quiet q"
    "  WHERE q.timezone = m.timezone), unixepoch(m.expires_at))) - :now_s - :now_frac, 60), :max_ttl),"
    " 'task-' || m.first_id"
    " FROM (SELECT c.patient_id, (SELECT p.language FROM patients p WHERE p.id = c.patient_id)"
    "  AS language, (SELECT p.timezone FROM patients p WHERE p.id = c.patient_id) AS timezone,"
    "  count(*) AS n, max(c.questionnaire_id = :diary) AS diary,"
    "  min(c.expires_at) AS expires_at, CAST(substr(min((c.questionnaire_id != :diary)"
    "   || c.planned_at || printf('%020d', c.id)), -20) AS INTEGER) AS first_id"
    "  FROM temp.scheduler_claim c GROUP BY c.patient_id) AS m"
)
# One queued push per active device of the patient, the rows push.enqueue would write.
_QUEUE = (
    "INSERT INTO push_queue (subscription_id, payload, urgency, ttl, topic, created_at,"
    " expires_at, next_attempt_at)"
    " SELECT s.id, m.payload, 'normal', m.ttl, m.tag, :now,"
    "  strftime('%Y-%m-%dT%H:%M:%SZ', :now_s + m.ttl, 'unixepoch'), :now"
    " FROM push_subscriptions AS s INDEXED BY push_subscriptions_patient"
    " CROSS JOIN temp.scheduler_message AS m"
    " WHERE s.patient_id IN (SELECT patient_id FROM temp.scheduler_message)"
    " AND s.deactivated_at IS NULL AND m.patient_id = s.patient_id"
)
# The log: per claimed task, how many devices its patient had then.
_LOG = (
    "INSERT INTO reminder_log (task_id, patient_id, planned_at, claimed_at, pushes)"
    " SELECT c.id, c.patient_id, c.planned_at, :now, (SELECT count(*) FROM push_subscriptions s"
    "  WHERE s.patient_id = c.patient_id AND s.deactivated_at IS NULL)"
    " FROM temp.scheduler_claim c"
)


def _payload_head(texts: Mapping[str, str], kind: str) -> str:
    """The payload JSON push.enqueue makes for these texts, up to the url's value.

    Cut from a whole payload and checked: completed with a url and a tag (which need no
    escaping) it is, to the byte, what push.enqueue would queue."""
    url, tag = "/#/task/12", "task-12"
    message = webpush.PushMessage(title=texts["title"], body=texts[kind], url=url, tag=tag)
    payload = webpush._check_message(message)
    tail = f'{url}","tag":"{tag}"}}'
    if not payload.endswith(tail):
        raise ValueError(f"push payloads no longer end in url and tag: {payload}")
    return payload[: -len(tail)]


def _payload_heads() -> tuple[str, dict[str, str]]:
    """SQL for {head} in _MESSAGES (by the patient's language, Dutch if it has no texts,
    and whether the diary is among the tasks) and its parameters."""
    args: dict[str, str] = {}
    cases: dict[str, str] = {}
    for kind in ("diary", "questionnaire"):
        whens = ""
        for n, (language, texts) in enumerate(MESSAGES.items()):
            args[f"language{n}"] = language
            args[f"{kind}{n}"] = _payload_head(texts, kind)
            whens += f" WHEN :language{n} THEN :{kind}{n}"
        args[f"{kind}_default"] = _payload_head(MESSAGES["nl"], kind)
        cases[kind] = f"CASE m.language{whens} ELSE :{kind}_default END"
    return f"CASE WHEN m.diary THEN {cases['diary']} ELSE {cases['questionnaire']} END", args


class Claimed(msgspec.Struct):
    picked: int  # due reminders taken in index order, answered ones too (< CLAIM_CHUNK: all)
    claimed: int
    queued: int
    completed: int
    late: int


def _claim(now: datetime, quiet: QuietHours | None) -> Callable[[sqlite3.Connection], Claimed]:
    """One write job: drop late reminders, close answered due tasks, claim and queue the rest
    (see _CHUNK_TABLES and the statements after it)."""
    at = iso(now)
    whole = now.replace(microsecond=0)
    params = {"now": at, "late": iso(now - REMINDER_GRACE), "limit": CLAIM_CHUNK}
    head, head_args = _payload_heads()
    messages_sql = _MESSAGES.format(head=head)
    message_params = {
        **head_args,
        "now_s": int(whole.timestamp()),
        # (expires - now) rounded down: a second less when now is past a whole second.
        "now_frac": 1 if now.microsecond else 0,
        "max_ttl": webpush.MAX_TTL,
        "diary": DIARY,
    }
    queue_params = {"now": at, "now_s": message_params["now_s"]}

    def job(conn: sqlite3.Connection) -> Claimed:
        late = conn.execute(
            "UPDATE tasks SET next_reminder_at = (SELECT min(j.value)"
            " FROM json_each(tasks.reminder_times) j WHERE j.value > :now)"
            " WHERE next_reminder_at <= :late",
            params,
        ).rowcount
        for sql in _CHUNK_TABLES:
            conn.execute(sql)
        conn.execute("DELETE FROM temp.scheduler_claim")
        conn.execute("DELETE FROM temp.scheduler_message")
        conn.execute("DELETE FROM temp.scheduler_quiet")
        picked = conn.execute(_PICK, params).rowcount
        if not picked:
            return Claimed(0, 0, 0, 0, late)
        picked_more = conn.execute(_PICK_MORE, params).rowcount
        completed = conn.execute(_COMPLETE).rowcount
        answered = conn.execute("DELETE FROM temp.scheduler_claim WHERE answered").rowcount
        to_claim = picked + picked_more - answered
        claimed = conn.execute(_SWAP, params).rowcount if to_claim else 0
        if claimed != to_claim:
            # Cannot happen inside the writer's BEGIN IMMEDIATE; if it ever does, roll this
            # job back rather than queue a push for a reminder another pass has claimed.
            raise RuntimeError("reminder claims raced; this pass is rolled back")
        queued = 0
        if claimed:
            if quiet is not None:
                zones = conn.execute(
                    "SELECT DISTINCT p.timezone FROM patients p"
                    " WHERE p.id IN (SELECT patient_id FROM temp.scheduler_claim)"
                ).fetchall()
                starts = [(tz, quiet.next_start(now, ZoneInfo(tz))) for (tz,) in zones]
                conn.executemany(
                    "INSERT INTO temp.scheduler_quiet (timezone, starts_s) VALUES (?, ?)",
                    [(tz, int(at.timestamp())) for tz, at in starts if at is not None],
                )
            conn.execute(messages_sql, message_params)
            queued = conn.execute(_QUEUE, queue_params).rowcount
            conn.execute(_LOG, {"now": at})
        return Claimed(picked, claimed, queued, completed, late)

    return job


def claim_due(db: Database, now: datetime, quiet: QuietHours | None) -> Claimed:
    """Claim every due reminder and queue its pushes, a chunk per write job; the totals.

    `quiet`: the quiet hours (None: none), whose start ends each push's TTL."""
    claim = _claim(now, quiet)
    total = Claimed(0, 0, 0, 0, 0)
    while True:
        done = db.write_sync(claim)
        total.picked += done.picked
        total.claimed += done.claimed
        total.queued += done.queued
        total.completed += done.completed
        total.late += done.late
        if done.picked < CLAIM_CHUNK:
            return total
