"""Storage: one SQLite file, its pragmas, one writer that commits concurrent writes together.

Every write in the process goes through `Database.write` (async) or `Database.write_sync`:
a job is a function `fn(conn) -> value` run by the writer thread inside `BEGIN IMMEDIATE`.
The writer takes every job waiting in its queue, runs each in its own SAVEPOINT (a failing
job rolls back only itself) and commits them all at once (group commit), then answers each
caller after that commit, so a caller never hears "saved" before the data is durable.
Reads use per-thread connections of their own (WAL lets them run beside the writer).

A request handler reads through `await db.read(fn)`: `fn(conn)` runs on a small pool of reader
threads, each with its own read-only connection, inside one read transaction (every query of
`fn` sees the same snapshot), so a heavy clinic page never holds the event loop and every
other request waits. One query: `await db.fetch(sql, params)` / `await db.fetch_one(...)`
(the off-loop `query` / `query_one`). `db.query`/`db.query_one`/`db.reader` stay for scripts, the CLI and
the writer-side code that is already off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
# SQLite's own default: a commit that leaves this many pages in the WAL checkpoints it
# (PASSIVE). 0 leaves checkpoints to someone else: Litestream, under `pijnwacht replicate`.
DEFAULT_WAL_AUTOCHECKPOINT = 1000
# How many queued jobs one commit may take at most; bounds the latency of the first in line.
MAX_GROUP = 256
# Reader threads of `Database.read`: enough that one slow page does not queue the others
# (SQLite releases the GIL while it reads), few enough that their connections stay cheap.
READER_THREADS = 4
SWITCH_INTERVAL = 0.001
# Heavy builds (`Database.build`: a page's charts, sums and template) on the reader pool at
# once. Pure Python holds the GIL, so two builds side by side take as long in all as one after
# the other; but the event loop competes for the GIL with every thread that wants it, and
# waits in line behind each (issue 17). One at a time, the loop competes with one.
HEAVY_BUILDS = 1


class StorageUnavailable(Exception):
    """The database cannot take writes now (read-only file, full disk, locked too long)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """A UTC timestamp as stored: 2026-03-29T18:15:00Z (sorts as text)."""
    u = dt.astimezone(UTC)
    # Formatted by hand: strftime costs twice as much, and this runs several times per
    # stored response (make bench); the year is always 4 digits, so the text sorts.
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# What a connection keeps between its write jobs (detection's reads, the writer's device
# checks), valid for one `version` the keeper reads in that connection's own transaction state.
KEPT_CONNECTIONS = 4


class PerConnection:
    """A memo per connection, by id (a sqlite3.Connection takes no weak reference: a new
    connection that got a closed one's id must bring a version of its own, which the keepers'
    temporary tables give it). The connection in use is the last to be dropped, and one that
    asks without `create` takes no place: one-off connections (a check, an export) do not push
    the writer's memo out."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._by: dict[int, tuple[Any, Any]] = {}  # id -> (version, memo), oldest first

    def of(self, conn: sqlite3.Connection, version: Any, *, create: bool = True) -> tuple[Any, Any]:
        """(the connection's memo for `version`, or None if there is none and not `create`;
        the memo of another version it replaces, if any)."""
        had = self._by.pop(id(conn), None)
        old = had[1] if had is not None and had[0] != version else None
        if had is not None and old is None:
            memo = had[1]
        elif create or old is not None:
            memo = self._make()
        else:
            return None, None
        self._by[id(conn)] = (version, memo)  # (now the last to be dropped)
        while len(self._by) > KEPT_CONNECTIONS:
            del self._by[next(iter(self._by))]
        return memo, old

    def peek(self, conn: sqlite3.Connection) -> Any:
        """The connection's memo as last kept, whatever its version (None: none)."""
        had = self._by.get(id(conn))
        return had[1] if had is not None else None


def connect(
    path: str | Path, *, readonly: bool = False, wal_autocheckpoint: int = DEFAULT_WAL_AUTOCHECKPOINT
) -> sqlite3.Connection:
    """A connection with the project's pragmas: the one place they are set."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {int(wal_autocheckpoint)}")
    # FULL: a committed diary entry survives a power cut (design.md, "Data").
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


# The storage faults (primary result codes; an extended code such as SQLITE_IOERR_WRITE
# carries its primary code in its low byte): the disk or its folder, never the SQL.
_STORAGE_FAULTS = frozenset(
    (
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_BUSY,  # "database is locked": the busy timeout ran out
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
    )
)


def prune_chunk_by_id(
    conn: sqlite3.Connection, table: str, stamp: str, before: str, after_id: int, limit: int, keep: str = ""
) -> tuple[int, int | None]:
    """One chunk of a prune by age along the primary key: delete the rows of `table` whose
    `stamp` is before `before` among the next `limit` rows after id `after_id`, in id order
    (`keep`: an SQL condition a row must also meet to go); (how many deleted, the id to go on
    after, or None when this chunk held nothing older: done).

    For append-only history whose rows are written at "now", so ids grow with the stamp: the
    old rows are the first ones, a job reads at most `limit` rows, and no index on the stamp
    is needed (one more index would cost every row written, e.g. at 20:00). `table`, `stamp`
    and `keep` are the caller's SQL, never input."""
    hi, oldest = conn.execute(
        f"SELECT max(id), min({stamp}) FROM (SELECT id, {stamp} FROM {table}"
        " WHERE id > ? ORDER BY id LIMIT ?)",
        (after_id, limit),
    ).fetchone()
    if hi is None or oldest >= before:
        return 0, None
    also = f" AND {keep}" if keep else ""
    deleted = conn.execute(
        f"DELETE FROM {table} WHERE id > ? AND id <= ? AND {stamp} < ?{also}", (after_id, hi, before)
    ).rowcount
    return deleted, int(hi)


def _is_storage_fault(exc: BaseException | None) -> bool:
    # Walk the chain: after SQLITE_FULL or an I/O error SQLite rolls the transaction back
    # itself, so the caller's ROLLBACK TO fails with "no such savepoint" and the real
    # cause is only in __context__.
    for _ in range(5):
        if exc is None:
            return False
        code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
        if code is not None and code & 0xFF in _STORAGE_FAULTS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _Job:
    """A write job and where its outcome goes: a thread's Future, or an asyncio future of
    `loop` (settled on that loop, every job of a group in one call: one wake-up of the loop
    per commit, not one per job)."""

    __slots__ = ("fn", "future", "loop", "together")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        future: asyncio.Future | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        together: str | None = None,
    ):
        self.fn = fn
        self.future: Future | asyncio.Future = future if future is not None else Future()
        self.loop = loop
        self.together = together


# The key of the job the writer thread is running and the step it left (`afterwards`), and
# the data_version its group's transaction was begun at (`data_version`).
_left = threading.local()


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's data_version of `conn`: it changes when another connection committed. Read
    once per group commit in the writer's own transaction (it holds the write lock from its
    BEGIN IMMEDIATE: no other connection can commit until it ends), else asked."""
    kept = getattr(_left, "version", None)
    if kept is not None and kept[0] is conn:
        return kept[1]
    return conn.execute("PRAGMA data_version").fetchone()[0]


# A step after a write (`afterwards`): it reads and decides, and hands back what it writes
# (None: nothing), which runs in a savepoint of its own.
Step = Callable[[sqlite3.Connection], Callable[[sqlite3.Connection], None] | None]


def afterwards(conn: sqlite3.Connection, step: Step, what: str = "a step after a write") -> None:
    """`step(conn)` after this write job, in its transaction: at once, or, in a job queued
    with a `together` key (`Database.write`), after the last job of that key in a row of them
    in one group commit, before anything else is written or committed, the step that job left
    (the latest) taking the place of the earlier ones'. A phone that sends one day 16 times at
    once is judged once, on all 16, as a batch of them is (issue 17). Either way the step
    only reads (and keeps its connection's own temporary notes) and returns its writes, which
    run in a savepoint of their own: a failure of the step or its writes rolls back only
    those writes (logged as `what`, with the error's type only), a storage fault fails the
    write. Most steps find nothing to write, and then take no savepoint."""
    if getattr(_left, "together", None) is None:
        _step_after(conn, step, what)
    else:
        _left.step = (step, what)


def _settle(jobs: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each job its outcome (True, value) or (False, exception)."""
    on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, tuple[bool, Any]]]] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        if job.loop is not None:
            on_loops.setdefault(job.loop, []).append((job.future, outcome))
        else:
            _settle_one(job.future, outcome)
    for loop, settled in on_loops.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle_on_loop, settled)


def _settle_on_loop(settled: list[tuple[asyncio.Future, tuple[bool, Any]]]) -> None:
    for future, outcome in settled:
        _settle_one(future, outcome)


def _settle_one(future: Future | asyncio.Future, outcome: tuple[bool, Any]) -> None:
    if future.done():  # a waiter that was cancelled (its job ran all the same)
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _step_after(conn: sqlite3.Connection, step: Step, what: str) -> None:
    """A step after a write (`afterwards`) and the writes it hands back; a failure rolls
    back only those writes (the jobs' data stays written), a storage fault fails the group."""
    try:
        writes = step(conn)
        if writes is not None:
            conn.execute("SAVEPOINT afterwards")
            try:
                writes(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO afterwards")
                    conn.execute("RELEASE afterwards")
                raise
            conn.execute("RELEASE afterwards")
    except Exception as exc:
        if _is_storage_fault(exc) or not conn.in_transaction:
            raise
        # The type only: an exception's message may quote answers (health data).
        log.error("%s failed with %s", what, type(exc).__name__)


class Writer:
    """The single writer thread with group commit."""

    def __init__(self, path: str | Path, *, wal_autocheckpoint: int = DEFAULT_WAL_AUTOCHECKPOINT):
        self.path = str(path)
        self.wal_autocheckpoint = wal_autocheckpoint
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="pijnwacht-writer", daemon=True)
        self._conn: sqlite3.Connection | None = None
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._conn = connect(self.path, wal_autocheckpoint=self.wal_autocheckpoint)
                self._thread.start()
                self._started = True

    def stop(self) -> None:
        with self._lock:
            if self._started:
                self._queue.put(None)
                self._thread.join(timeout=30)
                if self._conn is not None:
                    self._conn.close()
                self._started = False

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future:
        job = _Job(fn)
        self.enqueue(job)
        return job.future

    def enqueue(self, job: _Job) -> None:
        if not self._started:
            self.start()
        self._queue.put(job)

    def _loop(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            self._run_group(conn, jobs)
            if stop:
                return

    def _run_group(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            _left.version = (conn, conn.execute("PRAGMA data_version").fetchone()[0])
        except Exception as exc:  # locked past busy_timeout, read-only file, ...
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._fail_all(jobs, exc)
            return
        try:
            left: tuple[str, tuple[Step, str]] | None = None  # key, step
            for i, job in enumerate(jobs):
                if left is not None and job.together != left[0]:
                    _step_after(conn, *left[1])
                    left = None
                sp = f"job{i}"
                conn.execute(f"SAVEPOINT {sp}")
                _left.together, _left.step = job.together, None
                try:
                    value = job.fn(conn)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    if _is_storage_fault(exc) or not conn.in_transaction:
                        # Nothing of this group can be committed (SQLite may already
                        # have rolled it all back): every job in it hears why.
                        raise
                    conn.execute(f"ROLLBACK TO {sp}")
                    conn.execute(f"RELEASE {sp}")
                    results.append((False, exc))
                else:
                    conn.execute(f"RELEASE {sp}")
                    results.append((True, value))
                    if _left.step is not None:
                        left = (job.together, _left.step)
                finally:
                    _left.together = _left.step = None
            if left is not None:
                _step_after(conn, *left[1])
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._fail_all(jobs, exc)
            return
        finally:
            _left.version = None
        _settle(jobs, results)

    @staticmethod
    def _fail_all(jobs: list[_Job], exc: BaseException) -> None:
        if _is_storage_fault(exc):
            log.error("database refused a write: %s", exc)
            err: BaseException = StorageUnavailable(
                "The database cannot save right now; nothing was saved. Try again later."
            )
        else:
            err = exc
        _settle(jobs, [(False, err)] * len(jobs))


class Database:
    """The one database of a running process: its writer and its readers."""

    def __init__(self, path: str | Path, *, wal_autocheckpoint: int = DEFAULT_WAL_AUTOCHECKPOINT):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.wal_autocheckpoint = wal_autocheckpoint
        self.writer = Writer(self.path, wal_autocheckpoint=wal_autocheckpoint)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # One semaphore per event loop (a test may run several in turn).
        self._heavy: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    # -- set-up ---------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations (through the writer, so it is safe beside a server)."""
        from backend.platform import migrations  # here: migrations imports this module

        new_file = not self.path.exists()
        conn = connect(self.path, wal_autocheckpoint=self.wal_autocheckpoint)
        if new_file:
            # Health data: readable by the server's user only (SQLite gives its -wal and -shm
            # files the same mode). An existing file keeps the mode its admin chose.
            os.chmod(self.path, 0o600)
        try:
            return migrations.apply(conn)
        finally:
            conn.close()

    def close(self) -> None:
        self.writer.stop()
        with self._readers_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._readers_lock:
            for c in self._readers:
                c.close()
            self._readers.clear()
        self._local = threading.local()

    # -- reads ----------------------------------------------------------------------------
    @property
    def reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on a reader thread, in one read transaction; await its value.

        The one way a request handler reads: the event loop stays free meanwhile. `fn` gets a
        read-only connection of its thread (never share it beyond `fn`); what it returns should
        be plain data (rows fetched, not a cursor).
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool(), self.read_sync, fn)

    async def build(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`read(fn)` for heavy pure-Python work (a clinic page's build and render, tens of ms):
        HEAVY_BUILDS at a time on the reader pool, the others waiting their turn on the loop
        (not in a reader thread, so the light reads of other requests still get one)."""
        loop = asyncio.get_running_loop()
        turn = self._heavy.get(loop)
        if turn is None:
            turn = self._heavy[loop] = asyncio.Semaphore(HEAVY_BUILDS)
        async with turn:
            return await self.read(fn)

    async def fetch(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """`query` off the loop: `rows = await db.fetch(sql, params)`."""
        return await self.read(lambda conn: conn.execute(sql, params).fetchall())

    async def fetch_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        """`query_one` off the loop."""
        return await self.read(lambda conn: conn.execute(sql, params).fetchone())

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` on this thread's reader connection inside one read transaction."""
        conn = self.reader
        if conn.in_transaction:  # nested (fn called read_sync itself): share the snapshot
            return fn(conn)
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("COMMIT")

    def _reader_pool(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            with self._readers_lock:
                if self._pool is None:
                    # A reader thread also runs Python (building rows, a page's sums) and holds
                    # the GIL meanwhile: hand it back to the event loop within 1 ms instead of
                    # CPython's default 5 ms, so a request waits for no thread's page.
                    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
                    self._pool = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="pijnwacht-reader")
                pool = self._pool
        return pool

    def answers(self) -> bool:
        """Whether the database answers a one-row read (the health check: cheap enough to stay
        on the event loop, and any failure means "not healthy")."""
        try:
            self.reader.execute("SELECT 1 FROM _migrations LIMIT 1").fetchone()
        except Exception:  # noqa: BLE001
            return False
        return True

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.reader.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.reader.execute(sql, params).fetchone()

    # -- writes ---------------------------------------------------------------------------
    async def write(self, fn: Callable[[sqlite3.Connection], T], *, together: str | None = None) -> T:
        """`fn(conn)` in the writer's next group commit; its value once committed.
        `together`: a key (a patient's id) for `afterwards`."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.writer.enqueue(_Job(fn, future, loop, together))
        return await future

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self.writer.submit(fn).result()

    def write_soon(self, fn: Callable[[sqlite3.Connection], T]) -> Future:
        """`fn` queued for the writer; its Future (for a caller with other work meanwhile)."""
        return self.writer.submit(fn)

    @contextlib.contextmanager
    def checkpoints_aside(self) -> Iterator[Callable[[], None]]:
        """For a long run of big write jobs (the 20:00 claim): the writer's commits do not
        checkpoint meanwhile, and the caller checkpoints instead, with the function this
        yields: a PASSIVE checkpoint on a connection of the caller's own thread, which copies
        the WAL into the file beside the writer (the writer goes on writing meanwhile).

        A commit that crosses wal_autocheckpoint pages checkpoints inside the writer's job
        otherwise, and a phone's PUT behind that job waits for the copy and its fsync (at a
        million patients, up to a second). With wal_autocheckpoint 0 (Litestream, the one
        checkpointer then) nothing changes and the function does nothing."""
        pages = self.wal_autocheckpoint
        if pages <= 0:
            yield lambda: None
            return
        own: list[sqlite3.Connection] = []

        def checkpoint() -> None:
            # A failed copy stops nothing: the writer checkpoints again when this is over.
            try:
                if not own:
                    own.append(connect(self.path, wal_autocheckpoint=0))
                own[0].execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                log.warning("checkpoint beside the writer failed: %s", type(exc).__name__)

        self.write_sync(lambda conn: conn.execute("PRAGMA wal_autocheckpoint = 0").fetchall())
        try:
            yield checkpoint
        finally:
            self.write_sync(lambda conn: conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}").fetchall())
            for conn in own:
                conn.close()


def open_database(path: str | Path, *, wal_autocheckpoint: int = DEFAULT_WAL_AUTOCHECKPOINT) -> Database:
    """Open (and create, and migrate) the database file."""
    db = Database(path, wal_autocheckpoint=wal_autocheckpoint)
    db.migrate()
    return db
