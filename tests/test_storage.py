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


def test_settings_read_the_texts_an_environment_file_holds():
    s = load_settings(
        env={
            "PIJNWACHT_PORT": " 8123 ",
            "PIJNWACHT_SECURE_COOKIES": "yes",
            "PIJNWACHT_SCHEDULER": "off",
            "PIJNWACHT_TRUST_PROXY": "1",
            "PIJNWACHT_HEADER_TIMEOUT_SECONDS": "2.5",
            "PIJNWACHT_PUSH_CONTACT": "mailto:team@example.org",
        }
    )
    assert (s.port, s.secure_cookies, s.scheduler, s.trust_proxy) == (8123, True, False, True)
    assert (s.header_timeout_seconds, s.push_contact) == (2.5, "mailto:team@example.org")
    with pytest.raises(SettingsError, match=r"^PIJNWACHT_SESSION_HOURS='twelve' is not valid: expected"):
        load_settings(env={"PIJNWACHT_SESSION_HOURS": "twelve"})
    with pytest.raises(SettingsError, match=r"^invalid setting port: expected a whole number"):
        load_settings(env={}, port="eighty")


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


def test_heavy_builds_take_turns_while_light_reads_still_get_a_thread(tmp_path):
    """`await db.build(fn)`: one heavy build on the reader pool at a time (the loop then
    competes for the GIL with one page's thread, not with several); the others wait on the
    loop, so a light read meanwhile still runs at once on a free reader thread."""
    import asyncio
    import time

    db = open_database(tmp_path / "h.db")
    running, most = 0, 0
    lock = threading.Lock()

    def heavy(conn):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.1)
        with lock:
            running -= 1
        return conn.execute("SELECT 1").fetchone()[0]

    async def main():
        builds = [asyncio.create_task(db.build(heavy)) for _ in range(3)]
        await asyncio.sleep(0.02)  # the first build runs, two wait their turn
        t0 = time.perf_counter()
        light = await db.read(lambda conn: conn.execute("SELECT 2").fetchone()[0])
        light_s = time.perf_counter() - t0
        return await asyncio.gather(*builds), light, light_s

    got, light, light_s = asyncio.run(main())
    assert got == [1, 1, 1] and light == 2
    assert most == 1  # never two heavy builds at once
    assert light_s < 0.08  # not behind the builds (each 0.1 s)
    db.close()


def test_the_current_response_of_a_day_is_kept_at_write_time_as_the_old_view_decided(tmp_path):
    """current_response_ids (kept by triggers) gives exactly what the NOT EXISTS view gave:
    per patient, questionnaire and day the last authored_at, and of equal ones the last
    stored - after random edits, out-of-order arrivals, deletes and key changes."""
    import random

    old_view = """SELECT id FROM responses r WHERE NOT EXISTS (
        SELECT 1 FROM responses n WHERE n.patient_id = r.patient_id
          AND n.questionnaire_id = r.questionnaire_id AND n.local_date = r.local_date
          AND (n.authored_at > r.authored_at OR (n.authored_at = r.authored_at AND n.rowid > r.rowid)))"""
    db = open_database(tmp_path / "c.db")
    rnd = random.Random(17)

    def setup(conn):
        for p in ("p1", "p2"):
            conn.execute(
                "INSERT INTO patients (id, display_name, pathway_id, anchor_date, enrolled_at)"
                " VALUES (?, 'x', 'y', '2026-01-01', '2026-01-01T00:00:00Z')",
                (p,),
            )

    db.write_sync(setup)

    def add(conn, n):
        for _ in range(n):
            at = f"2026-02-0{rnd.randint(1, 3)}T1{rnd.randint(0, 2)}:00:00Z"  # many ties
            conn.execute(
                "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version,"
                " authored_at, authored_at_client, local_date, answers, content_hash, received_at)"
                " VALUES (?, ?, ?, 1, ?, ?, ?, '{}', 'h', ?)",
                (
                    f"r{rnd.random()}",
                    rnd.choice(["p1", "p2"]),
                    rnd.choice(["diary", "phq9"]),
                    at,
                    at,
                    f"2026-02-0{rnd.randint(1, 3)}",
                    at,
                ),
            )

    def same(conn):
        view = sorted(r[0] for r in conn.execute(old_view))
        table = sorted(r[0] for r in conn.execute("SELECT id FROM current_responses"))
        assert (
            table == view
            and len(table) == conn.execute("SELECT count(*) FROM current_response_ids").fetchone()[0]
        )

    db.write_sync(lambda conn: add(conn, 300))
    db.read_sync(same)
    ids = [r[0] for r in db.query("SELECT id FROM current_responses")]
    db.write_sync(lambda conn: conn.execute("DELETE FROM responses WHERE id IN (?, ?, ?)", ids[:3]))
    db.write_sync(
        lambda conn: conn.execute("UPDATE responses SET local_date = '2026-02-09' WHERE id = ?", ids[3:4])
    )
    db.write_sync(lambda conn: conn.execute("UPDATE responses SET id = 'renamed' WHERE id = ?", ids[4:5]))
    db.read_sync(same)
    # Responses that are not current: deleted, moved to another day, given another id.
    superseded = [r[0] for r in db.query("SELECT id FROM responses EXCEPT SELECT id FROM current_responses")]
    assert len(superseded) > 10
    db.write_sync(lambda conn: conn.execute("DELETE FROM responses WHERE id IN (?, ?)", superseded[:2]))
    db.write_sync(
        lambda conn: conn.execute(
            "UPDATE responses SET local_date = '2026-02-01' WHERE id = ?", superseded[2:3]
        )
    )
    db.write_sync(
        lambda conn: conn.execute("UPDATE responses SET id = 'moved' WHERE id = ?", superseded[3:4])
    )
    db.write_sync(lambda conn: add(conn, 100))
    db.read_sync(same)
    db.close()


def test_a_database_from_before_the_current_table_gets_it_filled_from_its_history(tmp_path):
    """The current_response_table migration fills current_response_ids from the responses
    already stored."""
    conn = connect(tmp_path / "old.db")
    conn.execute(
        "CREATE TABLE _migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for number in sorted(migrations.MIGRATIONS):
        name, fn = migrations.MIGRATIONS[number]
        if name in ("current_response_table", "current_response_by_day"):  # (the second needs the first)
            continue
        fn(conn)
        conn.execute("INSERT INTO _migrations VALUES (?, ?, 'x')", (number, name))
    conn.execute(
        "INSERT INTO patients (id, display_name, pathway_id, anchor_date, enrolled_at)"
        " VALUES ('p', 'x', 'y', '2026-01-01', '2026-01-01T00:00:00Z')"
    )
    for rid, at in (("a", "10"), ("b", "12"), ("c", "12"), ("d", "11")):
        conn.execute(
            "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version, authored_at,"
            " authored_at_client, local_date, answers, content_hash, received_at)"
            " VALUES (?, 'p', 'diary', 1, ?, ?, '2026-02-01', '{}', 'h', ?)",
            (rid, f"2026-02-01T{at}:00:00Z", "x", "2026-02-01T13:00:00Z"),
        )
    assert migrations.apply(conn) == ["0016_current_response_table", "0023_current_response_by_day"]
    assert [r[0] for r in conn.execute("SELECT id FROM current_responses")] == ["c"]
    conn.close()


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    from backend.platform.files import write_atomic

    target = tmp_path / "export.csv"
    assert write_atomic(target, ["a;b\r\n", "1;2\r\n"]) == 10
    assert target.read_bytes() == b"a;b\r\n1;2\r\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"

    def failing():
        yield "half"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, failing())
    assert target.read_bytes() == b"a;b\r\n1;2\r\n"  # the old file, untouched
    with pytest.raises(FileExistsError):
        write_atomic(target, b"other", exclusive=True)  # never over an existing file
    assert target.read_bytes() == b"a;b\r\n1;2\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]  # no temporary file left


def _in_one_group(db: Database, writes: list) -> list:
    """Run the coroutines `writes()` makes while the writer is held, so that all of them are
    queued before it takes its next group commit; their values."""
    import asyncio

    running, go = threading.Event(), threading.Event()

    def hold(conn):
        running.set()
        go.wait(10)

    held = db.write_soon(hold)
    assert running.wait(10)

    async def main():
        tasks = [asyncio.ensure_future(w) for w in writes]
        while db.writer._queue.qsize() < len(tasks):
            await asyncio.sleep(0.001)
        go.set()
        return await asyncio.gather(*tasks)

    values = asyncio.run(main())
    held.result()
    return values


def test_what_one_key_s_writes_in_a_row_leave_for_afterwards_runs_once_after_the_last(tmp_path):
    """issue 17: a phone sending one day 16 times at once is judged once, after all 16, as a
    batch is; anything else written in the same commit keeps its order."""
    from backend.platform.storage import afterwards

    db = open_database(tmp_path / "a.db")
    done: list[str] = []

    def job(name):
        def fn(conn):
            done.append(name)
            afterwards(conn, lambda conn: done.append(f"after {name}"))  # (and nothing to write)
            return name

        return fn

    writes = [("a1", "p1"), ("a2", "p1"), ("b", "p2"), ("x", None), ("a3", "p1")]
    values = _in_one_group(db, [db.write(job(name), together=key) for name, key in writes])
    assert values == ["a1", "a2", "b", "x", "a3"]
    assert done == ["a1", "a2", "after a2", "b", "after b", "x", "after x", "a3", "after a3"]
    # Outside a group with a key (a script's write_sync): at once.
    done.clear()
    db.write_sync(job("s"))
    assert done == ["s", "after s"]
    db.close()


def test_a_step_left_for_afterwards_that_fails_rolls_back_only_its_writes(tmp_path, caplog):
    """A step reads and hands back its writes, run in a savepoint of their own: writes that
    fail half-way leave nothing, a step that fails before writing leaves the job's data, and
    the next step's writes are stored (each failure logged by type, not by message)."""
    from backend.platform.storage import afterwards

    db = open_database(tmp_path / "f.db")
    db.write_sync(lambda conn: conn.execute("CREATE TABLE kept (what TEXT)"))

    def half_written(conn):
        conn.execute("INSERT INTO kept VALUES ('half a step')")
        raise ValueError("a broken rule: pijn 9")

    def failing_before(conn):
        raise ValueError("a broken read: pijn 9")

    def writes_one(conn):
        conn.execute("INSERT INTO kept VALUES ('a whole step')")

    def job(name, step):
        def fn(conn):
            conn.execute("INSERT INTO kept VALUES (?)", (name,))
            afterwards(conn, step, f"step of {name}")
            return name

        return fn

    steps = [
        ("r1", lambda conn: half_written),
        ("r2", failing_before),
        ("r3", lambda conn: writes_one),
    ]
    values = _in_one_group(db, [db.write(job(name, step), together=name) for name, step in steps])
    assert values == ["r1", "r2", "r3"]
    assert [r[0] for r in db.query("SELECT what FROM kept")] == ["r1", "r2", "r3", "a whole step"]
    logged = [r.getMessage() for r in caplog.records if "failed with" in r.getMessage()]
    assert logged == ["step of r1 failed with ValueError", "step of r2 failed with ValueError"]
    assert "pijn 9" not in caplog.text
    db.close()
