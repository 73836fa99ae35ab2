"""Silence means not heard from: judged by when a diary last reached the server, not its date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.alerts import lifecycle as alerts
from backend.patients import store as patients_store
from backend.tools.replay import replay
from tests.conftest import AMS, diary, new_id
from tests.test_replay import START, diary_rows, history


def enrolled_days_ago(services, pid: str, days: int) -> None:
    at = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    services.db.write_sync(lambda conn: patients_store.set_enrolled_at(conn, pid, at))


def silence_alerts(services, pid: str) -> list:
    return services.db.query(
        "SELECT status, closed_at, reason FROM alerts WHERE patient_id = ? AND rule_id = 'silence'", (pid,)
    )


def test_a_backlog_sent_one_entry_at_a_time_raises_no_silence_alert(client, services, patient):
    pid, headers = patient
    enrolled_days_ago(services, pid, 14)
    today = datetime.now(AMS).date()
    for n in range(12, -1, -1):  # the phone was offline for 12 days; now it catches up, PUT by PUT
        r = client.put(
            f"/api/v1/responses/{new_id()}",
            json=diary((today - timedelta(days=n)).isoformat()),
            headers=headers,
        )
        assert r.status_code == 201, r.text
        assert silence_alerts(services, pid) == [], f"silence alert after the entry of {n} days ago"


def test_a_silence_alert_closes_as_soon_as_the_diary_resumes(client, services, patient):
    pid, headers = patient
    enrolled_days_ago(services, pid, 10)
    now = datetime.now(UTC)
    assert alerts.sweep(services.db, services.settings, now, services.library, services.pathways) == 1
    [alert] = silence_alerts(services, pid)
    assert alert["status"] == "open" and "nog geen dagboek" in alert["reason"]
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers)
    assert r.status_code == 201
    [alert] = silence_alerts(services, pid)
    assert alert["status"] == "closed" and alert["closed_at"] is not None


def test_a_backlog_received_and_then_quiet_counts_from_its_receipt(client, services, patient):
    pid, headers = patient
    enrolled_days_ago(services, pid, 20)
    today = datetime.now(AMS).date()
    items = [{"id": new_id(), **diary((today - timedelta(days=n)).isoformat())} for n in range(16, 12, -1)]
    assert (
        client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers).status_code == 200
    )
    received = (datetime.now(UTC) - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    services.db.write_sync(lambda conn: conn.execute("UPDATE responses SET received_at = ?", (received,)))
    assert (
        alerts.sweep(services.db, services.settings, datetime.now(UTC), services.library, services.pathways)
        == 1
    )
    [alert] = silence_alerts(services, pid)
    assert alert["reason"].startswith("6 dagen stil (laatste dagboek ")
    assert ", ontvangen " in alert["reason"]


def test_replay_counts_silence_from_the_day_the_last_entry_was_written():
    # Diary on days 0-9 as they came; the entry for day 9 written only on day 13, then nothing.
    rows = history("a", 9) + diary_rows(
        "a",
        START + timedelta(days=9),
        {"pain_avg": 4},
        authored=f"{START + timedelta(days=13)}T09:00:00+01:00",
    )
    found = [a for a in replay(rows, None, START + timedelta(days=25), None, None) if a.rule_id == "silence"]
    # Five days after it was written (day 18), not five days after its date (day 14).
    assert [a.opened_on for a in found] == [START + timedelta(days=18)]
