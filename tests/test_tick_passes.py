"""The tick's passes: escalation of unacknowledged urgent alerts, the once-a-day silence sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.patients import store as patients_store
from backend.platform.settings import Settings, load_settings
from backend.platform.storage import parse_iso
from backend.tasks.tick import run_tick
from tests.conftest import AMS, diary, new_id


@pytest.fixture
def settings(tmp_path) -> Settings:
    # The push stand-in of the escalation test listens on plain http on loopback.
    return load_settings(env={}, db=str(tmp_path / "pijnwacht.db"), scheduler=False, push_allow_loopback=True)


def tick(services, now):
    return run_tick(services.db, services.settings, now, services.library, services.pathways)


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


def test_silence_sweep_runs_once_a_day_and_tells_the_team_after_five_days(client, services, patient):
    pid, headers = patient
    today = datetime.now(AMS).date()
    # A week of diaries synced in one batch, the last one six days ago, heard of since.
    items = [
        {"id": new_id(), **diary((today - timedelta(days=n)).isoformat(), pain_avg=4)}
        for n in range(12, 5, -1)
    ]
    r = client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers)
    assert [x["status"] for x in r.json()["results"]] == ["created"] * 7
    six_days_ago = (datetime.now(UTC) - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    services.db.write_sync(lambda conn: conn.execute("UPDATE responses SET received_at = ?", (six_days_ago,)))
    night = datetime(today.year, today.month, today.day, 2, 30, tzinfo=UTC)
    assert tick(services, night - timedelta(hours=1)).passes["nightly"] is None  # not yet
    assert tick(services, night).passes["nightly"]["alerts_opened"] == 1
    assert tick(services, night + timedelta(hours=1)).passes["nightly"] is None  # done today
    silence = services.db.query_one(
        "SELECT category, severity, reason FROM alerts WHERE patient_id = ? AND rule_id = 'silence'",
        (pid,),
    )
    assert silence["category"] == "adherence" and "stil" in silence["reason"]
    # No extra push: the evening diary reminder is the patient's reminder.
    assert services.db.query_one("SELECT count(*) AS n FROM push_queue")["n"] == 0


def test_a_clinician_who_opted_in_gets_a_push_without_patient_data_on_escalation(
    client, services, clinician, patient
):
    import json

    from backend.push import sender as push
    from tests.pushservice import PushService

    pid, headers = patient
    with PushService() as service:
        sub = service.new_subscription()
        assert client.get("/clinic/push/key").json()["key"] == services.vapid.public_key_b64
        r = client.post(
            "/clinic/push/subscriptions", data={"csrf_token": clinician, "subscription": json.dumps(sub)}
        )
        assert r.status_code == 201
        bad = client.post("/clinic/push/subscriptions", data={"csrf_token": clinician, "subscription": "{}"})
        assert bad.status_code == 422
        client.put(f"/api/v1/responses/{new_id()}", json=diary(se_drowsiness=3), headers=headers)
        opened = parse_iso(
            services.db.query_one("SELECT opened_at FROM alerts WHERE severity = 'urgent'")["opened_at"]
        )
        later = opened + timedelta(minutes=services.settings.escalate_after_minutes + 1)
        assert tick(services, later).passes["escalate"] == 1
        push.flush_sync(services.db, services.settings, services.vapid, later)
        [received] = service.received(sub["endpoint"])
    assert received["payload"]["url"] == "/clinic/inbox"
    text = json.dumps(received["payload"])
    assert "Jansen" not in text and pid not in text and "sufheid" not in text


def test_a_cron_tick_in_a_fresh_process_runs_every_pass(client, services, patient):
    """`pijnwacht tick` from cron at 02:30 UTC, a process of its own: the silence sweep and the
    escalation run as in the server's tick (they used to be registered only by the server)."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import enrol_patient

    drowsy, headers = patient
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(se_drowsiness=3), headers=headers)
    assert r.status_code == 201
    silent, _ = enrol_patient(services, client, name="Dhr. Stil")
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    services.db.write_sync(lambda conn: patients_store.set_enrolled_at(conn, silent, ten_days_ago))
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    env = {**os.environ, "PIJNWACHT_DB": services.settings.db, "PIJNWACHT_SCHEDULER": "false"}
    cmd = [sys.executable, "-m", "backend.cli", "tick", "--now", f"{tomorrow}T02:30:00Z"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["passes"] == {"escalate": 1, "nightly": {"alerts_opened": 1}}
    rows = services.db.query("SELECT patient_id, rule_id, escalated_at FROM alerts ORDER BY id")
    assert [(r["patient_id"], r["rule_id"], r["escalated_at"] is not None) for r in rows] == [
        (drowsy, "drowsiness_severe", True),
        (silent, "silence", False),
    ]
