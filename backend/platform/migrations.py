"""Numbered migrations, applied at start-up and recorded in the `_migrations` table.

The migrations are the steps of `schema.STEPS`, numbered by their place there: in the order
they run. A new one goes at the end, so a fresh database and one upgraded step by step run
the same steps in the same order.

Until issue 14 they were numbered by area (foundation 1-9, schedule and push 10-19, alerts
20-29, operations 40-49...), and a later migration with a lower number ran after higher ones
on an existing database. A database migrated then records the old numbers: `apply` knows
its migrations by name and renumbers the records first (`_renumber`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from backend.platform.schema import STEPS, Migration
from backend.platform.storage import iso, utcnow

# Every step by its number: its place in schema.STEPS.
MIGRATIONS: dict[int, tuple[str, Migration]] = dict(enumerate(STEPS, start=1))
if len({name for name, _ in STEPS}) != len(STEPS):
    raise RuntimeError("two migrations in schema.STEPS have one name")


def apply(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending migration in order, each in its own transaction; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    _renumber(conn)
    applied: list[str] = []
    for number in sorted(MIGRATIONS):
        name, fn = MIGRATIONS[number]
        with _locked(conn):
            # Checked inside the lock: another process may have applied it meanwhile.
            if conn.execute("SELECT 1 FROM _migrations WHERE number = ?", (number,)).fetchone():
                continue
            fn(conn)
            conn.execute(
                "INSERT INTO _migrations (number, name, applied_at) VALUES (?, ?, ?)",
                (number, name, iso(utcnow())),
            )
        applied.append(f"{number:04d}_{name}")
    return applied


@contextlib.contextmanager
def _locked(conn: sqlite3.Connection) -> Iterator[None]:
    """One transaction holding the write lock, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _renumber(conn: sqlite3.Connection) -> None:
    """Records of migrations under another number than theirs now (the numbering before issue
    14) get their number, found by name; the rest of a record stays."""
    numbers = {name: number for number, (name, _) in MIGRATIONS.items()}
    with _locked(conn):  # checked inside the lock: another process may be starting too
        moves = [
            (numbers[name], number)
            for number, name in conn.execute("SELECT number, name FROM _migrations")
            if name in numbers and numbers[name] != number
        ]
        # Through negative numbers: a new number may still be another record's old one.
        for new, old in moves:
            conn.execute("UPDATE _migrations SET number = ? WHERE number = ?", (-new, old))
        conn.execute("UPDATE _migrations SET number = -number WHERE number < 0")
