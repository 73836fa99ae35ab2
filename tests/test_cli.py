"""The `pijnwacht` command as the clinic's admin and scripts use it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIJNWACHT = [sys.executable, "-m", "backend.cli"]


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIJNWACHT_DB": str(tmp_path / "cli.db")}
    return subprocess.run(
        [*PIJNWACHT, *args], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def test_enrol_json_prints_exactly_one_object(tmp_path):
    r = run(tmp_path, "enrol", "--name", "Mevr. Jansen", "--pathway", "chronic-pain", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"patient_id", "code", "expires_at"}
    assert len(out["code"].replace("-", "")) == 8
    conn = sqlite3.connect(tmp_path / "cli.db")
    assert conn.execute("SELECT pathway_id FROM patients").fetchone()[0] == "chronic-pain"
    # The pathway is materialised into tasks at once.
    assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] >= 1
    conn.close()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--pathway", "nope"], "onbekend"),
        (["--pathway", "opioid", "--timezone", "Mars/Base"], "tijdzone"),
        (["--pathway", "opioid", "--start", "29-03-2026"], "JJJJ-MM-DD"),
    ],
)
def test_enrol_refuses_bad_input_with_a_reason(tmp_path, args, words):
    r = run(tmp_path, "enrol", "--name", "A", *args)
    assert r.returncode == 2 and words in r.stderr and r.stdout == ""


def test_user_add_reads_the_password_from_stdin(tmp_path):
    r = run(
        tmp_path,
        "user",
        "add",
        "--email",
        "a@example.org",
        "--name",
        "A",
        "--role",
        "admin",
        "--password-stdin",
        stdin="een lang wachtwoord\n",
    )
    assert r.returncode == 0, r.stderr
    r = run(
        tmp_path,
        "user",
        "add",
        "--email",
        "a@example.org",
        "--name",
        "A",
        "--password-stdin",
        stdin="een lang wachtwoord\n",
    )
    assert r.returncode == 2 and "Er is al een account" in r.stderr
    r = run(
        tmp_path, "user", "add", "--email", "b@example.org", "--name", "B", "--password-stdin", stdin="kort\n"
    )
    assert r.returncode == 2 and "minstens 8 tekens" in r.stderr
    r = run(
        tmp_path,
        "user",
        "add",
        "--email",
        "b@example.org",
        "--name",
        "B",
        "--password-stdin",
        stdin="wachtwoord123\n",
    )
    assert r.returncode == 2 and "veelgebruikte wachtwoorden" in r.stderr


def test_a_wrong_setting_stops_the_command_naming_the_variable(tmp_path):
    env = {**os.environ, "PIJNWACHT_DB": str(tmp_path / "x.db"), "PIJNWACHT_PORT": "high"}
    r = subprocess.run([*PIJNWACHT, "serve"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "PIJNWACHT_PORT" in r.stderr


def test_backup_makes_a_whole_copy(tmp_path):
    run(tmp_path, "enrol", "--name", "A", "--pathway", "opioid", "--json")
    target = tmp_path / "backups" / "copy.db"
    r = run(tmp_path, "backup", str(target))
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM patients").fetchone()[0] == 1
    conn.close()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert not list(target.parent.glob(".*partial*"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_first_run_says_the_demo_sign_in_last_once_the_server_is_up(tmp_path):
    """`make run` (`serve --demo-if-empty`): the one-time login is the last thing said, below
    uvicorn's start-up lines, and it works; a second start tells how to get a new password."""
    import time

    import httpx

    def start() -> tuple[subprocess.Popen, list[str], int]:
        port = free_port()
        env = {**os.environ, "PIJNWACHT_DATA_DIR": str(tmp_path), "PIJNWACHT_DB": str(tmp_path / "pw.db")}
        env["PIJNWACHT_PORT"] = str(port)
        env["PIJNWACHT_SCHEDULER"] = "false"
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--demo-if-empty"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line.rstrip("\n"))
            if line.startswith("=" * 72) and sum(x.startswith("=" * 72) for x in lines) == 2:
                break
            if "demo login lost?" in line:
                break
        return proc, lines, port

    proc, lines, port = start()
    try:
        running = next(i for i, x in enumerate(lines) if "Uvicorn running on" in x)
        password_at = next(i for i, x in enumerate(lines) if x.strip().startswith("password:"))
        assert running < password_at, "\n".join(lines)
        assert lines[-1] == "=" * 72
        email = next(x.split()[-1] for x in lines if x.strip().startswith("e-mail:"))
        password = lines[password_at].split()[-1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            page = client.get("/clinic/login")
            token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
            form = {"email": email, "password": password, "login_csrf": token}
            signed_in = client.post("/clinic/login", data=form)
            assert signed_in.status_code in (302, 303), signed_in.text
            assert client.get(signed_in.headers["location"], follow_redirects=True).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    proc, lines, _ = start()
    try:
        assert "user passwd --email demo@pijnwacht.local" in lines[-1]
        assert not any(x.strip().startswith("password:") for x in lines)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_access_log_says_what_was_asked_for_never_of_whom():
    """uvicorn's access line through the server's filter: no patient id, no search term."""
    import logging

    from backend.web.httpguard import QueryRedactor

    def logged(path: str) -> str:
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', None, None
        )
        record.args = ("127.0.0.1:5", "GET", path, "1.1", 200)
        QueryRedactor().filter(record)
        return record.getMessage()

    assert (
        logged("/clinic/patients/p7xk2m9q4tz/consult")
        == '127.0.0.1:5 - "GET /clinic/patients/…/consult HTTP/1.1" 200'
    )
    assert "p7xk2m9q4tz" not in logged("/clinic/audit/p7xk2m9q4tz")
    assert logged("/clinic/patients?q=Jansen") == '127.0.0.1:5 - "GET /clinic/patients?… HTTP/1.1" 200'
    assert "/api/v1/diary/2026-12-01" in logged("/api/v1/diary/2026-12-01")  # no id in it: as asked
