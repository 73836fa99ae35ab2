"""Push subscriptions cannot make the server POST into the clinic's own network (SSRF).

A push endpoint is a URL the device hands us and the server later POSTs to. It must be https
to a public address, checked when subscribing and again, address by address, when
connecting (so a name that re-points to 10.0.0.5 later is still refused); redirects are
never followed; plain http to loopback only with PIJNWACHT_PUSH_ALLOW_LOOPBACK=true.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime

import pytest

from backend.platform.settings import Settings
from backend.platform.storage import open_database
from backend.push import keys as vapid
from backend.push import queue as push_queue
from backend.push import sender as push
from backend.push import subscriptions
from tests.conftest import enrol_patient, make_patient
from tests.pushservice import PushService

KEYS = {
    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
    "auth": "tBHItJI5svbpez7KI4CCXg",
}
MESSAGE = push_queue.PushMessage(title="Pijnwacht", body="Tijd voor uw dagboek", tag="t1")
NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)

INSIDE = [
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://2130706433/",  # 127.0.0.1 as one number
    "https://0x7f.1/",  # 127.0.0.1, hex and short
    "https://127.1/",
    "https://017700000001/",  # octal
    "https://localhost/",
    "https://10.0.0.5/admin",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",  # CGNAT
    "https://0.0.0.0/",
    "https://224.0.0.1/",  # multicast
    "https://240.0.0.1/",  # reserved
    "https://[::1]/",
    "https://[::]/",
    "https://[fc00::1]/",  # unique-local
    "https://[fe80::1]/",  # link-local
    "https://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "https://[::ffff:a9fe:a9fe]/",  # IPv4-mapped metadata address
    "https://[::10.0.0.5]/",  # IPv4-compatible
    "https://[64:ff9b::a00:5]/",  # NAT64 of 10.0.0.5
    "https://[2002:a00:5::1]/",  # 6to4 of 10.0.0.5
    "http://127.0.0.1:6379/",  # plain http to loopback, without the test setting
    "http://push.example.org/",
]


def subscription(endpoint: str) -> dict:
    return {"endpoint": endpoint, "keys": KEYS}


@pytest.mark.parametrize("endpoint", INSIDE)
def test_an_endpoint_inside_a_private_network_is_refused_on_subscribing(client, services, endpoint):
    _pid, headers = enrol_patient(services, client)
    r = client.post("/api/v1/push/subscriptions", json=subscription(endpoint), headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("endpoint")
    assert services.db.query_one("SELECT count(*) AS n FROM push_subscriptions")["n"] == 0


def test_the_clinic_route_refuses_the_same(client, services, clinician):
    r = client.post(
        "/clinic/push/subscriptions",
        data={"csrf_token": clinician, "subscription": json.dumps(subscription("https://2130706433/"))},
    )
    assert r.status_code == 422
    assert services.db.query_one("SELECT count(*) AS n FROM push_subscriptions")["n"] == 0


def test_a_public_https_endpoint_is_accepted(client, services):
    _pid, headers = enrol_patient(services, client)
    public = "https://[2606:4700:4700::1111]/send/abc"
    r = client.post("/api/v1/push/subscriptions", json=subscription(public), headers=headers)
    assert r.status_code == 201, r.text


@pytest.fixture
def fake_dns(monkeypatch):
    """Names under .test resolve to what the test says (the resolver aiohttp and the
    subscribe check use is socket.getaddrinfo, run in a thread)."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_that_resolves_into_the_network_is_refused_on_subscribing(client, services, fake_dns):
    fake_dns["push.rebind.test"] = "10.0.0.5"
    _pid, headers = enrol_patient(services, client)
    r = client.post(
        "/api/v1/push/subscriptions", json=subscription("https://push.rebind.test/x"), headers=headers
    )
    assert r.status_code == 422, r.text
    assert "openbaar" in r.json()["detail"]


@pytest.fixture
def listener():
    """A TCP listener on loopback counting connections: did the server reach inside?"""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[int] = []

    def run() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    yield sock.getsockname()[1], accepted
    sock.close()


def _stored(tmp_path, endpoint: str, keys: dict = KEYS):
    """A subscription as an older version (or a direct write) left it: not checked."""
    db = open_database(tmp_path / "pijnwacht.db")
    db.write_sync(
        lambda c: (
            make_patient(c, "p1", name="P", enrolled_at="2026-12-01T09:00:00Z"),
            c.execute(
                "INSERT INTO push_subscriptions (patient_id, endpoint, p256dh, auth, created_at)"
                " VALUES ('p1', ?, ?, ?, '2026-12-01T09:00:00Z')",
                (endpoint, keys["p256dh"], keys["auth"]),
            ),
            push_queue.enqueue(c, patient_id="p1", message=MESSAGE, now=NOW),
        )
    )
    return db


def test_a_name_that_re_points_inside_after_subscribing_is_not_connected_to(tmp_path, fake_dns, listener):
    """DNS rebinding: the check runs on the address actually connected to."""
    port, accepted = listener
    fake_dns["push.rebind.test"] = "127.0.0.1"
    db = _stored(tmp_path, f"https://push.rebind.test:{port}/x")
    keys = vapid.ensure_vapid_keys(tmp_path)
    report = push.flush_sync(db, Settings(push_timeout_seconds=2.0), keys, NOW)
    db.close()
    assert accepted == []
    assert report.dead == 1 and report.retried == 0


def test_a_stored_loopback_http_endpoint_gets_nothing_without_the_test_setting(tmp_path):
    with PushService() as service:
        sub = service.new_subscription()
        db = _stored(tmp_path, sub["endpoint"], sub["keys"])
        keys = vapid.ensure_vapid_keys(tmp_path)
        report = push.flush_sync(db, Settings(push_timeout_seconds=2.0), keys, NOW)
        db.close()
        assert service.requests(sub["endpoint"]) == []
    assert report.dead == 1


def test_a_redirect_from_the_push_service_is_not_followed(tmp_path):
    with PushService() as service:
        keys = vapid.ensure_vapid_keys(tmp_path)
        first, inside = service.new_subscription(keys.public_key_b64), service.new_subscription()
        service.script(first["endpoint"], [(307, {"Location": inside["endpoint"]})])
        db = open_database(tmp_path / "pijnwacht.db")
        settings = Settings(push_timeout_seconds=2.0, push_allow_loopback=True)
        db.write_sync(
            lambda c: (
                make_patient(c, "p1", name="P", enrolled_at="2026-12-01T09:00:00Z"),
                subscriptions.save_subscription(c, patient_id="p1", subscription=first, allow_loopback=True),
                push_queue.enqueue(c, patient_id="p1", message=MESSAGE, now=NOW),
            )
        )
        report = push.flush_sync(db, settings, keys, NOW)
        status = db.query_one("SELECT last_status FROM push_queue")["last_status"]
        db.close()
        assert service.requests(inside["endpoint"]) == []
        assert len(service.requests(first["endpoint"])) == 1
    assert (report.sent, status) == (0, "307")
