"""The running system's parts, made once at start-up and shared by the HTTP layer, CLI and scheduler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from backend.diary.questionnaires import Library, load_library
from backend.patients.pathways import Pathway, load_pathways, servable_only
from backend.platform.accounts import VERIFY_CONCURRENCY
from backend.platform.replication import read_generation
from backend.platform.settings import Settings
from backend.platform.storage import Database, open_database
from backend.push.keys import VapidKeys, ensure_vapid_keys

log = logging.getLogger(__name__)


@dataclass
class System:
    settings: Settings
    db: Database
    library: Library
    pathways: Mapping[str, Pathway]
    # The push keys (None: a system built without push, e.g. for an account command).
    vapid: VapidKeys | None = None
    # The password checks running now (see accounts.VERIFY_CONCURRENCY).
    verify_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(VERIFY_CONCURRENCY))
    # The database's generation id (backend/platform/replication.py), read once: a restore replaces the
    # file while the server is stopped.
    generation: str = ""

    @property
    def pathway_ids(self) -> frozenset[str]:
        return frozenset(self.pathways)

    def close(self) -> None:
        self.db.close()


def load_definitions(settings: Settings) -> tuple[Library, dict[str, Pathway]]:
    """The questionnaire library (licensed texts applied) and the pathways as scheduled."""
    library = load_library(settings.questionnaires_dir, licensed_dir=settings.licensed_dir or None)
    pathways = servable_only(load_pathways(settings.questionnaires_dir, library), library)
    for q in library.lacking_text():
        # Said at every start: otherwise a pathway silently asks less than its file says.
        log.warning(
            "%s (%s) is licensed and its text is not supplied: it is not scheduled or shown to "
            "patients. Put the licensed %s.toml in PIJNWACHT_LICENSED_DIR (now %s) and restart.",
            q.id,
            q.title.get("en", q.id),
            q.id if q.version == 1 else f"{q.id}.v{q.version}",
            settings.licensed_dir or "not set",
        )
    return library, pathways


def build(settings: Settings, *, push: bool = True) -> System:
    """Open the database (migrating it), load questionnaires and pathways, and the push keys."""
    library, pathways = load_definitions(settings)
    db = open_database(settings.db, wal_autocheckpoint=settings.wal_autocheckpoint)
    return System(
        settings=settings,
        db=db,
        library=library,
        pathways=pathways,
        vapid=ensure_vapid_keys(settings.data_dir) if push else None,
        generation=read_generation(db.reader),
    )
