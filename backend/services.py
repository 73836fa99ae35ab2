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
    return services


def _make_detection_hook(services: Services) -> AfterStore:
    def detect(conn: sqlite3.Connection, patient: Patient, new: list[Checked], now: datetime):
        from backend import alerts

        # The alert exists before the HTTP answer returns: same transaction as the response.
        alerts.evaluate_patient(
            conn, patient.id, patient.local_today(now), services.library, services.pathways
        )

    return detect
