"""`pijnwacht replicate` and `pijnwacht restore` with real processes: Litestream above a real server.

Phones write through the API while Litestream streams the WAL to a file:// replica; then the
server and Litestream die together by SIGKILL (the process group, as in a power cut). A restore
must hold every response confirmed more than the sync window before the kill (Litestream's
sync interval, 1 s here, plus its monitor interval and the upload: 1.5 s allowed), pass
its integrity check and serve again; a point-in-time restore holds what was there at that moment
and nothing after it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from backend import cli
from backend import system as services
from backend.platform.replication import MONITOR_INTERVAL_MS, litestream_binary, replicate_command
from backend.platform.settings import load_settings
from backend.platform.storage import open_database
from tests.conftest import diary
from tests.server import Phones, Server, redeem

pytestmark = pytest.mark.timeout(120)

AMS = ZoneInfo("Europe/Amsterdam")
SYNC_INTERVAL = 1.0  # seconds: PIJNWACHT_REPLICA_SYNC_INTERVAL below
# A commit reaches the replica within Litestream's monitor interval plus its sync interval,
# plus the upload itself: a quarter second allowed for that on this shared 2-core machine.
WINDOW = SYNC_INTERVAL + MONITOR_INTERVAL_MS / 1000 + 0.25


def replicating(tmp_path: Path, name: str = "live") -> tuple[Server, str]:
    replica = f"file://{tmp_path / 'replica'}"
    server = Server(
        tmp_path / name / "pijnwacht.db",
        command=("replicate", "--to", replica),
        env={"PIJNWACHT_REPLICA_SYNC_INTERVAL": f"{SYNC_INTERVAL:g}s"},
    )
    return server, replica


def response_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {r[0] for r in conn.execute("SELECT id FROM responses")}
    finally:
        conn.close()


def restore(server: Server, source: str, output: Path, *extra: str):
    started = time.monotonic()
    done = server.run("restore", "--from", source, "-o", str(output), *extra, timeout=60)
    assert done.returncode == 0, done.stderr
    return done, time.monotonic() - started


def test_litestream_binary_comes_with_the_project():
    path = litestream_binary()
    assert os.access(path, os.X_OK)


def test_the_server_litestream_runs_leaves_checkpoints_to_litestream(tmp_path):
    settings = load_settings(env={"PIJNWACHT_DB": str(tmp_path / "d" / "p.db")})
    argv, env = replicate_command(settings, f"file://{tmp_path / 'replica'}")
    assert argv[1:3] == ["replicate", "-config"] and "-exec" in argv
    assert "serve" in argv[-1]
    svc = services.build(load_settings(env=env), push=False)
    try:
        pages = svc.db.write_sync(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    finally:
        svc.close()
    assert pages == 0
    own = services.build(settings, push=False)
    try:
        assert own.db.write_sync(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 1000
    finally:
        own.close()


def test_a_restore_after_a_crash_holds_every_response_confirmed_a_sync_window_before_it(tmp_path):
    server, replica = replicating(tmp_path)
    server.start()
    config = server.db.parent / "litestream.yml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert f'url: "{replica}"' in config.read_text()
    patients = [redeem(server.url, server.enrol(name=f"P{i}")[1]) for i in range(3)]
    before = httpx.get(server.url + "/api/v1/me", headers=patients[0][1], timeout=5).json()["generation"]
    with Phones(server.url, [h for _p, h in patients], timeout=5, pause=0.01) as phones:
        time.sleep(4)
        killed_at = time.monotonic()
        server.kill()  # the server and Litestream together
    confirmed = phones.confirmed
    assert len(confirmed) > 100, "the phones hardly wrote"

    restored = tmp_path / "restored" / "pijnwacht.db"
    done, took = restore(server, replica, restored)
    assert "integrity ok" in done.stdout
    assert stat.S_IMODE(restored.stat().st_mode) == 0o600
    have = response_ids(restored)
    lost = [(at, rid) for at, rid in confirmed if rid not in have]
    old_enough = [rid for at, rid in lost if at <= killed_at - WINDOW]
    window = max((killed_at - at for at, _ in lost), default=0.0)
    print(
        f"\nreplication: {len(confirmed)} confirmed, {len(lost)} lost, the oldest lost one confirmed"
        f" {window:.2f} s before the kill (sync interval {SYNC_INTERVAL:g} s); restore {took:.2f} s"
    )
    assert not old_enough, f"{len(old_enough)} responses confirmed over {WINDOW:g} s before the kill lost"

    # The restored file serves: the same phone is let in, sees a new generation, can write.
    again = Server(restored).start()
    try:
        me = httpx.get(again.url + "/api/v1/me", headers=patients[0][1], timeout=5)
        assert me.status_code == 200
        assert me.json()["generation"] not in ("", before)
        r = httpx.put(
            f"{again.url}/api/v1/responses/{uuid.uuid4()}", json=diary(), headers=patients[1][1], timeout=5
        )
        assert r.status_code == 201, r.text
    finally:
        again.stop()


def test_a_point_in_time_restore_holds_what_was_there_then_and_nothing_after_and_a_stop_loses_nothing(
    tmp_path,
):
    server, replica = replicating(tmp_path)
    server.start()
    try:
        _pid, headers = redeem(server.url, server.enrol()[1])
        today = datetime.now(AMS).date()

        def send(days: range) -> set[str]:
            ids = set()
            for d in days:
                rid = str(uuid.uuid4())
                body = diary((today - timedelta(days=d)).isoformat())
                r = httpx.put(f"{server.url}/api/v1/responses/{rid}", json=body, headers=headers, timeout=5)
                assert r.status_code == 201, r.text
                ids.add(rid)
            return ids

        early = send(range(10, 5, -1))
        time.sleep(2.5 * SYNC_INTERVAL)
        moment = datetime.now(UTC)
        time.sleep(2.5 * SYNC_INTERVAL)
        late = send(range(5, 1, -1))
        time.sleep(2.5 * SYNC_INTERVAL)
        # Right before a graceful stop (systemctl stop): Litestream syncs on its way out.
        last = send(range(1, 0, -1))
    finally:
        server.stop()

    then = tmp_path / "then.db"
    restore(server, replica, then, "--timestamp", moment.isoformat())
    got = response_ids(then)
    assert early <= got
    assert not got & (late | last), "the point-in-time restore holds responses written after the moment"

    latest = tmp_path / "latest.db"
    restore(server, replica, latest)
    assert early | late | last <= response_ids(latest), "a graceful stop lost what was just confirmed"


def test_restore_refuses_to_overwrite_and_says_why(tmp_path, capsys):
    db = tmp_path / "live.db"
    open_database(db).close()
    assert cli.main(["--db", str(db), "backup", str(tmp_path / "copy.db")]) == 0
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"keep me")
    capsys.readouterr()
    copy = str(tmp_path / "copy.db")
    assert cli.main(["--db", str(db), "restore", "--from", copy, "-o", str(existing)]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "new file" in err
    assert existing.read_bytes() == b"keep me"
    # A backup copy holds one moment: a timestamp makes no sense for it.
    out = tmp_path / "new.db"
    argv = ["--db", str(db), "restore", "--from", str(tmp_path / "copy.db"), "-o", str(out)]
    assert cli.main([*argv, "--timestamp", "2026-03-29T18:00:00Z"]) == 2
    assert "--timestamp" in capsys.readouterr().err
    assert cli.main(["--db", str(db), "restore", "--from", "ftp://x/y", "-o", str(out)]) == 2
    assert "replica URL" in capsys.readouterr().err
    empty = f"file://{tmp_path / 'no-replica-here'}"
    assert cli.main(["--db", str(db), "restore", "--from", empty, "-o", str(out)]) == 2
    assert "could not restore" in capsys.readouterr().err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert cli.main(["--db", str(db), "restore", "--from", str(junk), "-o", str(out)]) == 2
    assert "not a Pijnwacht database" in capsys.readouterr().err
    assert not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if "restoring" in p.name], "a partial file was left"


def generation_of(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT value FROM settings_kv WHERE key = 'generation'").fetchone()[0]
    finally:
        conn.close()


def test_a_backup_copy_and_every_restore_of_it_are_new_generations(tmp_path):
    db = tmp_path / "live.db"
    open_database(db).close()
    copy = tmp_path / "copy.db"
    assert cli.main(["--db", str(db), "backup", str(copy)]) == 0
    first = tmp_path / "r1.db"
    second = tmp_path / "r2.db"
    assert cli.main(["--db", str(db), "restore", "--from", str(copy), "-o", str(first)]) == 0
    assert cli.main(["--db", str(db), "restore", "--from", str(copy), "-o", str(second)]) == 0
    gens = [generation_of(p) for p in (db, copy, first, second)]
    assert all(len(g) == 32 for g in gens)
    assert len(set(gens)) == 4, "a copy or a restore kept the generation of another file"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
