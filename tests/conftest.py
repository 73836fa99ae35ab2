"""Shared fixtures: a real SQLite file per test, the real app, enrolled patients, clinicians."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from backend.diary import responses
from backend.diary import store as diary_store
from backend.diary.questionnaires import load_library
from backend.patients import enrolment
from backend.patients import store as patients_store
from backend.patients.pathways import load_pathways
from backend.patients.store import Patient
from backend.platform import accounts
from backend.platform.settings import PROJECT_ROOT, Settings, load_settings
from backend.system import System, build
from backend.web.app import create_app

PASSWORD = "correct horse battery"
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return load_settings(env={}, db=str(tmp_path / "pijnwacht.db"), scheduler=False)


@pytest.fixture
def services(settings) -> Iterator[System]:
    svc = build(settings)
    yield svc
    svc.close()


@pytest.fixture
def client(settings, services) -> Iterator[TestClient]:
    app = create_app(settings, services)
    with TestClient(app=app) as c:
        yield c


@functools.cache
def shipped_pathways() -> frozenset[str]:
    """The ids of the pathways that ship in questionnaires/ (what the server knows)."""
    folder = PROJECT_ROOT / "questionnaires"
    return frozenset(load_pathways(folder, load_library(folder)))


def make_patient(
    conn: sqlite3.Connection,
    patient_id: str | None = None,
    *,
    name: str = "Mevr. Jansen",
    pathway: str = "chronic-pain",
    enrolled_at: datetime | str | None = None,
    anchor: date | str | None = None,
    timezone: str = "Europe/Amsterdam",
    reminder_time: str = "20:00",
    language: str = "nl",
    thresholds: dict | None = None,
) -> Patient:
    """The one way tests make a patient: enrolment as the clinic does it (its checks, the
    patients store), as of `enrolled_at` (default now), with `patient_id` if the test names
    one, and detection overrides stored as the clinic stores them (`thresholds`)."""
    if isinstance(enrolled_at, str):
        enrolled_at = datetime.fromisoformat(enrolled_at.replace("Z", "+00:00"))
    if isinstance(anchor, str):
        anchor = date.fromisoformat(anchor)
    patient, _code, _expires = enrolment.create_patient(
        conn,
        display_name=name,
        pathway_id=pathway,
        known_pathways=shipped_pathways(),
        timezone=timezone,
        anchor_date=anchor,
        reminder_time=reminder_time,
        language=language,
        now=enrolled_at.astimezone(UTC) if enrolled_at else None,
        patient_id=patient_id,
    )
    if thresholds:
        patients_store.set_thresholds(conn, patient.id, json.dumps(thresholds, sort_keys=True))
        patient = patients_store.get(conn, patient.id)
        assert patient is not None
    return patient


def store_response(
    conn: sqlite3.Connection,
    patient_id: str,
    day: date,
    answers: dict,
    *,
    questionnaire: str = "diary",
    version: int = 1,
    at: str | None = None,
    scores: dict | None = None,
    received_at: str | None = None,
    response_id: str | None = None,
) -> str:
    """Store one response as the diary store stores what intake checked (no check, no alert
    evaluation: the test decides what runs after), written `at` (UTC ISO, default 19:00 UTC
    on its day); its id."""
    at = at or f"{day.isoformat()}T19:00:00Z"
    rid = response_id or str(uuid.uuid4())
    checked = responses.Checked(
        id=rid,
        questionnaire=questionnaire,
        version=version,
        authored_at=at,
        authored_at_client=at,
        local_date=day.isoformat(),
        task_id=None,
        answers=answers,
        scores=scores or {},
        content_hash=rid,
    )
    assert diary_store.add(conn, patient_id, [checked], received_at or at, max_edits=0) == ["created"]
    return rid


def enrol_patient(
    services: System, client: TestClient, name: str = "Mevr. Jansen", pathway: str = "chronic-pain"
) -> tuple[str, dict[str, str]]:
    """Enrol a patient and redeem the code: (patient id, Authorization headers)."""
    _patient, code, _ = services.db.write_sync(
        lambda conn: enrolment.create_patient(
            conn, display_name=name, pathway_id=pathway, known_pathways=services.pathway_ids
        )
    )
    r = client.post("/api/v1/enrol", json={"code": code})
    assert r.status_code == 201, r.text
    body = r.json()
    return body["patient"]["id"], {"Authorization": f"Bearer {body['token']}"}


@pytest.fixture
def patient(services, client) -> tuple[str, dict[str, str]]:
    return enrol_patient(services, client)


@pytest.fixture
def other_patient(services, client) -> tuple[str, dict[str, str]]:
    return enrol_patient(services, client, name="Dhr. de Vries")


def response(questionnaire: str, answers: dict, day: str | None = None, version: int = 1) -> dict:
    """A response as the PWA sends it, written at 20:15 Amsterdam time on its day (or a
    minute ago, for today before 20:15)."""
    local = day or datetime.now(AMS).date().isoformat()
    authored = datetime.fromisoformat(f"{local}T20:15:00").replace(tzinfo=AMS)
    if authored > datetime.now(AMS):
        authored = datetime.now(AMS) - timedelta(minutes=1)
    return {
        "questionnaire": questionnaire,
        "version": version,
        "authored_at": authored.isoformat(),
        "local_date": local,
        "task_id": None,
        "answers": answers,
    }


def diary(day: str | None = None, **answers) -> dict:
    """A diary response as the PWA sends it (see `response`)."""
    return response("diary", {"pain_avg": 5, "pain_worst": 7, "sleep_hours": 6.5} | answers, day)


def enrolled_days_ago(services: System, patient_id: str, days: int) -> None:
    """Move a patient's enrolment back: the date rule takes diary days from 30 days before it."""
    at = (datetime.now(AMS) - timedelta(days=days)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    services.db.write_sync(lambda conn: patients_store.set_enrolled_at(conn, patient_id, at))


def new_id() -> str:
    return str(uuid.uuid4())


def add_clinician(
    services: System, email: str = "nurse@example.org", role: str = "clinician", password: str = PASSWORD
):
    return services.db.write_sync(
        lambda conn: accounts.add_user(
            conn, email=email, name=email.split("@")[0], role=role, password=password
        )
    )


def login(client: TestClient, email: str, password: str = PASSWORD):
    form = client.get("/clinic/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
    return client.post(
        "/clinic/login",
        data={"email": email, "password": password, "login_csrf": token},
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def clinician(services, client):
    """A signed-in clinician: the client carries the session; returns the page CSRF token."""
    add_clinician(services)
    r = login(client, "nurse@example.org")
    assert r.status_code in (302, 303), r.text
    page = client.get("/clinic/patients")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)
