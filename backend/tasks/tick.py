"""The tick: one pass of everything that runs on the clock, as one explicit pipeline.

`run_tick` calls its steps by name, in this order: plan (patients new, changed or near the
end of their horizon), expire (tasks past their window), claim (due reminders, their pushes
queued), escalate (urgent alerts left unacknowledged), nightly (once a UTC day: every
patient evaluated, silence included), send (the queued pushes).
Nothing is registered anywhere: the server's APScheduler job (`TickScheduler`), a cron
`pijnwacht tick` in a fresh process (`cli.cmd_tick`) and the tests run the very same function,
so a cron tick cannot miss a pass the server would have run.

Every step is safe beside another tick (two servers, cron beside a server, a restart
half-way): the claims, the escalation and the nightly sweep are compare-and-set.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time as clock
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from backend.alerts import lifecycle as alerts
from backend.diary.questionnaires import Library
from backend.patients.pathways import Pathway
from backend.platform.settings import Settings
from backend.platform.storage import Database, iso
from backend.push import queue as push_queue
from backend.push import sender as push_sender
from backend.push.keys import VapidKeys
from backend.tasks import reminders, scheduler, store

log = logging.getLogger(__name__)

# The nightly sweep runs once per UTC day, from this hour on (03:00/04:00 in Amsterdam: after
# every Dutch patient's day has ended, before anyone starts the next one).
NIGHTLY_HOUR_UTC = 2
ESCALATION = ("Pijnwacht", "Er staat een urgente melding open in de inbox.")
LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(minutes=3)


class TickReport(msgspec.Struct, kw_only=True):
    """What one tick did, in counts (for logs, the CLI and tests; no health data)."""

    now: str
    planned: int = 0  # patients planned (new, changed, or rolled forward)
    plan_errors: int = 0
    expired: int = 0
    completed: int = 0  # due tasks found already answered (reminder skipped)
    late_skipped: int = 0  # reminders dropped because found more than REMINDER_GRACE late
    reminders: int = 0  # reminders claimed
    pushes_queued: int = 0  # push messages queued (one per device)
    pushed: int | None = None  # sent after the claims, if a sender was given
    pruned: int = 0  # old reminder log and push queue rows deleted (once a day)
    # The alert passes: "escalate" (urgent alerts escalated now) and "nightly" (None when
    # not due; else what the sweep did); "error" if the pass raised.
    passes: dict[str, Any] = msgspec.field(default_factory=dict)
    seconds: float = 0.0


def run_tick(
    db: Database,
    settings: Settings,
    now: datetime,
    library: Library | None,
    pathways: Mapping[str, Pathway],
    push: Callable[[datetime], Any] | None = None,
) -> TickReport:
    """One tick as of `now`: plan, expire, claim, escalate, nightly, send.

    `push` sends what is queued (e.g. `lambda now: push.drain_sync(db, settings, keys, now)`);
    its result's `sent` (or the result itself) becomes `report.pushed`. Without it the pushes
    stay queued for the next sender.
    """
    started = clock.perf_counter()
    now = now.astimezone(UTC)
    at = iso(now)
    report = TickReport(now=at)

    def mark_and_expire(conn: sqlite3.Connection) -> int:
        scheduler.mark_stale_plans(conn, pathways, at)
        return store.expire(conn, at)

    # plan
    report.expired = db.write_sync(mark_and_expire)
    report.pruned = scheduler.prune_daily(db, now)
    report.planned, report.plan_errors = scheduler.plan_due(db, settings, now, pathways)
    # expire (what planning made that is already past its window)
    report.expired += db.write_sync(lambda conn: store.expire(conn, at))
    # claim
    claimed = reminders.claim_due(db, now, scheduler.quiet_hours(settings))
    report.reminders = claimed.claimed
    report.pushes_queued = claimed.queued
    report.completed = claimed.completed
    report.late_skipped = claimed.late
    # escalate, nightly: a failing alert pass must not stop the reminders going out
    report.passes["escalate"] = _guarded("escalate", lambda: escalate(db, settings, now))
    report.passes["nightly"] = _guarded("nightly", lambda: nightly(db, settings, now, library, pathways))
    # send
    if push is not None:
        result = push(now)
        report.pushed = getattr(result, "sent", result)
    report.seconds = round(clock.perf_counter() - started, 4)
    if report.reminders or report.planned or report.expired or report.plan_errors:
        log.info(
            "tick %s: %d planned, %d expired, %d reminders, %d pushes queued",
            at,
            report.planned,
            report.expired,
            report.reminders,
            report.pushes_queued,
        )
    return report


def _guarded(name: str, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - logged by type only: a message may hold health data
        log.error("tick pass %s failed: %s", name, type(exc).__name__)
        return "error"


def escalate(db: Database, settings: Settings, now: datetime) -> int:
    """Urgent alerts unacknowledged for too long: mark them and push to opted-in clinicians."""
    escalated = alerts.escalate(db, settings, now)
    if escalated:
        title, body = ESCALATION
        message = push_queue.PushMessage(
            title=title, body=body, url="/clinic/inbox", tag="escalation", urgency="high", ttl=3600
        )
        db.write_sync(lambda conn: push_queue.enqueue_for_clinicians(conn, message, now))
    return len(escalated)


def nightly(
    db: Database,
    settings: Settings,
    now: datetime,
    library: Library | None,
    pathways: Mapping[str, Pathway],
) -> dict[str, int] | None:
    """Once a day: every patient evaluated as of their own day (silence included); None when
    not due. (The push queue and the reminder log are pruned by the plan step's
    `scheduler.prune_daily`, once a UTC day.)

    A silent patient is reminded by the diary reminder they already get every evening; a
    second "we miss you" push would make two a day (alarm fatigue for patients too), so the
    silence rule's first step (`silence_reminder`) sends nothing extra, and the team hears
    after `silence_alert_days`.
    """
    if now.hour < NIGHTLY_HOUR_UTC or not db.write_sync(
        # compare-and-set on the day of the last sweep: exactly one tick sweeps each day
        lambda conn: store.claim_day(conn, "nightly_sweep", now.date().isoformat())
    ):
        return None
    return {"alerts_opened": alerts.sweep(db, settings, now, library, pathways)}


# -- the lease and the in-process scheduler -------------------------------------------------
def take_lease(
    conn: sqlite3.Connection,
    holder: str,
    now: datetime,
    *,
    ttl: timedelta = LEASE_TTL,
    name: str = LEASE_NAME,
) -> bool:
    """Take or renew the scheduler lease for `holder`; False when another holds it unexpired."""
    return store.take_lease(conn, name, holder, at=iso(now), expires_at=iso(now + ttl))


def release_lease(conn: sqlite3.Connection, holder: str, *, name: str = LEASE_NAME) -> bool:
    return store.release_lease(conn, name, holder)


class TickScheduler(BackgroundScheduler):
    """APScheduler running `run_tick` every minute in this process while it holds the lease."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        library: Library | None,
        pathways: Mapping[str, Pathway],
        push: Callable[[datetime], Any] | None,
    ) -> None:
        super().__init__(timezone=UTC)
        self.db, self.settings, self.library, self.pathways = db, settings, library, pathways
        self.push = push
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.last_report: TickReport | None = None

    def tick(self, now: datetime | None = None) -> TickReport | None:
        """One tick if this process holds (or can take) the lease; None when another does."""
        now = now or datetime.now(UTC)
        if not self.db.write_sync(lambda conn: take_lease(conn, self.holder, now)):
            return None
        try:
            self.last_report = run_tick(self.db, self.settings, now, self.library, self.pathways, self.push)
        except Exception:
            log.exception("scheduler tick failed")
            return None
        return self.last_report

    def stop(self) -> None:
        """Stop ticking (waits for a running tick) and hand the lease back."""
        if self.running:
            self.shutdown(wait=True)
        try:
            self.db.write_sync(lambda conn: release_lease(conn, self.holder))
        except Exception:  # noqa: BLE001 - the lease expires by itself
            log.warning("could not release the scheduler lease")


def sender(db: Database, settings: Settings, keys: VapidKeys) -> Callable[[datetime], Any]:
    """The tick's send step: drain the queue (at 20:00 far more is due than one flush takes)."""
    return lambda now: push_sender.drain_sync(db, settings, keys, now)


def start_scheduler(
    db: Database,
    settings: Settings,
    library: Library | None,
    pathways: Mapping[str, Pathway],
    *,
    push: Callable[[datetime], Any] | None,
) -> TickScheduler:
    """Start the per-minute tick in a background thread; call `.stop()` on shut-down.

    `push`: the send step run after each tick (`sender(db, settings, keys)`), None not to send.
    """
    sched = TickScheduler(db, settings, library, pathways, push)
    # Every minute on the minute (+2 s, so a reminder due at 20:00:00 goes out at 20:00:02).
    # coalesce=True: after a stall (suspended VM, long GC, busy disk) the missed runs collapse
    # into one catch-up tick, not a burst: a tick catches up on everything due anyway, the
    # database being the schedule. misfire_grace_time=None: that catch-up runs however late
    # it is (reminders later than REMINDER_GRACE are dropped by the tick itself, on purpose).
    # max_instances=1: a slow tick is never overlapped by the next one.
    first = datetime.now(UTC).replace(second=2, microsecond=0) + timedelta(minutes=1)
    sched.add_job(
        sched.tick,
        IntervalTrigger(minutes=1, start_date=first, timezone=UTC),
        id="tick",
        name="pijnwacht tick",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),  # one tick at start-up: catch up after a restart
        replace_existing=True,
    )
    sched.start()
    return sched
