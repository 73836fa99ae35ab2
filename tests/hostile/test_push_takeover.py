"""Whoever learns a patient's push endpoint cannot move that patient's reminders to themselves."""

from __future__ import annotations

import json

from tests.conftest import enrol_patient

SUB = {
    "endpoint": "https://[2606:4700:4700::1111]/send/phone-of-a",
    "keys": {
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg",
    },
}


def owner(services) -> tuple:
    row = services.db.query_one("SELECT patient_id, user_id, deactivated_at FROM push_subscriptions")
    return tuple(row)


def test_another_patients_endpoint_is_refused_and_stays_theirs(client, services):
    a, a_headers = enrol_patient(services, client, name="A")
    _b, b_headers = enrol_patient(services, client, name="B")
    assert client.post("/api/v1/push/subscriptions", json=SUB, headers=a_headers).status_code == 201
    r = client.post("/api/v1/push/subscriptions", json=SUB, headers=b_headers)
    assert r.status_code == 409
    assert "ander account" in r.json()["detail"]
    assert owner(services) == (a, None, None)
    # The owner subscribing again (the app does at every start) is fine.
    assert client.post("/api/v1/push/subscriptions", json=SUB, headers=a_headers).status_code == 201
    assert owner(services) == (a, None, None)


def test_a_clinician_cannot_take_a_patients_endpoint(client, services, clinician):
    a, a_headers = enrol_patient(services, client, name="A")
    assert client.post("/api/v1/push/subscriptions", json=SUB, headers=a_headers).status_code == 201
    r = client.post(
        "/clinic/push/subscriptions", data={"csrf_token": clinician, "subscription": json.dumps(SUB)}
    )
    assert r.status_code == 409
    assert owner(services) == (a, None, None)


def test_an_endpoint_its_owner_gave_up_may_be_taken_by_the_next_patient(client, services):
    _a, a_headers = enrol_patient(services, client, name="A")
    b, b_headers = enrol_patient(services, client, name="B")
    assert client.post("/api/v1/push/subscriptions", json=SUB, headers=a_headers).status_code == 201
    gone = client.request(
        "DELETE", "/api/v1/push/subscriptions", json={"endpoint": SUB["endpoint"]}, headers=a_headers
    )
    assert gone.status_code == 204
    assert client.post("/api/v1/push/subscriptions", json=SUB, headers=b_headers).status_code == 201
    assert owner(services) == (b, None, None)
