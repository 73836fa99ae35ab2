"""Storage: pragmas, migrations from an empty file, group commit, settings errors."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from backend.platform import migrations
from backend.platform.settings import SettingsError, load_settings
from backend.platform.storage import Database, connect, open_database


def test_migrations_apply_to_an_empty_file_once(tmp_path):
    path = tmp_path / "new.db"
    db = open_database(path)
    names = [r["name"] for r in db.query("SELECT name FROM _migrations ORDER BY number")]
    assert names[0] == "foundation" and len(names) == len(migrations.MIGRATIONS)
    db.close()
    # A second start applies nothing and keeps the data.
    again = Database(path)
    assert again.migrate() == []
    again.close()


def test_pragmas_are_set_on_every_connection(tmp_path):
    open_database(tmp_path / "p.db").close()
    conn = connect(tmp_path / "p.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_group_commit_answers_each_job_and_a_failing_job_rolls_back_alone(tmp_path):
    db = open_database(tmp_path / "g.db")
    db.write_sync(lambda c: c.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    results: list = []

    def job(i):
        def fn(conn):
            conn.execute("INSERT INTO t VALUES (?)", (i % 50,))  # every 50th collides
            return i

        try:
            results.append(db.write_sync(fn))
        except sqlite3.IntegrityError:
            results.append("dup")

    threads = [threading.Thread(target=job, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("dup") == 50
    assert db.query_one("SELECT count(*) AS n FROM t")["n"] == 50
    db.close()


def test_foreign_keys_are_enforced(tmp_path):
    db = open_database(tmp_path / "f.db")
    with pytest.raises(sqlite3.IntegrityError):
        db.write_sync(
            lambda c: c.execute(
                "INSERT INTO devices (token_hash, patient_id, created_at) VALUES ('x', 'nobody', 'now')"
            )
        )
    db.close()


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PIJNWACHT_PORT": "eighty"}, "PIJNWACHT_PORT"),
        ({"PIJNWACHT_PORT": "70000"}, "PIJNWACHT_PORT"),
        ({"PIJNWACHT_SECURE_COOKIES": "maybe"}, "PIJNWACHT_SECURE_COOKIES"),
        ({"PIJNWACHT_QUIET_START": "10pm"}, "PIJNWACHT_QUIET_START"),
        ({"PIJNWACHT_QUESTIONNAIRES_DIR": "/nowhere"}, "PIJNWACHT_QUESTIONNAIRES_DIR"),
    ],
)
def test_a_wrong_setting_names_its_variable(env, words):
    with pytest.raises(SettingsError, match=words):
        load_settings(env=env)


def test_settings_from_environment_and_flags():
    s = load_settings(env={"PIJNWACHT_PORT": "8123", "PIJNWACHT_SECURE_COOKIES": "true"}, port=9000)
    assert s.port == 9000 and s.secure_cookies is True


def test_a_new_database_is_readable_by_the_server_user_only(tmp_path):
    db = open_database(tmp_path / "data" / "new.db")
    db.close()
    assert oct((tmp_path / "data" / "new.db").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"


def test_read_runs_off_the_loop_in_one_snapshot_and_the_loop_stays_free(tmp_path):
    """`await db.read(fn)`: fn on a reader thread (read-only, one transaction), while the
    event loop keeps serving other work."""
    import asyncio
    import time

    db = open_database(tmp_path / "r.db")
    db.write_sync(lambda c: c.execute("CREATE TABLE t (x INTEGER)"))
    db.write_sync(lambda c: c.execute("INSERT INTO t VALUES (1)"))

    def slow_read(conn):
        first = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        # A write lands between the two queries: the read still sees its own snapshot.
        db.write_sync(lambda c: c.execute("INSERT INTO t VALUES (2)"))
        time.sleep(0.3)
        second = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        return threading.current_thread().name, first, second

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        name, first, second = await db.read(slow_read)
        t.cancel()
        with pytest.raises(sqlite3.OperationalError):  # read-only: a write is refused
            await db.read(lambda conn: conn.execute("INSERT INTO t VALUES (3)"))
        after = await db.read(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0])
        return name, first, second, ticks, after

    name, first, second, ticks, after = asyncio.run(main())
    assert name.startswith("pijnwacht-reader")
    assert (first, second, after) == (1, 1, 2)
    assert ticks >= 15  # the loop ran its timer all along (0.3 s / 10 ms, with slack)
    db.close()
