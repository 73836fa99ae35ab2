"""The running system's parts, made once at start-up and shared by the HTTP layer, CLI and scheduler."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.enrolment import Patient
from backend.questionnaires import Library, load_library
from backend.responses import AfterStore, Checked
from backend.settings import Settings
from backend.storage import Database, open_database

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    library: Library
    pathways: dict[str, Any]
    vapid: Any = None
    after_store: list[AfterStore] = field(default_factory=list)

    @property
    def pathway_ids(self) -> frozenset[str]:
        return frozenset(self.pathways)

    def close(self) -> None:
        self.db.close()


def _complete_tasks(conn: sqlite3.Connection, patient: Patient, new: list[Checked], now: datetime):
    from backend import scheduler

    for c in new:
        scheduler.complete_task(
            conn,
            patient_id=patient.id,
            questionnaire_id=c.questionnaire,
            task_id=c.task_id,
            local_date=c.local_date,
            response_id=c.id,
            now=now,
        )


def build(settings: Settings, *, push: bool = True) -> Services:
    """Open the database (migrating it), load questionnaires and pathways, and the push keys."""
    from backend import pathways as pathways_mod

    library = load_library(settings.questionnaires_dir)
    pathways = pathways_mod.load_pathways(settings.questionnaires_dir, library)
    db = open_database(settings.db)
    services = Services(settings=settings, db=db, library=library, pathways=pathways)
    if push:
        from backend import push as push_mod

        services.vapid = push_mod.ensure_vapid_keys(settings.data_dir)
    services.after_store.append(_complete_tasks)
    services.after_store.append(_make_detection_hook(services))
    from backend import scheduler

    scheduler.register_pass("escalate", escalation_pass)
    scheduler.register_pass("nightly", nightly_pass)
    return services


# -- passes of the scheduler tick -----------------------------------------------------------
# The nightly sweep runs once per UTC day, from this hour on (03:00/04:00 in Amsterdam: after
# every Dutch patient's day has ended, before anyone starts the next one).
NIGHTLY_HOUR_UTC = 2
ESCALATION = ("Pijnwacht", "Er staat een urgente melding open in de inbox.")


def escalation_pass(db: Database, settings: Settings, now: datetime, library, pathways) -> int:
    """Urgent alerts unacknowledged for too long: mark them and push to opted-in clinicians."""
    from backend import alerts, push

    escalated = alerts.escalate(db, settings, now)
    if escalated:
        title, body = ESCALATION
        message = push.PushMessage(
            title=title, body=body, url="/clinic/inbox", tag="escalation", urgency="high", ttl=3600
        )

        def notify(conn: sqlite3.Connection) -> int:
            users = conn.execute(
                "SELECT DISTINCT user_id FROM push_subscriptions"
                " WHERE user_id IS NOT NULL AND deactivated_at IS NULL"
            ).fetchall()
            return sum(push.enqueue(conn, user_id=u[0], message=message, now=now) for u in users)

        db.write_sync(notify)
    return len(escalated)


def _claim_nightly(conn: sqlite3.Connection, day: str) -> bool:
    """Compare-and-set on the day of the last sweep: exactly one tick sweeps each day."""
    conn.execute("INSERT OR IGNORE INTO settings_kv (key, value) VALUES ('nightly_sweep', '')")
    cur = conn.execute(
        "UPDATE settings_kv SET value = ? WHERE key = 'nightly_sweep' AND value < ?", (day, day)
    )
    return cur.rowcount == 1


def nightly_pass(db: Database, settings: Settings, now: datetime, library, pathways) -> Any:
    """Once a day: every patient evaluated as of their own day (silence included), and the
    push queue pruned.

    A silent patient is reminded by the diary reminder they already get every evening; a
    second "we miss you" push would make two a day (alarm fatigue for patients too), so the
    silence rule's first step (`silence_reminder`) sends nothing extra, and the team hears
    after `silence_alert_days`.
    """
    from backend import alerts, push

    if now.hour < NIGHTLY_HOUR_UTC or not db.write_sync(
        lambda conn: _claim_nightly(conn, now.date().isoformat())
    ):
        return None
    opened = alerts.sweep(db, settings, now, library, pathways)
    pruned = db.write_sync(lambda conn: push.prune_queue(conn, now=now))
    return {"alerts_opened": opened, "push_pruned": pruned}


def _make_detection_hook(services: Services) -> AfterStore:
    def detect(conn: sqlite3.Connection, patient: Patient, new: list[Checked], now: datetime):
        from backend import alerts

        # The alert exists before the HTTP answer returns: same transaction as the response.
        alerts.evaluate_patient(
            conn, patient.id, patient.local_today(now), services.library, services.pathways
        )

    return detect
