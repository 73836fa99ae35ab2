"""Shared fixtures: a real SQLite file per test, the real app, enrolled patients, clinicians."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from backend.patients import enrolment
from backend.platform import accounts
from backend.platform.settings import Settings, load_settings
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
    at = (datetime.now(AMS) - timedelta(days=days)).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    services.db.write_sync(
        lambda conn: conn.execute("UPDATE patients SET enrolled_at = ? WHERE id = ?", (at, patient_id))
    )


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
