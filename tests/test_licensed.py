"""Licensed instruments: texts the clinic supplies (PIJNWACHT_LICENSED_DIR); without them an
instrument is never scheduled, served or accepted, and the clinic is told which ones wait."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from litestar.testing import TestClient

from backend.diary.definitions import DefinitionError
from backend.diary.questionnaires import load_library
from backend.platform.settings import load_settings
from backend.system import build
from backend.tasks import scheduler
from backend.web.app import create_app
from tests.conftest import AMS, add_clinician, csrf_of, enrol_patient, login, new_id, response
from tests.licensed import QUESTIONNAIRES, write_licensed

LICENSED = {"bpi", "eq5d5l", "odi", "dn4"}


def test_without_the_folder_every_licensed_instrument_lacks_its_text():
    library = load_library(QUESTIONNAIRES)
    assert {q.id for q in library.lacking_text()} == LICENSED
    assert library.servable("phq9") and library.servable("diary")
    assert not library.servable("bpi")


def test_supplied_text_replaces_the_placeholders_and_keeps_the_published_version(tmp_path):
    library = load_library(QUESTIONNAIRES, licensed_dir=write_licensed(tmp_path, "bpi"))
    assert {q.id for q in library.lacking_text()} == LICENSED - {"bpi"}
    bpi = library.get("bpi")
    assert library.servable("bpi") and bpi.version == 1
    assert bpi.items[0].text["nl"].startswith("Licentietekst")
    # The lock still holds: the template in questionnaires/ did not change.
    assert load_library(QUESTIONNAIRES).get("bpi").items[0].text["nl"].startswith("[Tekst onder licentie")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (('id = "bpi_worst"', 'id = "bpi_worst2"'), "bpi_worst"),
        (("{ value = 1, text", "{ value = 2, text"), "items"),
        (('method = "mean"', 'method = "sum"'), "scores"),
        (
            ("Licentietekst] BPI item 3", "[Tekst onder licentie — vervangen door de kliniek] BPI item 3"),
            "text",
        ),
    ],
)
def test_a_supplied_file_may_change_texts_only(tmp_path, change, named):
    folder = write_licensed(tmp_path, "bpi")
    path = folder / "bpi.toml"
    text = path.read_text(encoding="utf-8").replace("Licentietekst BPI item 3", "Licentietekst] BPI item 3")
    old, new = change
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_library(QUESTIONNAIRES, licensed_dir=folder)
    assert f"{folder}/bpi.toml" in str(err.value) and named in str(err.value)


def test_start_up_names_what_lacks_text_and_the_patient_never_gets_it(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="backend.system"):
        services = build(settings)
    try:
        warned = " ".join(r.getMessage() for r in caplog.records)
        for qid in LICENSED:
            assert f"{qid} (" in warned
        assert "PIJNWACHT_LICENSED_DIR" in warned
        with TestClient(app=create_app(settings, services)) as client:
            pid, headers = enrol_patient(services, client)
            plan(services, pid)
            served = {
                q["id"]
                for q in client.get("/api/v1/questionnaires", headers=headers).json()["questionnaires"]
            }
            assert served and not served & LICENSED
            planned = {r["questionnaire_id"] for r in services.db.query("SELECT questionnaire_id FROM tasks")}
            assert "phq9" in planned and not planned & LICENSED
            tasks = {t["questionnaire"] for t in client.get("/api/v1/tasks", headers=headers).json()["tasks"]}
            assert "phq9" in tasks and not tasks & LICENSED
            r = client.put(
                f"/api/v1/responses/{new_id()}",
                headers=headers,
                json=response("bpi", {"bpi_worst": 5}),
            )
            assert r.status_code == 422 and r.json()["extra"][0]["field"] == "questionnaire"
            # The clinic is told which instruments wait; how to supply them only an admin is told
            # (server paths and restarts mean nothing to a nurse).
            add_clinician(services)
            add_clinician(services, "beheer@example.org", role="admin")
            login(client, "nurse@example.org")
            for path in ("/clinic/patients", "/clinic/patients/new"):
                page = client.get(path).text
                assert "Vragenlijsten zonder tekst" in page and "EQ-5D-5L" in page and "BPI-SF" in page
                assert "Vraag de beheerder van Pijnwacht" in page
                assert not any(w in page for w in ("PIJNWACHT_LICENSED_DIR", ".toml", "start de server"))
            client.post("/clinic/logout", data={"csrf_token": csrf_of(page)})
            login(client, "beheer@example.org")
            for path in ("/clinic/patients", "/clinic/patients/new"):
                page = client.get(path).text
                assert "PIJNWACHT_LICENSED_DIR" in page and "start de server opnieuw" in page
    finally:
        services.close()


def test_with_the_text_supplied_the_pathway_schedules_it(tmp_path):
    settings = load_settings(
        env={"PIJNWACHT_LICENSED_DIR": str(write_licensed(tmp_path / "licensed", "bpi", "eq5d5l"))},
        db=str(tmp_path / "p.db"),
        scheduler=False,
    )
    services = build(settings)
    try:
        with TestClient(app=create_app(settings, services)) as client:
            pid, headers = enrol_patient(services, client)
            plan(services, pid)
            tasks = {t["questionnaire"] for t in client.get("/api/v1/tasks", headers=headers).json()["tasks"]}
            assert {"bpi", "eq5d5l"} <= tasks
            [bpi] = [
                q
                for q in client.get("/api/v1/questionnaires", headers=headers).json()["questionnaires"]
                if q["id"] == "bpi"
            ]
            assert "[" not in bpi["items"][0]["text"]["nl"]
            add_clinician(services)
            login(client, "nurse@example.org")
            page = client.get("/clinic/patients").text
            assert "Vragenlijsten zonder tekst" in page and "BPI-SF" not in page
    finally:
        services.close()


def plan(services, pid: str) -> None:
    services.db.write_sync(
        lambda conn: scheduler.materialise(conn, pid, datetime.now(AMS), services.pathways)
    )


def test_the_app_says_the_team_saw_an_alert_only_after_a_clinician_acknowledged_it(
    client, clinician, services
):
    pid, headers = enrol_patient(services, client, pathway="opioid")
    me = lambda: client.get("/api/v1/me", headers=headers).json()  # noqa: E731
    # Opening the patient's page is not "the team saw your report": there is none.
    assert client.get(f"/clinic/patients/{pid}").status_code == 200
    assert me()["team_seen_at"] is None
    r = client.put(
        f"/api/v1/responses/{new_id()}",
        headers=headers,
        json=response("diary", {"pain_avg": 5, "pain_worst": 6, "se_drowsiness": 3}),
    )
    assert r.status_code == 201, r.text
    alert_id = services.db.query_one("SELECT id FROM alerts WHERE patient_id = ?", (pid,))["id"]
    assert client.get(f"/clinic/patients/{pid}").status_code == 200
    assert me()["team_seen_at"] is None
    r = client.post(
        f"/clinic/alerts/{alert_id}/acknowledge", data={"csrf_token": clinician}, follow_redirects=False
    )
    assert r.status_code == 303
    assert me()["team_seen_at"] is not None
