"""The running system's parts, made once at start-up and shared by the HTTP layer, CLI and scheduler."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from backend.accounts import VERIFY_CONCURRENCY
from backend.questionnaires import Library, load_library
from backend.settings import Settings
from backend.storage import Database, open_database


@dataclass
class Services:
    settings: Settings
    db: Database
    library: Library
    pathways: dict[str, Any]
    vapid: Any = None
    # The password checks running now (see accounts.VERIFY_CONCURRENCY).
    verify_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(VERIFY_CONCURRENCY))
    # The database's generation id (backend/replication.py), read once: a restore replaces the
    # file while the server is stopped.
    generation: str = ""

    @property
    def pathway_ids(self) -> frozenset[str]:
        return frozenset(self.pathways)

    def close(self) -> None:
        self.db.close()


def build(settings: Settings, *, push: bool = True) -> Services:
    """Open the database (migrating it), load questionnaires and pathways, and the push keys."""
    from backend import pathways as pathways_mod

    library = load_library(settings.questionnaires_dir)
    pathways = pathways_mod.load_pathways(settings.questionnaires_dir, library)
    db = open_database(settings.db, wal_autocheckpoint=settings.wal_autocheckpoint)
    from backend.replication import read_generation

    services = Services(
        settings=settings, db=db, library=library, pathways=pathways, generation=read_generation(db.reader)
    )
    if push:
        from backend import push as push_mod

        services.vapid = push_mod.ensure_vapid_keys(settings.data_dir)
    return services
