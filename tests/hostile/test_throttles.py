"""Guessing passwords and enrolment codes is throttled, and the throttles cannot be raced,
reset or dodged: parallel tries are counted before any is evaluated; a right sign-in clears
only its own account's count; behind a proxy the address is the one the proxy appended; and
one address guessing never locks everyone else behind it (a hospital NAT) out for long."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from backend.platform.settings import load_settings
from backend.web.app import create_app
from tests.conftest import PASSWORD, add_clinician, login


def run_parallel(app, make_requests):
    """Send requests at once to the app (one event loop, as uvicorn would): their statuses."""

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await make_requests(c)

    return asyncio.run(main())


async def login_form(c: httpx.AsyncClient) -> str:
    r = await c.get("/clinic/login")
    return re.search(r'name="login_csrf" value="([^"]+)"', r.text).group(1)


def sign_ins(app, emails_and_passwords, headers=None) -> list[int]:
    async def go(c):
        token = await login_form(c)
        tries = [
            c.post(
                "/clinic/login",
                data={"email": e, "password": p, "login_csrf": token},
                headers=headers or {},
            )
            for e, p in emails_and_passwords
        ]
        return [r.status_code for r in await asyncio.gather(*tries)]

    return run_parallel(app, go)


@pytest.fixture
def app(settings, services):
    # Out of the way for these tests: the cap on password checks at once (test_signin_stall).
    services.verify_gate = asyncio.Semaphore(1000)
    return create_app(settings, services)


def test_25_parallel_wrong_passwords_get_at_most_the_limit_evaluated(app, services, settings):
    add_clinician(services)
    statuses = sign_ins(app, [("nurse@example.org", f"wrong guess {i}") for i in range(25)])
    assert statuses.count(401) <= settings.login_max_failures
    assert statuses.count(429) >= 25 - settings.login_max_failures


def test_200_parallel_wrong_codes_get_at_most_the_limit_evaluated(app, settings):
    async def go(c):
        tries = [c.post("/api/v1/enrol", json={"code": f"ZZZZ-{i:04d}"}) for i in range(200)]
        return [r.status_code for r in await asyncio.gather(*tries)]

    statuses = run_parallel(app, go)
    assert statuses.count(404) <= settings.enrol_max_failures
    assert statuses.count(429) >= 200 - settings.enrol_max_failures


@pytest.fixture
def strict(tmp_path):
    """A small limit, so a test needs few argon2 checks: 2 per account, 8 per address."""
    return load_settings(env={}, db=str(tmp_path / "strict.db"), scheduler=False, login_max_failures=2)


def test_a_right_sign_in_does_not_wipe_the_addresss_count(strict):
    from backend.system import build

    services = build(strict, push=False)
    try:
        add_clinician(services)
        app = create_app(strict, services)
        seen = []
        for round_ in range(3):  # the review's (19 wrong + 1 right) x 3, scaled to this limit
            wrong = [(f"nobody{round_}-{i}@example.org", "wrong guess!") for i in range(7)]
            for pair in [*wrong, ("nurse@example.org", PASSWORD)]:
                seen += sign_ins(app, [pair])
    finally:
        services.close()
    assert 429 in seen


def test_an_admin_behind_the_same_address_still_gets_in_after_a_short_wait(strict):
    from backend.system import build

    services = build(strict, push=False)
    try:
        add_clinician(services, email="admin@example.org", role="admin")
        app = create_app(strict, services)
        for i in range(9):  # one past the address limit of 8, spread over unknown accounts
            sign_ins(app, [(f"guess{i}@example.org", "wrong guess!")])
        blocked = []

        async def admin(c):
            token = await login_form(c)
            data = {"email": "admin@example.org", "password": PASSWORD, "login_csrf": token}
            r = await c.post("/clinic/login", data=data)
            if r.status_code == 429:
                blocked.append(int(r.headers["retry-after"]))
                await asyncio.sleep(int(r.headers["retry-after"]) + 0.2)
                data["login_csrf"] = await login_form(c)
                r = await c.post("/clinic/login", data=data)
            return r.status_code

        started = time.monotonic()
        assert run_parallel(app, admin) in (302, 303)
        assert time.monotonic() - started < 31
        assert all(wait <= 30 for wait in blocked)
    finally:
        services.close()


@pytest.fixture
def proxied(tmp_path):
    return load_settings(env={}, db=str(tmp_path / "proxied.db"), scheduler=False, trust_proxy=True)


def test_behind_a_proxy_a_client_cannot_pick_its_own_address(proxied):
    from backend.system import build

    services = build(proxied, push=False)
    try:
        app = create_app(proxied, services)

        async def go(c):
            statuses = []
            for i in range(40):  # one at a time: only the address can throttle these
                headers = {"X-Forwarded-For": f"192.0.2.{i}, 127.0.0.1"}
                r = await c.post("/api/v1/enrol", json={"code": "ABCD-EFGH"}, headers=headers)
                statuses.append(r.status_code)
            return statuses

        statuses = run_parallel(app, go)
        assert statuses.count(404) == proxied.enrol_max_failures
        assert statuses.count(429) == 40 - proxied.enrol_max_failures
    finally:
        services.close()


def test_behind_a_proxy_the_audit_source_is_the_address_the_proxy_saw(proxied):
    from litestar.testing import TestClient

    from backend.system import build

    services = build(proxied, push=False)
    try:
        add_clinician(services)
        with TestClient(app=create_app(proxied, services)) as client:
            client.headers["X-Forwarded-For"] = "198.51.100.7, 10.0.0.1"
            assert login(client, "nurse@example.org").status_code in (302, 303)
            assert client.get("/clinic/patients").status_code == 200
        sources = {r["source"] for r in services.db.query("SELECT source FROM audit_log")}
        sessions = {r["source"] for r in services.db.query("SELECT source FROM sessions")}
    finally:
        services.close()
    assert sources == sessions == {"10.0.0.1"}
