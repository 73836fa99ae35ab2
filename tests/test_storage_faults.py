"""Storage faults: a full disk, a read-only file system, a database locked too long.

What a user must notice: the phone is told "not saved, try again" (503 with a JSON `detail` and
Retry-After, so the PWA keeps the answer in its outbox), nothing is half-written, reading
still works (the patient can see their history), and saving works again once the fault is
gone, without a restart.

Faults are real where the machine allows it (a small tmpfs mounted for the test: root only),
and otherwise simulated on the writer's own connection (PRAGMA max_page_count for a full disk,
PRAGMA query_only for a read-only file) — both reach the same SQLite error paths.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from backend.patients import enrolment
from backend.platform.settings import load_settings
from backend.system import build
from backend.web.app import create_app
from tests.conftest import diary, new_id
from tests.server import free_port, pijnwacht_cmd

pytestmark = pytest.mark.timeout(120)


def can_mount() -> bool:
    return os.geteuid() == 0 and Path("/proc/filesystems").read_text().find("tmpfs") >= 0


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path | None]:
    """A tmpfs of `size` at `where`, or None when this machine will not mount one."""
    where.mkdir(parents=True, exist_ok=True)
    if (
        not can_mount()
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
        ).returncode
        != 0
    ):
        yield None
        return
    try:
        yield where
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(where)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


class Clinic:
    """The real app on a database file somewhere, with one enrolled patient."""

    def __init__(self, db: Path):
        # Thousands of entries for one day fill the disk: the per-day edit cap is not under test here.
        self.settings = load_settings(env={}, db=str(db), scheduler=False, max_edits_per_hour=0)
        self.services = build(self.settings, push=False)
        self.client = TestClient(app=create_app(self.settings, self.services))
        self.client.__enter__()

        def make(conn):
            _p, code, _ = enrolment.create_patient(
                conn,
                display_name="Mevr. Vol",
                pathway_id="chronic-pain",
                known_pathways=self.services.pathway_ids,
            )
            return enrolment.redeem_code(conn, code)

        patient, token = self.services.db.write_sync(make)
        self.patient_id = patient.id
        self.headers = {"Authorization": f"Bearer {token}"}
        first = self.client.put(f"/api/v1/responses/{new_id()}", json=diary(pain_avg=4), headers=self.headers)
        assert first.status_code == 201

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def stored(self) -> int:
        conn = sqlite3.connect(f"file:{self.settings.db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM responses").fetchone()[0]
        finally:
            conn.close()

    def writer(self, sql: str) -> None:
        """Run a statement on the writer's own connection (the test hook for simulated faults)."""
        self.services.db.write_sync(lambda conn: conn.execute(sql))

    def batch(self, n: int = 50) -> list[dict]:
        return [{"id": new_id(), **diary(note="x" * 1000)} for _ in range(n)]

    def send(self, items: list[dict]):
        return self.client.post("/api/v1/responses:batch", json={"responses": items}, headers=self.headers)

    def assert_refused_whole(self, r, before: int) -> None:
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status_code"] == 503 and "niets opgeslagen" in body["detail"]
        assert int(r.headers["retry-after"]) > 0
        assert self.stored() == before, "a refused write left part of itself behind"

    def assert_reads_work(self, expected: int) -> None:
        me = self.client.get("/api/v1/me", headers=self.headers)
        assert me.status_code == 200 and me.json()["id"] == self.patient_id
        history = self.client.get("/api/v1/responses", headers=self.headers)
        assert history.status_code == 200
        assert len(history.json()["responses"]) == expected


def fill(path: Path) -> Path:
    """Write a ballast file until the file system is full."""
    ballast = path / "ballast"
    chunk = b"\0" * 65536
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    return ballast


@pytest.mark.parametrize("how", ["tmpfs", "max_page_count"])
def test_full_disk_refuses_whole_batches_and_keeps_serving_reads(tmp_path, how):
    with small_tmpfs(tmp_path / "small", "8m") as mount:
        if how == "tmpfs" and mount is None:
            how = "max_page_count"  # not root here: the simulated fault takes the same path
        clinic = Clinic((mount if how == "tmpfs" else tmp_path) / "pijnwacht.db")
        try:
            before = clinic.stored()
            if how == "tmpfs":
                ballast = fill(mount)
            else:
                pages = clinic.services.db.query_one("PRAGMA page_count")[0]
                clinic.writer(f"PRAGMA max_page_count = {pages}")
            # Keep sending until the disk refuses (free WAL frames may take the first ones).
            items = clinic.batch(200)
            for _ in range(20):
                r = clinic.send(items)
                if r.status_code != 200:
                    break
                before = clinic.stored()
                items = clinic.batch(200)
            clinic.assert_refused_whole(r, before)
            single = clinic.client.put(
                f"/api/v1/responses/{new_id()}", json=diary(note="y" * 1000), headers=clinic.headers
            )
            assert single.status_code in (201, 503)
            if single.status_code == 201:
                before += 1
            clinic.assert_reads_work(before)
            assert clinic.client.get("/healthz").status_code == 200

            # Space again: the same outbox goes through, once.
            if how == "tmpfs":
                ballast.unlink()
            else:
                clinic.writer("PRAGMA max_page_count = 1073741823")
            r = clinic.send(items)
            assert r.status_code == 200
            assert {x["status"] for x in r.json()["results"]} == {"created"}
            assert clinic.stored() == before + len(items)
            conn = sqlite3.connect(clinic.settings.db)
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.close()
        finally:
            clinic.close()


def test_a_read_only_database_refuses_writes_clearly_and_recovers(tmp_path):
    """The writer's connection turned read-only under a running server (query_only: the same
    SQLITE_READONLY a read-only file gives; a mounted volume cannot be remounted read-only
    while the server holds its files open for writing)."""
    clinic = Clinic(tmp_path / "pijnwacht.db")
    try:
        before = clinic.stored()
        clinic.writer("PRAGMA query_only = ON")
        clinic.assert_refused_whole(clinic.send(clinic.batch(5)), before)
        r = clinic.client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=clinic.headers)
        clinic.assert_refused_whole(r, before)
        r = clinic.client.patch("/api/v1/me", json={"reminder_time": "19:00"}, headers=clinic.headers)
        assert r.status_code == 503 and r.json()["detail"]
        clinic.assert_reads_work(before)
        # query_only refuses its own undo inside a write job: lift it directly.
        clinic.services.db.writer._conn.execute("PRAGMA query_only = OFF")
        r = clinic.send(clinic.batch(5))
        assert r.status_code == 200, r.text
        assert clinic.stored() == before + 5
    finally:
        clinic.close()


@pytest.mark.parametrize("how", ["read-only-volume", "folder-as-file"])
def test_serve_on_an_unusable_database_says_what_to_check(tmp_path, how):
    """Started on a read-only volume (a restore gone wrong) the server stops with one clear line."""
    with small_tmpfs(tmp_path / "vol", "8m") as mount:
        env = {**os.environ, "PIJNWACHT_SCHEDULER": "false"}
        if how == "read-only-volume" and mount is not None:
            db = mount / "pijnwacht.db"
            enrolled = subprocess.run(
                pijnwacht_cmd("--db", str(db), "enrol", "--name", "A", "--pathway", "chronic-pain", "--json"),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert enrolled.returncode == 0, enrolled.stderr
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        else:
            # Not root: a folder where the file should be gives SQLite's same "unable to open".
            db = tmp_path / "not-a-file.db"
            db.mkdir()
        r = subprocess.run(
            pijnwacht_cmd("--db", str(db), "serve", "--port", str(free_port())),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode != 0
        assert "Traceback" not in r.stderr, r.stderr
        assert "cannot use the database" in r.stderr and "writable" in r.stderr


def test_a_database_locked_too_long_is_503_not_a_hang(tmp_path):
    """Another process (a careless sqlite3 shell, a backup tool) holds the write lock."""
    clinic = Clinic(tmp_path / "pijnwacht.db")
    try:
        before = clinic.stored()
        clinic.services.db.writer._conn.execute("PRAGMA busy_timeout = 300")
        other = sqlite3.connect(clinic.settings.db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            r = clinic.client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=clinic.headers)
            assert time.monotonic() - started < 5
            clinic.assert_refused_whole(r, before)
            clinic.assert_reads_work(before)
        finally:
            other.execute("ROLLBACK")
            other.close()
        r = clinic.client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=clinic.headers)
        assert r.status_code == 201
    finally:
        clinic.close()


def test_clinic_pages_say_so_when_the_database_cannot_save(tmp_path):
    """A clinician enrolling a patient on a read-only database gets a page, not a stack trace."""
    clinic = Clinic(tmp_path / "pijnwacht.db")
    try:
        from backend.platform import accounts

        user = clinic.services.db.write_sync(
            lambda conn: accounts.add_user(
                conn,
                email="nurse@example.org",
                name="nurse",
                role="clinician",
                password="correct horse battery",
            )
        )
        token, session = clinic.services.db.write_sync(
            lambda conn: accounts.create_session(conn, user, hours=1, source="test")
        )
        clinic.writer("PRAGMA query_only = ON")
        clinic.client.cookies.set("pw_session", token, path="/clinic")
        r = clinic.client.post(
            "/clinic/patients",
            data={
                "csrf_token": session.csrf_token,
                "display_name": "Mevr. Nieuw",
                "pathway_id": "chronic-pain",
            },
        )
        assert r.status_code == 503
        assert "text/html" in r.headers["content-type"] and "er is niets opgeslagen" in r.text
        assert "Traceback" not in r.text
    finally:
        clinic.services.db.writer._conn.execute("PRAGMA query_only = OFF")
        clinic.close()


def test_concurrent_writers_during_a_fault_all_get_an_answer(tmp_path):
    """Group commit: when one commit fails, every request in that group hears 503, none hangs."""
    clinic = Clinic(tmp_path / "pijnwacht.db")
    try:
        before = clinic.stored()
        clinic.writer("PRAGMA query_only = ON")
        codes: list[int] = []

        def put():
            r = clinic.client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=clinic.headers)
            codes.append(r.status_code)

        threads = [threading.Thread(target=put) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert codes == [503] * 20
        assert clinic.stored() == before
    finally:
        clinic.services.db.writer._conn.execute("PRAGMA query_only = OFF")
        clinic.close()
