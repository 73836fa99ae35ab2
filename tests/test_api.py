"""The patient API: enrolment, idempotent responses, batches, bad input, patient isolation."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.patients import enrolment
from tests.conftest import diary, enrol_patient, new_id


def count_responses(settings, patient_id=None) -> int:
    conn = sqlite3.connect(settings.db)
    try:
        if patient_id:
            return conn.execute(
                "SELECT count(*) FROM responses WHERE patient_id = ?", (patient_id,)
            ).fetchone()[0]
        return conn.execute("SELECT count(*) FROM responses").fetchone()[0]
    finally:
        conn.close()


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    schema = client.get("/schema/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/enrol",
        "/api/v1/me",
        "/api/v1/responses/{response_id}",
        "/api/v1/responses:batch",
        "/api/v1/responses",
        "/api/v1/tasks",
        "/api/v1/questionnaires",
        "/api/v1/push/key",
        "/api/v1/push/subscriptions",
    ):
        assert path in paths, path


def test_enrol_gives_a_long_random_token_stored_hashed(services, client, settings):
    patient_id, headers = enrol_patient(services, client)
    token = headers["Authorization"].split()[1]
    assert len(token) >= 22  # >= 128 bits in url-safe base64
    conn = sqlite3.connect(settings.db)
    stored = [r[0] for r in conn.execute("SELECT token_hash FROM devices")]
    conn.close()
    assert token not in stored and len(stored) == 1
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["id"] == patient_id and me["language"] == "nl"
    assert me["timezone"] == "Europe/Amsterdam" and me["reminder_time"] == "20:00"


def test_enrolment_code_is_one_time_and_errors_say_what_to_do(services, client):
    _p, code, _ = services.db.write_sync(
        lambda conn: enrolment.create_patient(
            conn, display_name="A", pathway_id="chronic-pain", known_pathways=services.pathway_ids
        )
    )
    assert len(code.replace("-", "")) == 8 and not set(code) & set("01OIL")
    # Typed by a tired patient: lower case, spaces, no dash.
    r = client.post("/api/v1/enrol", json={"code": " " + code.lower().replace("-", " ") + " "})
    assert r.status_code == 201
    again = client.post("/api/v1/enrol", json={"code": code})
    assert again.status_code == 404
    assert "al gebruikt" in again.json()["detail"]
    unknown = client.post("/api/v1/enrol", json={"code": "ABCD-EFGH"})
    assert unknown.status_code == 404


def test_expired_code_is_410(services, client):
    _p, code, _ = services.db.write_sync(  # a code that expired a day ago
        lambda conn: enrolment.create_patient(
            conn,
            display_name="A",
            pathway_id="chronic-pain",
            known_pathways=services.pathway_ids,
            code_days=-1,
        )
    )
    r = client.post("/api/v1/enrol", json={"code": code})
    assert r.status_code == 410 and "verlopen" in r.json()["detail"]


def test_guessing_codes_is_throttled(services, client, settings):
    for _ in range(settings.enrol_max_failures):
        assert client.post("/api/v1/enrol", json={"code": "ZZZZ-ZZZZ"}).status_code == 404
    _p, code, _ = services.db.write_sync(
        lambda conn: enrolment.create_patient(
            conn, display_name="A", pathway_id="chronic-pain", known_pathways=services.pathway_ids
        )
    )
    r = client.post("/api/v1/enrol", json={"code": code})
    assert r.status_code == 429 and "Retry-After" in r.headers
    # Even the right code waits: otherwise guessing would just continue.


def test_same_uuid_same_content_is_idempotent(client, patient, settings):
    pid, headers = patient
    rid, body = new_id(), diary(pain_avg=6)
    first = client.put(f"/api/v1/responses/{rid}", json=body, headers=headers)
    assert first.status_code == 201 and first.json()["status"] == "created"
    again = client.put(f"/api/v1/responses/{rid}", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # 6 and 6.0 are the same answer.
    body2 = {**body, "answers": {**body["answers"], "pain_avg": 6.0}}
    assert client.put(f"/api/v1/responses/{rid}", json=body2, headers=headers).status_code == 200
    assert count_responses(settings, pid) == 1


def test_same_uuid_other_content_is_409_and_keeps_the_first(client, patient, settings):
    pid, headers = patient
    rid = new_id()
    client.put(f"/api/v1/responses/{rid}", json=diary(pain_avg=6), headers=headers)
    r = client.put(f"/api/v1/responses/{rid}", json=diary(pain_avg=8), headers=headers)
    assert r.status_code == 409
    assert "nieuw id" in r.json()["detail"]
    stored = client.get("/api/v1/responses", headers=headers).json()["responses"]
    assert [s["answers"]["pain_avg"] for s in stored] == [6]


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"answers": {"pain_avg": 11, "pain_worst": 7}}, "answers.pain_avg", "answer.between"),
        (
            {"answers": {"pain_avg": 5, "pain_worst": 7, "sleep_hours": 25}},
            "answers.sleep_hours",
            "answer.between",
        ),
        (
            {"answers": {"pain_avg": 5, "pain_worst": 7, "sleep_hours": 6.3}},
            "answers.sleep_hours",
            "answer.step",
        ),
        ({"answers": {"pain_avg": 5, "pain_worst": 7, "mood_x": 3}}, "answers.mood_x", "answer.unknown_item"),
        ({"answers": {"pain_worst": 7}}, "answers.pain_avg", "answer.required"),
        ({"answers": {"pain_avg": "zes", "pain_worst": 7}}, "answers.pain_avg", "answer.number"),
        ({"answers": {"pain_avg": True, "pain_worst": 7}}, "answers.pain_avg", "answer.number"),
        ({"questionnaire": "nope"}, "questionnaire", "response.questionnaire"),
        ({"version": 9}, "version", "response.version"),
        ({"local_date": "2020-01-01"}, "local_date", "date.range"),
        ({"local_date": (date.today() - timedelta(days=20)).isoformat()}, "local_date", "response.too_late"),
        ({"local_date": "29-03-2026"}, "local_date", "date.format"),
        ({"authored_at": "2026-03-29T20:15:00"}, "authored_at", "datetime.format"),
        ({"authored_at": "2099-03-29T20:15:00+02:00"}, "authored_at", "datetime.range"),
    ],
)
def test_invalid_responses_are_422_naming_the_field(client, patient, settings, change, field, code):
    """Each problem names its field, says why in Dutch (the patient's language) and has a code."""
    pid, headers = patient
    body = {**diary(), **change}
    r = client.put(f"/api/v1/responses/{new_id()}", json=body, headers=headers)
    assert r.status_code == 422, r.text
    problems = r.json()["extra"]
    assert any(p["field"] == field and p["code"] == code for p in problems), problems
    assert count_responses(settings, pid) == 0


def test_malformed_bodies_get_4xx_with_a_reason(client, patient):
    _pid, headers = patient
    url = f"/api/v1/responses/{new_id()}"
    r = client.put(url, content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"]
    r = client.put(url, json={**diary(), "version": "one"}, headers=headers)
    assert r.status_code == 400 and "version" in str(r.json())
    r = client.put("/api/v1/responses/not-a-uuid", json=diary(), headers=headers)
    assert r.status_code == 422 and r.json()["extra"][0]["field"] == "id"
    big = {**diary(), "answers": {"pain_avg": 5, "pain_worst": 5, "note": "x" * 3_000_000}}
    assert client.put(url, json=big, headers=headers).status_code == 413


def test_batch_mixes_new_duplicate_conflict_and_invalid(client, patient, settings):
    pid, headers = patient
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    dup_id, conflict_id = new_id(), new_id()
    client.put(f"/api/v1/responses/{dup_id}", json=diary(pain_avg=3), headers=headers)
    client.put(f"/api/v1/responses/{conflict_id}", json=diary(pain_avg=3), headers=headers)
    new_ids = [new_id() for _ in range(3)]
    items = [
        {"id": new_ids[i], **diary((today - timedelta(days=i + 1)).isoformat(), pain_avg=4)} for i in range(3)
    ]
    items += [
        {"id": dup_id, **diary(pain_avg=3)},
        {"id": conflict_id, **diary(pain_avg=9)},
        {"id": new_id(), **diary(pain_avg=12)},
        {"id": new_id(), "questionnaire": "diary"},
    ]
    r = client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers)
    assert r.status_code == 200, r.text
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses == ["created"] * 3 + ["duplicate", "conflict", "invalid", "invalid"]
    results = r.json()["results"]
    assert "pain_avg" in results[5]["error"]
    assert [x["id"] for x in results[:3]] == new_ids
    assert count_responses(settings, pid) == 5


def test_batch_over_the_limit_is_refused_whole(client, patient, settings):
    pid, headers = patient
    items = [{"id": new_id(), **diary()} for _ in range(501)]
    r = client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers)
    assert r.status_code == 413 and "500" in r.json()["detail"]
    assert count_responses(settings, pid) == 0


def test_an_edit_supersedes_but_history_is_kept(client, patient, services):
    pid, headers = patient
    day = diary()
    first = {**day, "answers": {"pain_avg": 4, "pain_worst": 6}}
    later = {
        **day,
        "authored_at": (datetime.fromisoformat(day["authored_at"]) + timedelta(seconds=30)).isoformat(),
        "answers": {"pain_avg": 7, "pain_worst": 8},
    }
    client.put(f"/api/v1/responses/{new_id()}", json=first, headers=headers)
    client.put(f"/api/v1/responses/{new_id()}", json=later, headers=headers)
    rows = services.db.query("SELECT answers FROM current_responses WHERE patient_id = ?", (pid,))
    assert len(rows) == 1 and '"pain_avg":7' in rows[0]["answers"]
    history = services.db.query("SELECT count(*) AS n FROM responses WHERE patient_id = ?", (pid,))
    assert history[0]["n"] == 2


def test_patient_a_cannot_reach_patient_b(client, patient, other_patient):
    a_id, a = patient
    b_id, b = other_patient
    rid = new_id()
    assert client.put(f"/api/v1/responses/{rid}", json=diary(), headers=b).status_code == 201
    # A cannot read B's responses ...
    assert client.get("/api/v1/responses", headers=a).json()["responses"] == []
    # ... and B's UUID sent by A is a conflict, never a read or an overwrite of B's data.
    r = client.put(f"/api/v1/responses/{rid}", json=diary(), headers=a)
    assert r.status_code == 409
    assert client.get("/api/v1/me", headers=a).json()["id"] == a_id
    assert [x["id"] for x in client.get("/api/v1/responses", headers=b).json()["responses"]] == [rid]


def test_unknown_or_revoked_token_is_401(client, patient, services):
    pid, headers = patient
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.delete("/api/v1/me/device", headers=headers).status_code == 204
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and "opnieuw aan" in r.json()["detail"]


def test_patch_me_changes_settings_and_refuses_bad_values(client, patient):
    _pid, headers = patient
    r = client.patch("/api/v1/me", json={"language": "en", "reminder_time": "19:30"}, headers=headers)
    assert r.status_code == 200
    assert r.json()["language"] == "en" and r.json()["reminder_time"] == "19:30"
    bad = client.patch("/api/v1/me", json={"reminder_time": "25:00"}, headers=headers)
    assert bad.status_code == 422 and "HH:MM" in bad.json()["detail"]
    bad = client.patch("/api/v1/me", json={"timezone": "Mars/Olympus"}, headers=headers)
    # The patient chose English above: refusals are in English now.
    assert bad.status_code == 422 and "not a known time zone" in bad.json()["detail"]
    assert client.get("/api/v1/me", headers=headers).json()["reminder_time"] == "19:30"


def test_responses_since_restores_history(client, patient):
    _pid, headers = patient
    client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers)
    everything = client.get("/api/v1/responses", headers=headers).json()["responses"]
    assert len(everything) == 1
    later = everything[0]["received_at"]
    assert client.get("/api/v1/responses", params={"since": later}, headers=headers).json()["responses"] == []
    r = client.get("/api/v1/responses", params={"since": "yesterday"}, headers=headers)
    assert r.status_code == 400 and "since" in r.json()["detail"]


def test_questionnaires_follow_the_pathway(client, patient):
    _pid, headers = patient
    defs = client.get("/api/v1/questionnaires", headers=headers).json()["questionnaires"]
    ids = {d["id"] for d in defs}
    assert "diary" in ids and "peg" in ids  # chronic pain: diary and weekly PEG
    diary_def = next(d for d in defs if d["id"] == "diary")
    assert [i["id"] for i in diary_def["items"]][:2] == ["pain_avg", "pain_worst"]


def test_concurrent_clients_store_each_response_exactly_once(client, services, settings):
    patients = [enrol_patient(services, client, name=f"P{i}") for i in range(4)]
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    work = []
    for _pid, headers in patients:
        for d in range(10):
            rid = new_id()
            body = diary((today - timedelta(days=d)).isoformat(), pain_avg=d % 11)
            work += [(rid, body, headers)] * 3  # every response sent three times
    errors: list[str] = []

    def send(chunk):
        for rid, body, headers in chunk:
            r = client.put(f"/api/v1/responses/{rid}", json=body, headers=headers)
            if r.status_code not in (200, 201):
                errors.append(r.text)

    threads = [threading.Thread(target=send, args=(work[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count_responses(settings) == 40


def test_a_day_sent_more_than_100_times_in_an_hour_is_refused_with_a_429_the_phone_keeps(
    client, patient, services, settings
):
    """A broken phone re-sending one day: 100 responses of it an hour are stored, the 101st
    is a 429 in Dutch naming the day and when to try again (the PWA's outbox keeps an item on
    a 429); a re-send of a stored one is still "duplicate"; other days and a batch go on."""
    from backend.diary.store import MAX_EDITS_PER_HOUR

    pid, headers = patient
    day = diary()
    ids = [new_id() for _ in range(MAX_EDITS_PER_HOUR)]
    for rid in ids:
        assert client.put(f"/api/v1/responses/{rid}", json=day, headers=headers).status_code == 201
    r = client.put(f"/api/v1/responses/{new_id()}", json=day, headers=headers)
    assert r.status_code == 429
    detail = r.json()["detail"]
    assert day["local_date"] in detail and "100 keer" in detail and "blijft op het toestel" in detail
    assert 0 < int(r.headers["retry-after"]) <= 3600
    assert count_responses(settings, pid) == MAX_EDITS_PER_HOUR
    # Sent again (the phone did not hear the answer): still "saved".
    assert client.put(f"/api/v1/responses/{ids[-1]}", json=day, headers=headers).status_code == 200
    # A batch with that day and another: the other is stored, the answer is a 429 (all kept).
    yesterday = (date.fromisoformat(day["local_date"]) - timedelta(days=1)).isoformat()
    other = {"id": new_id(), **diary(yesterday)}
    r = client.post(
        "/api/v1/responses:batch", json={"responses": [{"id": new_id(), **day}, other]}, headers=headers
    )
    assert r.status_code == 429 and "retry-after" in r.headers
    again = client.post("/api/v1/responses:batch", json={"responses": [other]}, headers=headers)
    assert again.json()["results"][0]["status"] == "duplicate"
    # An hour later the day takes edits again.
    services.db.write_sync(
        lambda conn: conn.execute(
            "UPDATE current_response_ids SET edits_until = '2000-01-01T00:00:00Z' WHERE patient_id = ?",
            (pid,),
        )
    )
    assert client.put(f"/api/v1/responses/{new_id()}", json=day, headers=headers).status_code == 201


def test_a_discharged_patients_device_hears_that_the_diary_ended_and_comes_back_on_resume(
    client, patient, services
):
    pid, headers = patient
    services.db.write_sync(lambda conn: enrolment.discharge(conn, pid, "klaar"))
    r = client.get("/api/v1/me", headers={**headers, "Accept-Language": "nl"})
    assert r.status_code == 401 and r.headers["x-pijnwacht-ended"] == "discharged"
    assert "dagboek beëindigd" in r.json()["detail"] and pid not in r.text
    stranger = client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert stranger.status_code == 401 and "x-pijnwacht-ended" not in stranger.headers
    services.db.write_sync(lambda conn: enrolment.resume(conn, pid))
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_a_device_signed_out_or_discharged_after_its_last_put_is_refused_and_nothing_stored(
    client, patient, other_patient, services, settings
):
    """The PUT route keeps the patient of a device token it has read (issue 17: no read per
    diary entry); the write job checks the token still gives that patient, so a device signed
    out or a patient discharged since is refused as before, and nothing is stored."""
    pid, headers = patient
    assert client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers).status_code == 201
    assert client.delete("/api/v1/me/device", headers=headers).status_code == 204
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(pain_avg=2), headers=headers)
    assert r.status_code == 401 and "opnieuw aan" in r.json()["detail"]
    assert count_responses(settings, pid) == 1

    other, other_headers = other_patient
    assert client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=other_headers).status_code == 201
    services.db.write_sync(lambda conn: enrolment.discharge(conn, other, "klaar"))
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(pain_avg=3), headers=other_headers)
    assert r.status_code == 401 and r.headers["x-pijnwacht-ended"] == "discharged"
    assert count_responses(settings, other) == 1
    services.db.write_sync(lambda conn: enrolment.resume(conn, other))
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(pain_avg=3), headers=other_headers)
    assert r.status_code == 201 and count_responses(settings, other) == 2


def test_a_failing_task_step_keeps_the_responses_their_alert_and_the_tasks_done_before_it(
    client, patient, settings, services, monkeypatch, caplog
):
    """A batch whose second task completion fails: every response stays stored and judged
    (the severe drowsiness opens its urgent alert), the task completed before the failure
    stays done (its response is stored), and the log names the step, not the answers."""
    from backend.tasks import store as tasks_store

    pid, headers = patient
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    days = [today - timedelta(days=1), today]
    services.db.write_sync(
        lambda conn: conn.executemany(
            "INSERT INTO tasks (patient_id, questionnaire_id, local_date, until_date, opens_at,"
            " due_at, expires_at, created_at) VALUES (?, 'diary', ?, ?, '', '', '', '')",
            [(pid, d.isoformat(), d.isoformat()) for d in days],
        )
    )
    real, calls = tasks_store.complete_task, []

    def failing_second(conn, **kw):
        calls.append(kw["local_date"])
        if len(calls) == 2:
            raise RuntimeError("pain_avg 7 se_drowsiness 3")  # a message that quotes answers
        return real(conn, **kw)

    monkeypatch.setattr(tasks_store, "complete_task", failing_second)
    items = [
        {"id": new_id(), **diary(days[0].isoformat(), pain_avg=4)},
        {"id": new_id(), **diary(days[1].isoformat(), pain_avg=7, se_drowsiness=3)},
    ]
    r = client.post("/api/v1/responses:batch", json={"responses": items}, headers=headers)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["created", "created"]
    assert count_responses(settings, pid) == 2
    tasks = services.db.query(
        "SELECT local_date, status FROM tasks WHERE patient_id = ? ORDER BY local_date", (pid,)
    )
    assert [(t["local_date"], t["status"]) for t in tasks] == [
        (days[0].isoformat(), "done"),
        (days[1].isoformat(), "open"),
    ]
    alerts = services.db.query("SELECT rule_id, severity FROM alerts WHERE patient_id = ?", (pid,))
    assert ("drowsiness_severe", "urgent") in [(a["rule_id"], a["severity"]) for a in alerts]
    logged = caplog.text
    assert "complete_tasks failed with RuntimeError" in logged and "se_drowsiness 3" not in logged
