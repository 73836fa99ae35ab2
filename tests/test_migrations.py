"""Migrations run in file order, numbered 1, 2, 3 ...; a database migrated under the old
numbering by area (before issue 14) is recognised by name, renumbered and upgraded, and ends
with the very schema of a fresh one (a schema dump compared)."""

from __future__ import annotations

import sqlite3

import pytest

from backend.platform import migrations
from backend.platform import schema as schema_steps
from backend.platform.storage import connect, open_database

# The numbers by area the migrations had before issue 14 (their runs on existing databases
# went in this numeric order, a lower number added later running after higher ones).
OLD_NUMBERS = {
    "foundation": 1,
    "team_seen_at": 2,
    "current_response_table": 5,
    "tasks": 10,
    "patient_schedule": 11,
    "reminder_log": 12,
    "reminder_log_claimed": 13,
    "push": 15,
    "alerts": 20,
    "alerts_resurfacing": 25,
    "alerts_news": 26,
    "patients_list_index": 40,
    "generation": 45,
    "patient_pause": 60,
    "push_receipts": 61,
    "alert_outcome_referred": 73,
}
BY_NAME = {name: fn for name, fn in migrations.MIGRATIONS.values()}
# Steps added after issue 14 (never numbered by area): an old database runs them on upgrade.
NEW_STEPS = [name for name, _ in schema_steps.STEPS if name not in OLD_NUMBERS]


def schema(path) -> list[tuple[str, str, str]]:
    """The schema dump: every table, index, view and trigger with its SQL, by type and name."""
    conn = sqlite3.connect(path)
    try:
        return sorted(
            conn.execute(
                "SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
            ).fetchall()
        )
    finally:
        conn.close()


def recorded(path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT number, name FROM _migrations ORDER BY number").fetchall()
    finally:
        conn.close()


def old_database(path, names: list[str]) -> None:
    """A database as the old code left it: these migrations run in their old numeric order,
    recorded under their old numbers."""
    conn = connect(path)
    conn.execute(
        "CREATE TABLE _migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for name in sorted(names, key=OLD_NUMBERS.__getitem__):
        conn.execute("BEGIN IMMEDIATE")
        BY_NAME[name](conn)
        conn.execute(
            "INSERT INTO _migrations VALUES (?, ?, '2026-11-23T09:00:00Z')", (OLD_NUMBERS[name], name)
        )
        conn.execute("COMMIT")
    conn.close()


@pytest.fixture
def fresh(tmp_path):
    open_database(tmp_path / "fresh.db").close()
    return tmp_path / "fresh.db"


def test_migrations_are_numbered_in_the_order_they_run_and_every_old_one_is_known():
    assert [migrations.MIGRATIONS[n] for n in sorted(migrations.MIGRATIONS)] == schema_steps.STEPS
    assert sorted(migrations.MIGRATIONS) == list(range(1, len(schema_steps.STEPS) + 1))
    # A migration added after issue 14 was never numbered by area: it is upgraded as it is.
    assert set(OLD_NUMBERS) <= set(BY_NAME)


def test_a_fully_migrated_old_database_is_renumbered_and_has_the_fresh_schema(tmp_path, fresh):
    old = tmp_path / "old.db"
    old_database(old, list(OLD_NUMBERS))
    db = open_database(old)  # migrates: renumbers, runs what came after issue 14
    db.close()
    assert recorded(old) == recorded(fresh)
    assert schema(old) == schema(fresh)
    conn = sqlite3.connect(old)
    old_ones = conn.execute(
        f"SELECT DISTINCT applied_at FROM _migrations WHERE name IN ({','.join('?' * len(OLD_NUMBERS))})",
        list(OLD_NUMBERS),
    ).fetchall()
    assert {r[0] for r in old_ones} == {"2026-11-23T09:00:00Z"}
    conn.close()


@pytest.mark.parametrize(
    "made_before",
    [
        # made before team_seen_at and the current response table existed
        ["team_seen_at", "current_response_table", "generation", "alert_outcome_referred", "patient_pause"],
        # made before the last few
        ["current_response_table", "alert_outcome_referred", "generation"],
    ],
)
def test_an_old_database_made_earlier_is_upgraded_to_the_fresh_schema(tmp_path, fresh, made_before):
    old = tmp_path / "old.db"
    old_database(old, [n for n in OLD_NUMBERS if n not in made_before])
    conn = connect(old)
    ran = migrations.apply(conn)
    conn.close()
    assert sorted(name.split("_", 1)[1] for name in ran) == sorted(made_before + NEW_STEPS)
    assert recorded(old) == recorded(fresh)
    assert schema(old) == schema(fresh)
    # And once more: nothing to do.
    conn = connect(old)
    assert migrations.apply(conn) == []
    conn.close()
