"""`pijnwacht user disable|enable|passwd|role|list`: a leaver's access ends at once, beside a
running server; a lost password is recovered; the last admin stays; every change is audited."""

from __future__ import annotations

import json
import re
import sqlite3

import httpx

from tests.conftest import PASSWORD
from tests.server import Server


def add(server: Server, email: str, role: str = "clinician") -> None:
    r = server.run(
        "user", "add", "--email", email, "--name", email.split("@")[0], "--role", role,
        "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def signed_in(url: str, email: str, password: str = PASSWORD) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=30)
    token = re.search(r'name="login_csrf" value="([^"]+)"', c.get("/clinic/login").text).group(1)
    c.post("/clinic/login", data={"email": email, "password": password, "login_csrf": token})
    return c


def can_see_patients(c: httpx.Client) -> bool:
    return c.get("/clinic/patients", follow_redirects=False).status_code == 200


def test_disable_ends_every_session_at_once_and_enable_lets_them_sign_in_again(tmp_path):
    with Server(tmp_path / "pw.db") as server:
        add(server, "admin@example.org", "admin")
        add(server, "leaver@example.org")
        laptop, phone = (signed_in(server.url, "leaver@example.org") for _ in range(2))
        assert can_see_patients(laptop) and can_see_patients(phone)
        r = server.run("user", "disable", "--email", "leaver@example.org")
        assert r.returncode == 0, r.stderr
        assert not can_see_patients(laptop) and not can_see_patients(phone)
        assert not can_see_patients(signed_in(server.url, "leaver@example.org"))
        assert server.run("user", "enable", "--email", "leaver@example.org").returncode == 0
        assert can_see_patients(signed_in(server.url, "leaver@example.org"))


def test_passwd_recovers_a_lost_password_and_ends_the_old_sessions(tmp_path):
    with Server(tmp_path / "pw.db") as server:
        add(server, "nurse@example.org")
        old = signed_in(server.url, "nurse@example.org")
        assert can_see_patients(old)
        r = server.run(
            "user", "passwd", "--email", "nurse@example.org", "--password-stdin", input="nieuw geheim 42\n"
        )
        assert r.returncode == 0, r.stderr
        assert not can_see_patients(old)
        assert not can_see_patients(signed_in(server.url, "nurse@example.org"))
        assert can_see_patients(signed_in(server.url, "nurse@example.org", "nieuw geheim 42"))


def test_the_last_active_admin_can_be_neither_disabled_nor_demoted(tmp_path):
    server = Server(tmp_path / "pw.db")
    add(server, "admin@example.org", "admin")
    for args in (("disable",), ("role", "--role", "clinician")):
        r = server.run("user", *args[:1], "--email", "admin@example.org", *args[1:])
        assert r.returncode != 0 and "laatste actieve beheerder" in r.stderr
    add(server, "second@example.org")
    assert server.run("user", "role", "--email", "second@example.org", "--role", "admin").returncode == 0
    assert server.run("user", "disable", "--email", "admin@example.org").returncode == 0
    r = server.run("user", "list", "--json")
    listed = {u["email"]: (u["role"], u["active"]) for u in json.loads(r.stdout)}
    assert listed == {"admin@example.org": ("admin", False), "second@example.org": ("admin", True)}
    conn = sqlite3.connect(tmp_path / "pw.db")
    audited = conn.execute("SELECT action, object, role FROM audit_log ORDER BY id").fetchall()
    conn.close()
    assert audited == [
        ("user_role", "user=second@example.org role=admin", "cli"),
        ("user_disable", "user=admin@example.org role=admin", "cli"),
    ]


def test_an_unknown_account_is_named_in_the_refusal(tmp_path):
    r = Server(tmp_path / "pw.db").run("user", "disable", "--email", "nobody@example.org")
    assert r.returncode == 2 and "nobody@example.org" in r.stderr
