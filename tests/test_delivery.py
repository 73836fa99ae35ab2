"""Reminders you can see arrive: receipts from the phone, counts per week, and the flag when
reminders stop arriving."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from backend.tasks import delivery
from backend.tasks.delivery import Receipt, Reminder
from tests.conftest import enrol_patient


def reminder(day: int, task: int, devices: int = 1, answered: bool = False) -> Reminder:
    at = datetime(2026, 12, day, 19, 0, tzinfo=UTC)
    return Reminder(task_id=task, sent_at=at, sent_on=at.date(), devices=devices, answered=answered)


def shown(task: int, day: int, event: str = "shown") -> Receipt:
    return Receipt(task_id=task, event=event, at=datetime(2026, 12, day, 19, 1, tzinfo=UTC))


def test_counts_per_week_and_the_day_reminders_stopped_arriving():
    reminders = [reminder(d, d, answered=d < 3) for d in range(1, 9)]
    receipts = [shown(1, 1), shown(1, 1, "opened"), shown(2, 2)]
    weeks = delivery.weekly(reminders, receipts)
    # 2026-12-07 is a Monday: days 1-6 in the week of 30 nov., 7-8 in the next.
    assert [(w.monday, w.sent, w.shown, w.opened, w.answered) for w in weeks] == [
        (date(2026, 12, 7), 2, 0, 0, 0),
        (date(2026, 11, 30), 6, 2, 1, 2),
    ]
    assert delivery.stopped_since(reminders, receipts) == date(2026, 12, 3)
    # A shown reminder after the gap: arriving again.
    assert delivery.stopped_since(reminders, [*receipts, shown(8, 8)]) is None
    # Two missed are no pattern yet; no device to go to counts as not arriving.
    assert delivery.stopped_since(reminders[:4], receipts) is None
    nobody = [reminder(d, d, devices=0) for d in range(10, 13)]
    assert delivery.stopped_since(nobody, [shown(10, 10)]) == date(2026, 12, 10)


def test_a_receipt_is_the_patients_own_and_shows_on_the_clinic_page(client, services, clinician):
    from backend.tasks import scheduler

    pid, headers = enrol_patient(services, client)
    services.db.write_sync(
        lambda conn: scheduler.materialise(conn, pid, datetime.now(UTC), services.pathways)
    )
    task = services.db.query_one("SELECT id FROM tasks WHERE patient_id = ? ORDER BY id LIMIT 1", (pid,))[
        "id"
    ]
    now = datetime.now(UTC)
    for n in range(4):
        at = (now - timedelta(days=4 - n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        services.db.write_sync(
            lambda conn, at=at: conn.execute(
                "INSERT INTO reminder_log (task_id, patient_id, planned_at, claimed_at, pushes)"
                " VALUES (?, ?, ?, ?, 1)",
                (task, pid, at, at),
            )
        )
    page = client.get(f"/clinic/patients/{pid}").text
    assert "Herinneringen per week" in page and "Herinneringen komen niet aan sinds" in page
    r = client.post("/api/v1/push/receipts", headers=headers, json={"tag": f"task-{task}", "event": "shown"})
    assert r.status_code == 204, r.text
    page = client.get(f"/clinic/patients/{pid}").text
    assert "Herinneringen komen niet aan sinds" not in page
    # Someone else's task, a tag that is no task, an event that is not ours: refused, nothing stored.
    _other, other = enrol_patient(services, client, name="Dhr. Ander")
    for body in (
        {"tag": f"task-{task}", "event": "shown"},
        {"tag": "escalation", "event": "shown"},
        {"tag": "task-99999999999999999999", "event": "opened"},
    ):
        r = client.post("/api/v1/push/receipts", headers=other, json=body)
        assert r.status_code == 422 and r.json()["extra"][0]["field"] == "tag", body
    r = client.post(
        "/api/v1/push/receipts", headers=headers, json={"tag": f"task-{task}", "event": "clicked"}
    )
    assert r.status_code in (400, 422)
    assert services.db.query_one("SELECT count(*) AS n FROM push_receipts")["n"] == 1


def test_the_patient_page_reads_only_that_patients_reminders(services):
    """The clinic's patient page asks for one patient's recent reminders: an index range on the
    patient, never a walk through every patient's reminders of the period (at 100 000 patients
    that is 100 000 rows an evening)."""
    from backend.platform.storage import connect
    from backend.tasks import store

    conn = connect(services.settings.db)
    asked: list[str] = []
    conn.set_trace_callback(asked.append)
    store.reminders_since(conn, "p", "2026-12-01")
    conn.set_trace_callback(None)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN " + asked[-1].replace("'p'", "?").replace("'2026-12-01'", "?"),
        ("p", "2026-12-01"),
    )
    steps = " | ".join(row[3] for row in plan)
    assert "reminder_log_patient (patient_id=? AND claimed_at>?)" in steps, steps
