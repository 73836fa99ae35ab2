"""One poisoned item never blocks a batch (review M2): each item is judged on its own.

Before: 499 good diaries and one with `task_id` 2**63 (or `authored_at` 0001-01-01T00:00:00+14:00)
answered 500 with nothing stored, and the PWA sent the same batch again after every 5xx: the
phone's sync was stuck for good. The PWA side (a whole-batch 4xx is halved until the item at
fault stands alone, which stays visible in the outbox) is tests/browser/test_outbox_refusals.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from backend.diary import responses
from tests.conftest import AMS, diary, enrolled_days_ago, new_id


def good_items(n: int) -> list[dict]:
    today = datetime.now(AMS).date()
    return [
        {"id": new_id(), **diary((today - timedelta(days=k % 40)).isoformat(), note=f"{k}")} for k in range(n)
    ]


POISONS = [
    {"task_id": 2**63},
    {"task_id": -5},
    {"authored_at": "0001-01-01T00:00:00+14:00", "local_date": "0001-01-01"},
    {"authored_at": "9999-12-31T23:00:00-14:00", "local_date": "9999-12-31"},
    {"local_date": "2026-W49-3"},
    {"answers": ["not", "an", "object"]},
    {"version": {"x": 1}},
]


@pytest.mark.parametrize("poison", POISONS)
def test_499_good_and_one_bad_store_the_499(client, patient, services, poison):
    pid, headers = patient
    enrolled_days_ago(services, pid, 40)
    items = good_items(499)
    bad = {**good_items(1)[0], **poison}
    items.insert(250, bad)
    r = client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers)
    assert r.status_code == 200, r.text[:500]
    results = r.json()["results"]
    assert [x["status"] for x in results].count("created") == 499
    assert results[250] == {"id": bad["id"], "status": "invalid", "error": results[250]["error"]}
    assert results[250]["error"]
    stored = services.db.query_one("SELECT count(*) AS n FROM responses WHERE patient_id = ?", (pid,))["n"]
    assert stored == 499


def test_items_that_are_not_objects_are_invalid_alone(client, patient):
    _pid, headers = patient
    good = good_items(1)[0]
    r = client.post("/api/v1/responses:batch", json={"responses": [1, "x", None, good]}, headers=headers)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["invalid", "invalid", "invalid", "created"]


def test_an_unforeseen_failure_checking_one_item_fails_only_that_item(client, patient, monkeypatch):
    """The per-item catch-all: whatever breaks while judging one item, the rest is stored."""
    _pid, headers = patient
    items = good_items(3)
    real_check = responses.check

    def check(response_id, *args, **kwargs):
        if response_id == items[1]["id"]:
            raise RuntimeError("a bug met on one item")
        return real_check(response_id, *args, **kwargs)

    monkeypatch.setattr(responses, "check", check)
    r = client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers)
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["created", "invalid", "created"]
    assert "niet opgeslagen" in r.json()["results"][1]["error"]
