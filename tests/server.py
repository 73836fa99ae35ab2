"""A real `pijnwacht serve` process for fault tests: free port, temp database, kill and restart.

Tests that must survive a SIGKILL, a backup beside live writers or a second process use this
instead of the in-process TestClient: the server runs exactly as in production (uvicorn, the
writer thread, WAL on a real file), only on loopback and with its own database.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PIJNWACHT = str(BIN / "pijnwacht") if (BIN / "pijnwacht").exists() else None


def pijnwacht_cmd(*args: str) -> list[str]:
    """The command line for `pijnwacht ARGS` in this virtualenv."""
    if PIJNWACHT:
        return [PIJNWACHT, *args]
    return [sys.executable, "-m", "backend.cli", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `pijnwacht serve` subprocess on a free loopback port with its own database file.

    `command` runs another serving command instead, e.g. ("replicate", "--to", URL): the server
    then runs as Litestream's child, in the same process group.
    """

    def __init__(
        self,
        db: Path,
        *,
        env: dict[str, str] | None = None,
        scheduler: bool = False,
        command: tuple[str, ...] = ("serve",),
    ):
        self.db = Path(db)
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PIJNWACHT_DB": str(self.db),
            "PIJNWACHT_SCHEDULER": "true" if scheduler else "false",
            "PIJNWACHT_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log = self.db.with_suffix(".server.log")

    # -- process ----------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> Server:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                pijnwacht_cmd(*self.command, "--host", "127.0.0.1", "--port", str(self.port)),
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not healthy after {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole process group (the server and a Litestream above it) at once:
        no shutdown hooks, no final commit or sync, as in a power cut of the machine."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- commands beside the running server -----------------------------------------------------
    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:  # noqa: A002
        """Run another `pijnwacht` command on the same database (as cron or an operator would)."""
        return subprocess.run(
            pijnwacht_cmd(*args),
            env=self.env,
            cwd=ROOT,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def enrol(self, name: str = "Mevr. Jansen", pathway: str = "chronic-pain") -> tuple[str, str]:
        """Enrol through the CLI (`pijnwacht enrol --json`): (patient id, one-time code)."""
        r = self.run("enrol", "--name", name, "--pathway", pathway, "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        return out["patient_id"], out["code"]

    def join(self, name: str = "Mevr. Jansen", pathway: str = "chronic-pain") -> tuple[str, dict[str, str]]:
        """Enrol and redeem the code as the PWA does: (patient id, Authorization headers)."""
        _pid, code = self.enrol(name, pathway)
        return redeem(self.url, code)


def enrol_direct(db: Path, n: int, *, pathway: str = "chronic-pain", prefix: str = "P") -> list[str]:
    """Enrol n patients straight into the database file (beside a running server; WAL allows it).

    Quicker than n `pijnwacht enrol` processes when a test needs many patients; returns the
    one-time codes, which the test redeems over HTTP like the PWA.
    """
    from backend.patients import enrolment
    from backend.platform.storage import connect

    conn = connect(db)
    try:
        codes = []
        conn.execute("BEGIN IMMEDIATE")
        for i in range(n):
            _p, code, _ = enrolment.create_patient(
                conn, display_name=f"{prefix}{i}", pathway_id=pathway, known_pathways={pathway}
            )
            codes.append(code)
        conn.execute("COMMIT")
        return codes
    finally:
        conn.close()


def redeem(url: str, code: str) -> tuple[str, dict[str, str]]:
    r = httpx.post(url + "/api/v1/enrol", json={"code": code}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["patient"]["id"], {"Authorization": f"Bearer {r.json()['token']}"}


class Phones:
    """Phones sending one diary after another through the real API, one thread each, until the
    block ends or the server is gone; remembers when the server confirmed each response."""

    def __init__(self, url: str, headers: list[dict[str, str]], *, timeout: float = 30, pause: float = 0.0):
        self.url, self.timeout, self.pause = url, timeout, pause
        self.confirmed: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(h,)) for h in headers]

    def run(self, headers: dict[str, str]) -> None:
        from tests.conftest import diary

        zone = ZoneInfo("Europe/Amsterdam")
        today = datetime.now(zone).date()
        with httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout) as http:
            n = 0
            while not self.stop.is_set():
                rid = str(uuid.uuid4())
                body = diary((today - timedelta(days=n % 10)).isoformat(), pain_avg=n % 11)
                body["authored_at"] = (datetime.now(zone) - timedelta(seconds=n)).isoformat()
                try:
                    r = http.put(f"/api/v1/responses/{rid}", json=body)
                except httpx.HTTPError:
                    return  # the server is gone
                assert r.status_code == 201, r.text
                with self.lock:
                    self.confirmed.append((time.monotonic(), rid))
                n += 1
                time.sleep(self.pause)

    def confirmed_by(self, moment: float) -> set[str]:
        with self.lock:
            return {rid for at, rid in self.confirmed if at <= moment}

    def __enter__(self) -> Phones:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
