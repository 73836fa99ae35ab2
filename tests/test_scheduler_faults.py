"""Scheduler process faults: `pijnwacht tick` killed with SIGKILL partway, then run again.

Cron may kill a tick (a timeout), the machine may reboot mid-pass. Whatever point the kill
hits — while loading, while planning, right after the first claims — the next tick must
remind every patient who is due and none of them twice (tests/test_scheduler.py covers the
pass itself, concurrent ticks and the lease; this file covers the process dying).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import date

import pytest

from backend.platform.storage import iso, open_database
from tests.server import ROOT, pijnwacht_cmd
from tests.test_scheduler import add_patient, local

pytestmark = pytest.mark.timeout(120)

PATIENTS = 150
DAY = date(2026, 3, 21)


def claims(db_path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return conn.execute("SELECT task_id, count(*) FROM reminder_log GROUP BY task_id").fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("kill_at", ["first-claim", "0.2s"])
def test_a_tick_killed_partway_then_rerun_reminds_everyone_once(tmp_path, kill_at):
    db_path = tmp_path / "pijnwacht.db"
    db = open_database(db_path)
    for n in range(PATIENTS):
        add_patient(db, f"p{n:03d}", anchor="2026-03-20")
    db.close()
    env = {**os.environ, "PIJNWACHT_DB": str(db_path)}
    # The midday pass plans the day (enrolment does that in real life); the evening pass,
    # the one killed, has 150 reminders to claim and queue.
    noon = subprocess.run(
        pijnwacht_cmd("tick", "--now", iso(local(DAY, 12))),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert noon.returncode == 0 and json.loads(noon.stdout)["reminders"] == 0, noon.stderr
    at = iso(local(DAY, 20, 1))
    cmd = pijnwacht_cmd("tick", "--now", at)

    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    if kill_at == "first-claim":
        while proc.poll() is None and time.monotonic() - started < 60:
            try:
                if claims(db_path):
                    break
            except sqlite3.OperationalError:
                pass  # the tick is creating tables on a first start
            time.sleep(0.002)
    else:
        time.sleep(float(kill_at.rstrip("s")))
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    before = claims(db_path)
    print(f"killed={killed} at {kill_at}: {len(before)} claimed before the kill")
    assert all(n == 1 for _task, n in before), "a reminder was claimed twice in one pass"

    again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    after = claims(db_path)
    assert len(after) == PATIENTS, f"{PATIENTS - len(after)} patients never reminded"
    assert all(n == 1 for _task, n in after), "a patient was reminded twice"
    assert report["reminders"] == PATIENTS - len(before)
    # A third pass in the same minute finds nothing left to do.
    third = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert json.loads(third.stdout)["reminders"] == 0
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
