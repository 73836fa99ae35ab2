"""Less burden: remind me later (snooze), a pause of reminders, the patient's own summary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from backend.alerts.detection import Thresholds, evaluate
from backend.platform import formatting
from backend.platform.storage import parse_iso
from backend.tasks import scheduler
from backend.tasks.schedule import snooze_time
from tests.conftest import AMS, enrol_patient, new_id, response


def plan(services, pid: str) -> None:
    services.db.write_sync(
        lambda conn: scheduler.materialise(conn, pid, datetime.now(UTC), services.pathways)
    )


def diary_task(services, pid: str, day: date) -> dict:
    return services.db.query_one(
        "SELECT * FROM tasks WHERE patient_id = ? AND questionnaire_id = 'diary' AND local_date = ?",
        (pid, day.isoformat()),
    )


def test_snooze_rearms_one_reminder_within_the_window(client, services):
    pid, headers = enrol_patient(services, client)
    plan(services, pid)
    today = datetime.now(AMS).date()
    task = diary_task(services, pid, today)
    r = client.post(f"/api/v1/tasks/{task['id']}/snooze", headers=headers, json={"hours": 1})
    now = datetime.now(UTC)
    expected = snooze_time(
        now,
        1,
        expires_at=parse_iso(task["expires_at"]),
        tz=AMS,
        quiet=scheduler.quiet_hours(services.settings),
    )
    if expected is None:
        # Late at night the reminder would fall after the day's diary closes: refused, said why.
        assert r.status_code == 422 and "sluit" in r.json()["detail"]
    else:
        assert r.status_code == 200, r.text
        at = parse_iso(r.json()["remind_at"])
        assert abs((at - expected).total_seconds()) < 5
        assert diary_task(services, pid, today)["next_reminder_at"] == r.json()["remind_at"]
    # Any other number of hours, another patient's task, a task that is done: refused.
    r = client.post(f"/api/v1/tasks/{task['id']}/snooze", headers=headers, json={"hours": 2})
    assert r.status_code == 422 and r.json()["extra"][0]["field"] == "hours"
    _other, other_headers = enrol_patient(services, client, name="Dhr. Ander")
    r = client.post(f"/api/v1/tasks/{task['id']}/snooze", headers=other_headers, json={"hours": 1})
    assert r.status_code == 422
    services.db.write_sync(
        lambda conn: conn.execute("UPDATE tasks SET status = 'done' WHERE id = ?", (task["id"],))
    )
    r = client.post(f"/api/v1/tasks/{task['id']}/snooze", headers=headers, json={"hours": 1})
    assert r.status_code == 422


def test_snooze_time_stays_out_of_quiet_hours_and_inside_the_window():
    from backend.tasks.schedule import QuietHours
    from backend.tasks.schedule import parse_hhmm as t

    quiet = QuietHours(t("22:00"), t("08:00"))
    evening = datetime(2026, 12, 2, 19, 30, tzinfo=UTC)  # 20:30 in Amsterdam
    closes = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # local midnight
    assert snooze_time(evening, 1, expires_at=closes, tz=AMS, quiet=quiet) == evening + timedelta(hours=1)
    # 3 hours later is 23:30, quiet: moved to 08:00, after the diary closed - nothing to re-arm.
    assert snooze_time(evening, 3, expires_at=closes, tz=AMS, quiet=quiet) is None
    week = datetime(2026, 12, 9, 23, 0, tzinfo=UTC)
    assert snooze_time(evening, 3, expires_at=week, tz=AMS, quiet=quiet) == datetime(
        2026, 12, 3, 7, 0, tzinfo=UTC
    )


def test_a_pause_silences_reminders_until_it_ends_and_the_team_sees_it(client, services, clinician):
    pid, headers = enrol_patient(services, client)
    plan(services, pid)
    today = datetime.now(AMS).date()
    until = today + timedelta(days=6)
    r = client.put("/api/v1/me/pause", headers=headers, json={"until": until.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["paused_until"] == until.isoformat()
    rows = services.db.query(
        "SELECT local_date, next_reminder_at FROM tasks WHERE patient_id = ? AND questionnaire_id = 'diary'"
        " AND status = 'open' ORDER BY local_date",
        (pid,),
    )
    assert rows and all(r["next_reminder_at"] is None for r in rows if r["local_date"] <= until.isoformat())
    assert any(r["next_reminder_at"] for r in rows if r["local_date"] > until.isoformat())
    page = client.get(f"/clinic/patients/{pid}").text
    assert "Herinneringen gepauzeerd door de patiënt tot en met " + formatting.day(until) in page
    # At most 14 days, from today on, as a date.
    for bad in (
        (today + timedelta(days=15)).isoformat(),
        (today - timedelta(days=1)).isoformat(),
        "volgende week",
    ):
        r = client.put("/api/v1/me/pause", headers=headers, json={"until": bad})
        assert r.status_code == 422 and r.json()["extra"][0]["field"] == "until", bad
    # Ending it brings today's reminder back.
    r = client.delete("/api/v1/me/pause", headers=headers)
    assert r.status_code == 200 and r.json()["paused_until"] is None
    assert "gepauzeerd" not in client.get(f"/clinic/patients/{pid}").text


def test_the_silence_rule_waits_for_a_pause_to_end():
    today = date(2026, 12, 20)
    enrolled = date(2026, 12, 1)
    t = Thresholds()
    silent = [f.rule_id for f in evaluate([], t, today, enrolled)]
    assert "silence" in silent
    assert [f.rule_id for f in evaluate([], t, today, enrolled, paused_until=today)] == []
    # Ended yesterday: counted from its last day, one quiet day is no alert yet.
    assert [f.rule_id for f in evaluate([], t, today, enrolled, paused_until=today - timedelta(days=1))] == []
    later = today + timedelta(days=t.silence_alert_days)
    assert "silence" in [f.rule_id for f in evaluate([], t, later, enrolled, paused_until=today)]


def test_the_summary_gives_the_patients_own_scores(client, services):
    pid, headers = enrol_patient(services, client)
    now = datetime.now(AMS)
    answers = {f"phq9_{n}": 1 for n in range(1, 9)} | {"phq9_9": 0, "phq9_difficulty": 0}
    r = client.put(
        f"/api/v1/responses/{new_id()}",
        headers=headers,
        json=response("phq9", answers),
    )
    assert r.status_code == 201, r.text
    scores = client.get("/api/v1/me/summary", headers=headers).json()["scores"]
    [total] = [s for s in scores if s["questionnaire"] == "phq9" and s["value"] == 8]
    assert total["label"]["nl"] and total["band"]["nl"] and total["local_date"] == now.date().isoformat()
