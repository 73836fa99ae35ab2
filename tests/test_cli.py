"""The `pijnwacht` command as the clinic's admin and scripts use it."""

from __future__ import annotations

import json
import os
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
