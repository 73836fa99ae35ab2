"""The tick's passes: escalation of unacknowledged urgent alerts, the once-a-day silence sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend import push, scheduler
from backend.storage import parse_iso
from tests.conftest import AMS, diary, new_id
from tests.pushservice import PushService


def tick(services, now):
    return scheduler.run_tick(services.db, services.settings, now, services.library,
                              services.pathways)


def test_urgent_alert_escalates_once_after_the_set_time(client, services, patient):
    pid, headers = patient
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(se_drowsiness=3), headers=headers)
    assert r.status_code == 201
    alert = services.db.query_one(
        "SELECT id, severity, opened_at FROM alerts WHERE patient_id = ? AND severity = 'urgent'",
        (pid,),
    )
    assert alert is not None  # raised before the HTTP answer returned
    opened = parse_iso(alert["opened_at"])
    minutes = services.settings.escalate_after_minutes
    assert tick(services, opened + timedelta(minutes=minutes - 5)).passes["escalate"] == 0
    assert tick(services, opened + timedelta(minutes=minutes + 1)).passes["escalate"] == 1
    assert tick(services, opened + timedelta(minutes=minutes + 2)).passes["escalate"] == 0
    row = services.db.query_one("SELECT escalated_at FROM alerts WHERE id = ?", (alert["id"],))
    assert row["escalated_at"] is not None


def test_silence_sweep_runs_once_a_day_and_nudges_after_quiet_hours(client, services, patient):
    pid, headers = patient
    today = datetime.now(AMS).date()
    # A week of diaries synced in one batch, the last one three days ago.
    items = [{"id": new_id(), **diary((today - timedelta(days=n)).isoformat(), pain_avg=4)}
             for n in range(9, 2, -1)]
    r = client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers)
    assert [x["status"] for x in r.json()["results"]] == ["created"] * 7
    with PushService() as service:
        services.db.write_sync(lambda conn: push.save_subscription(
            conn, patient_id=pid, subscription=service.new_subscription()))
    night = datetime(today.year, today.month, today.day, 2, 30, tzinfo=UTC)
    assert tick(services, night - timedelta(hours=1)).passes["nightly"] is None  # not yet
    result = tick(services, night).passes["nightly"]
    assert result["silence_nudges"] == 1
    assert tick(services, night + timedelta(hours=1)).passes["nightly"] is None  # done today
    # Three quiet days: first a nudge to the patient, no alert for the team yet.
    assert services.db.query_one(
        "SELECT 1 FROM alerts WHERE patient_id = ? AND rule_id LIKE 'silence%'", (pid,)
    ) is None
    queued = services.db.query_one("SELECT payload, next_attempt_at FROM push_queue")
    send_at = parse_iso(queued["next_attempt_at"]).astimezone(AMS)
    assert send_at.strftime("%H:%M") == services.settings.quiet_end  # not in the night
    assert "dagboek" in queued["payload"] and "pain" not in queued["payload"]
