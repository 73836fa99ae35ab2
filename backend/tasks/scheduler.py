"""Planning: each patient's pathway stored as rows of `tasks`, kept a few days ahead.

The database is the schedule (design.md): `materialise` stores what `schedule.plan` says
(through `store`). The tick's planning step is `plan_due` (patients whose horizon runs out
or whose pathway, dates or reminder time changed); the reminders' claim is in `reminders`,
the tick's order in `tick`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from backend.patients import store as patients
from backend.patients.pathways import Pathway
from backend.platform.settings import Settings
from backend.platform.storage import Database, iso, parse_iso
from backend.push import queue as push_queue
from backend.tasks import store
from backend.tasks.reminders import REMINDER_GRACE
from backend.tasks.schedule import PlannedTask, QuietHours, local_midnight, parse_hhmm, plan, snooze_time

log = logging.getLogger(__name__)

# Daily tasks are stored this many days ahead, and planned again when fewer than
# ROLL_AHEAD_DAYS remain: a patient is re-planned every few days, never every tick.
HORIZON_DAYS = 7
ROLL_AHEAD_DAYS = 3
# At most this many patients are planned per tick (spread over write jobs of ROLL_CHUNK),
# so the night after a mass enrolment does not hold the writer for minutes.
ROLL_BATCH = 5000
ROLL_CHUNK = 500
# A patient whose planning fails is tried again after this (and logged by id only).
RETRY_AFTER = timedelta(hours=1)
# History kept: claimed reminders in reminder_log, finished rows of the push queue.
KEEP_REMINDER_LOG_DAYS = 90
KEEP_PUSH_QUEUE_DAYS = 30
# One-off tasks are planned this far ahead (all of them: pathways end within a few years).
ONE_OFFS_DAYS = 5 * 366


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
    p = patients.get(conn, patient_id)
    if p is None:
        raise LookupError(f"no patient {patient_id}")
    at = iso(now)
    state = store.plan_state(conn, patient_id)
    if p.status != "active":
        cancelled = store.cancel_open(conn, patient_id)
        _save_state(conn, patient_id, None, "left", None, None, at)
        return cancelled
    pathway = pathways.get(p.pathway_id)
    if pathway is None:
        raise LookupError(f"patient {patient_id}: no pathway {p.pathway_id!r}")
    tz = ZoneInfo(p.timezone)
    quiet = quiet_hours(settings)
    today = now.astimezone(tz).date()
    enrolled_on = _enrolled_on(p.enrolled_at, tz)
    key = "|".join(
        (
            pathway.id,
            pathway.checksum,
            p.anchor_date,
            enrolled_on.isoformat(),
            p.reminder_time,
            p.timezone,
            f"{quiet.start:%H:%M}-{quiet.end:%H:%M}",
            f"paused-{p.paused_until}" if p.paused_until else "",
        )
    )
    horizon = today + timedelta(days=HORIZON_DAYS)
    anchor_date = date.fromisoformat(p.anchor_date)
    reminder_time = parse_hhmm(p.reminder_time)
    paused_until = date.fromisoformat(p.paused_until) if p.paused_until else None

    def planned(start: date, one_offs_until: date | None = None) -> list[PlannedTask]:
        return plan(
            pathway,
            start=start,
            anchor_date=anchor_date,
            enrolled_on=enrolled_on,
            reminder_time=reminder_time,
            tz=tz,
            quiet=quiet,
            end=horizon,
            paused_until=paused_until,
            one_offs_until=one_offs_until,
        )

    if state is not None and state["plan_key"] == key and state["planned_until"]:
        # Same plan: add the days after the last planned one (one-offs exist already).
        start = max(today, date.fromisoformat(state["planned_until"]) + timedelta(days=1))
        tasks = planned(start) if start <= horizon else []
        changed = store.add_new(
            conn,
            patient_id,
            [(t, _next_due([iso(r) for r in t.reminders], now)) for t in tasks if iso(t.expires_at) > at],
            at,
        )
    else:
        tasks = planned(today, today + timedelta(ONE_OFFS_DAYS))
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
    store.save_plan_state(
        conn,
        patient_id,
        pathway_id=pathway.id if pathway else None,
        pathway_checksum=pathway.checksum if pathway else None,
        key=key,
        planned_until=planned_until,
        roll_at=roll_at,
        at=at,
    )


def _replace_from(
    conn: sqlite3.Connection, patient_id: str, tasks: list[PlannedTask], today: date, now: datetime
) -> int:
    at = iso(now)
    existing = {
        (r["questionnaire_id"], r["local_date"]): r for r in store.tasks_until_from(conn, patient_id, today)
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
                store.add(conn, patient_id, t, _next_due(times, now), at)
                changed += 1
            continue
        if old["status"] not in ("open", "cancelled") or k[1] < today.isoformat():
            continue  # answered, expired, or of an earlier day: the past stays
        store.replan(conn, old["id"], t, times, _next_due(times[old["reminders_sent"] :], now))
        changed += 1
    for k, old in existing.items():
        if k not in planned and old["status"] == "open" and k[1] >= today.isoformat():
            store.cancel(conn, old["id"])
            changed += 1
    return changed


def snooze(
    conn: sqlite3.Connection, patient_id: str, task_id: int, hours: int, now: datetime, settings: Settings
) -> datetime | None:
    """ "Herinner me over 1 of 3 uur": one reminder re-armed at that time (planned reminders
    before it are skipped; later ones stay). Compare-and-set like the claim: only an open
    task of this patient whose window is still open. None: nothing to re-arm."""
    row = store.open_task_window(conn, patient_id, task_id)
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
    return at if store.rearm(conn, patient_id, task_id, iso(at)) else None


def mark_stale_plans(conn: sqlite3.Connection, pathways: Mapping[str, Pathway], at: str) -> int:
    """Patients planned from an older version of their pathway file are re-planned."""
    return store.mark_stale_plans(conn, [(p.id, p.checksum) for p in pathways.values()], at)


def prune_daily(db: Database, now: datetime) -> int:
    """Once a day (the first tick of a UTC day): delete history past its keeping time, a
    chunk per writer job (a month of a big clinic's pushes is millions of rows); how many.

    The day is claimed first (compare-and-set): a pass stopped half-way leaves the rest to
    the next day's, which deletes everything older than its own limit."""
    if not db.write_sync(lambda c: store.claim_day(c, "scheduler.pruned_on", now.date().isoformat())):
        return 0  # done today already (by this or another process)
    before = iso(now - timedelta(days=KEEP_REMINDER_LOG_DAYS))
    n, after = 0, 0
    while after is not None:
        deleted, after = db.write_sync(
            lambda c, a=after: store.prune_reminder_log(c, before, a, push_queue.PRUNE_CHUNK)
        )
        n += deleted
    return n + push_queue.prune_queue(db, now=now, keep_days=KEEP_PUSH_QUEUE_DAYS)


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
            ids = store.due_for_planning(conn, at, limit)
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
                    store.plan_again_at(conn, pid, iso(now + RETRY_AFTER))
                conn.execute("RELEASE plan_one")
            return len(ids), errors

        done, errors = db.write_sync(job)
        planned += done - errors
        failed += errors
        left -= done
        if done < ROLL_CHUNK:
            break
    return planned, failed
