"""Several pain centres on one machine: one process and one file each, sharing nothing.

Two real servers side by side, each with its own data folder (database, push keys, Litestream
configuration), port, accounts and audit trail: a patient, a code, a nurse or a record of one
centre is unknown at the other.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, diary
from tests.server import Server, redeem

pytestmark = pytest.mark.timeout(120)


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def clinic_login(url: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    form = client.get("/clinic/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
    client.post("/clinic/login", data={"email": email, "password": PASSWORD, "login_csrf": token})
    return client


def test_two_centres_side_by_side_share_nothing(tmp_path):
    a = Server(tmp_path / "centre-a" / "pijnwacht.db").start()
    b = Server(tmp_path / "centre-b" / "pijnwacht.db").start()
    try:
        assert a.port != b.port
        for server, email in ((a, "nurse@a.example"), (b, "nurse@b.example")):
            done = server.run(
                "user", "add", "--email", email, "--name", "N", "--password-stdin", input=PASSWORD
            )
            assert done.returncode == 0, done.stderr

        patient_a, code_a = a.enrol(name="Patiënt A")
        # A's code means nothing at B; A's phone is a stranger there.
        assert httpx.post(b.url + "/api/v1/enrol", json={"code": code_a}, timeout=10).status_code == 404
        _pid, phone_a = redeem(a.url, code_a)
        rid = str(uuid.uuid4())
        assert httpx.put(f"{a.url}/api/v1/responses/{rid}", json=diary(), headers=phone_a).status_code == 201
        assert httpx.get(b.url + "/api/v1/me", headers=phone_a, timeout=10).status_code == 401
        assert rows(b.db, f"SELECT 1 FROM responses WHERE id = '{rid}'") == []

        # Own push keys and own generation.
        key_a = httpx.get(a.url + "/api/v1/push/key", headers=phone_a, timeout=10).json()
        _pid_b, phone_b = b.join(name="Patiënt B")
        key_b = httpx.get(b.url + "/api/v1/push/key", headers=phone_b, timeout=10).json()
        assert key_a != key_b
        me_a = httpx.get(a.url + "/api/v1/me", headers=phone_a, timeout=10).json()
        me_b = httpx.get(b.url + "/api/v1/me", headers=phone_b, timeout=10).json()
        assert me_a["generation"] != me_b["generation"]

        # A's nurse is no account at B; her reading of A's patient is in A's audit trail only.
        nurse = clinic_login(a.url, "nurse@a.example")
        stranger = clinic_login(b.url, "nurse@a.example")
        try:
            assert nurse.get(f"/clinic/patients/{patient_a}").status_code == 200
            refused = stranger.get(f"/clinic/patients/{patient_a}", follow_redirects=False)
            assert refused.status_code in (302, 303) and refused.headers["location"].split("?")[0].endswith(
                "/clinic/login"
            )
        finally:
            nurse.close()
            stranger.close()
        assert rows(a.db, f"SELECT count(*) FROM audit_log WHERE patient_id = '{patient_a}'")[0][0] >= 1
        assert rows(b.db, f"SELECT count(*) FROM audit_log WHERE patient_id = '{patient_a}'")[0][0] == 0
        assert rows(b.db, "SELECT email FROM users") == [("nurse@b.example",)]
    finally:
        a.stop()
        b.stop()
    assert (tmp_path / "centre-a" / "vapid_private.pem").exists()
    assert (tmp_path / "centre-b" / "vapid_private.pem").exists()
