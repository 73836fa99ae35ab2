"""The clinic's patient list (pages, natural sort, filters), safe enrolment (post/redirect/get),
discharge and resume (page and CLI), name correction, session expiry without losing typed text."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta

from backend.patients import enrolment
from backend.platform.formatting import name_sort_key
from backend.platform.storage import iso, utcnow
from tests.conftest import PASSWORD, csrf_of, diary, enrol_patient, login
from tests.test_clinic import enrol_form


def names_on(html: str) -> list[str]:
    return re.findall(r'<a href="/clinic/patients/p\w+">([^<]+)</a>', html)


def make(services, *names: str, pathway: str = "chronic-pain") -> list[str]:
    def create(conn):
        return [
            enrolment.create_patient(
                conn, display_name=n, pathway_id=pathway, known_pathways=services.pathway_ids
            )[0].id
            for n in names
        ]

    return services.db.write_sync(create)


def test_names_sort_as_a_dutch_team_reads_them():
    names = [
        "Mevr. van Dijk",
        "Extra 69",
        "Dhr. Meijer",
        "Extra 7",
        "Mevr. de Boer",
        "Extra 70",
        "Ézra",
        "Dhr. Aalders",
    ]
    assert sorted(names, key=name_sort_key) == [
        "Dhr. Aalders", "Mevr. de Boer", "Mevr. van Dijk", "Extra 7", "Extra 69", "Extra 70", "Ézra",
        "Dhr. Meijer",
    ]  # fmt: skip


def test_the_list_pages_instead_of_silently_stopping(client, services, clinician):
    make(services, *(f"Extra {i}" for i in range(1, 121)))
    # The one with an urgent alert would have fallen off a list cut at 200 (review finding 5).
    [urgent] = make(services, "Mevr. van Zanten")
    services.db.write_sync(
        lambda conn: conn.execute(
            "INSERT INTO alerts (patient_id, rule_id, category, severity, opened_on, opened_at, updated_at,"
            " last_evidence_on, reason) VALUES (?, 'side_effect_severe', 'side_effect', 'urgent',"
            " '2026-12-01', '2026-12-01T08:00:00Z', '2026-12-01T08:00:00Z', '2026-12-01', 'r')",
            (urgent,),
        )
    )
    first = client.get("/clinic/patients")
    assert "121 patiënten" in first.text and "Pagina 1 van 3" in first.text
    assert names_on(first.text)[:3] == ["Extra 1", "Extra 2", "Extra 3"] and len(names_on(first.text)) == 50
    last = client.get("/clinic/patients?page=3")
    assert names_on(last.text)[-1] == "Mevr. van Zanten" and len(names_on(last.text)) == 21
    assert 'rel="prev"' in last.text and 'rel="next"' not in last.text
    by_alerts = client.get("/clinic/patients?sort=open_alerts")
    assert names_on(by_alerts.text)[0] == "Mevr. van Zanten"
    # Nonsense in the address is no error: the defaults.
    assert client.get("/clinic/patients?page=abc&sort=evil&status=x").status_code == 200


def test_filters_by_pathway_and_status_and_sorts_by_last_entry(client, services, clinician):
    quiet, _ = enrol_patient(services, client, name="Dhr. Stil")
    writer, headers = enrol_patient(services, client, name="Mevr. Schrijver", pathway="opioid")
    from tests.conftest import new_id

    assert client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers).status_code == 201
    by_entry = client.get("/clinic/patients?sort=last_entry")
    assert names_on(by_entry.text) == ["Mevr. Schrijver", "Dhr. Stil"]
    assert names_on(client.get("/clinic/patients?pathway=opioid").text) == ["Mevr. Schrijver"]
    services.db.write_sync(lambda conn: enrolment.discharge(conn, quiet, "klaar"))
    assert names_on(client.get("/clinic/patients").text) == ["Mevr. Schrijver"]
    assert names_on(client.get("/clinic/patients?status=left").text) == ["Dhr. Stil"]
    everyone = client.get("/clinic/patients?status=all").text
    assert names_on(everyone) == ["Mevr. Schrijver", "Dhr. Stil"] and "afgemeld op" in everyone


def test_enrolment_reload_and_double_submit_make_one_patient(client, services, clinician, settings):
    form = {**enrol_form(client), "display_name": "Dhr. Herlaad", "pathway_id": "opioid"}
    first = client.post("/clinic/patients", data=form, follow_redirects=False)
    assert first.status_code in (302, 303)
    page = client.get(first.headers["location"])
    code = re.search(r'class="code"[^>]*>([A-Z0-9]{4}-[A-Z0-9]{4})<', page.text).group(1)
    # The browser's reload of the result page: the same page, the same code.
    assert code in client.get(first.headers["location"]).text
    # The form sent again (a double click, or "resend" after Back): no second patient.
    again = client.post("/clinic/patients", data=form)
    assert again.status_code == 200 and "al verwerkt" in again.text and code in again.text
    conn = sqlite3.connect(settings.db)
    assert (
        conn.execute("SELECT count(*) FROM patients WHERE display_name = 'Dhr. Herlaad'").fetchone()[0] == 1
    )
    conn.close()
    # A made-up token makes nothing and says so in Dutch, keeping what was typed.
    forged = client.post("/clinic/patients", data={**form, "form_token": "made-up"})
    assert forged.status_code == 422 and "verlopen" in forged.text and "Dhr. Herlaad" in forged.text


def test_discharge_stops_the_monitoring_keeps_the_data_and_resumes(client, services, clinician):
    pid, headers = enrol_patient(services, client, name="Mevr. Klaar")
    from tests.conftest import new_id

    assert client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers).status_code == 201
    page = client.get(f"/clinic/patients/{pid}/settings")
    r = client.post(
        f"/clinic/patients/{pid}/discharge",
        data={"csrf_token": csrf_of(page.text), "reason": "behandeling afgerond"},
    )
    assert r.status_code == 200 and "is afgemeld" in r.text and "behandeling afgerond" in r.text
    open_tasks = services.db.query_one(
        "SELECT count(*) AS n FROM tasks WHERE patient_id = ? AND status = 'open'", (pid,)
    )
    assert open_tasks["n"] == 0
    assert services.db.query_one("SELECT count(*) AS n FROM responses WHERE patient_id = ?", (pid,))["n"] == 1
    assert client.get("/api/v1/tasks", headers=headers).status_code == 401
    # The timeline and the list say it in the same word.
    assert "· afgemeld" in client.get(f"/clinic/patients/{pid}").text
    listed = client.get("/clinic/patients?status=left").text
    assert re.search(r"<td>afgemeld op \d+ \w+\.? \d{4} ·", listed), listed[-3000:]
    r = client.post(f"/clinic/patients/{pid}/resume", data={"csrf_token": csrf_of(r.text)})
    assert r.status_code == 200 and "wordt weer gevolgd" in r.text
    assert "· gevolgd" in client.get(f"/clinic/patients/{pid}").text
    assert client.get("/api/v1/tasks", headers=headers).status_code == 200
    assert (
        services.db.query_one(
            "SELECT count(*) AS n FROM tasks WHERE patient_id = ? AND status = 'open'", (pid,)
        )["n"]
        > 0
    )
    actions = [
        r["action"] for r in services.db.query("SELECT action FROM audit_log WHERE patient_id = ?", (pid,))
    ]
    assert "discharge" in actions and "resume" in actions


def test_a_display_name_can_be_corrected(client, services, clinician):
    [pid] = make(services, "Mevr. Datum")
    page = client.get(f"/clinic/patients/{pid}/settings")
    r = client.post(
        f"/clinic/patients/{pid}/name",
        data={"csrf_token": csrf_of(page.text), "display_name": "Mevr. de Wit"},
    )
    assert r.status_code == 200 and "De naam is nu Mevr. de Wit." in r.text
    assert names_on(client.get("/clinic/patients?q=Wit").text) == ["Mevr. de Wit"]
    bad = client.post(
        f"/clinic/patients/{pid}/name", data={"csrf_token": csrf_of(page.text), "display_name": "123456782"}
    )
    assert bad.status_code == 422 and "BSN" in bad.text


def test_an_idle_session_ends_after_the_idle_minutes(client, services, clinician, settings):
    assert client.get("/clinic/patients", follow_redirects=False).status_code == 200
    idle = iso(utcnow() - timedelta(minutes=settings.session_idle_minutes + 1))
    services.db.write_sync(lambda conn: conn.execute("UPDATE sessions SET last_seen_at = ?", (idle,)))
    r = client.get("/clinic/patients", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].endswith("/clinic/login")


def test_a_form_posted_after_expiry_comes_back_filled_in_after_sign_in(client, services, clinician):
    [pid] = make(services, "Mevr. Oud")
    settings_page = f"/clinic/patients/{pid}/settings"
    csrf = csrf_of(client.get(settings_page).text)
    services.db.write_sync(lambda conn: conn.execute("UPDATE sessions SET expires_at = ?", (iso(utcnow()),)))
    r = client.post(
        f"/clinic/patients/{pid}/name",
        data={"csrf_token": csrf, "display_name": "Mevr. Nieuw getypt", "_page": settings_page},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303) and r.headers["location"].endswith("/clinic/login")
    assert "uw sessie was verlopen" in client.get("/clinic/login").text.lower()
    back = login(client, "nurse@example.org", PASSWORD)
    assert back.headers["location"] == settings_page
    shown = client.get(settings_page).text
    assert "Uw sessie was verlopen" in shown and "Mevr. Nieuw getypt" in shown and 'id="pw-restore"' in shown
    # Held once, for its own clinician; nothing was changed meanwhile.
    assert "Mevr. Nieuw getypt" not in client.get(settings_page).text
    assert enrolment.get_patient(services.db.reader, pid).display_name == "Mevr. Oud"


def test_favicon_and_meta_description(client, clinician):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"
    assert '<meta name="description"' in client.get("/clinic/patients").text


def test_a_database_that_cannot_save_is_said_in_dutch_on_a_clinic_page(
    client, services, clinician, monkeypatch
):
    from backend.platform.storage import StorageUnavailable

    [pid] = make(services, "Mevr. Vol")
    page = client.get(f"/clinic/patients/{pid}/settings")

    async def refuse(fn):
        raise StorageUnavailable("The database cannot save right now; nothing was saved. Try again later.")

    monkeypatch.setattr(services.db, "write", refuse)
    r = client.post(
        f"/clinic/patients/{pid}/name", data={"csrf_token": csrf_of(page.text), "display_name": "X"}
    )
    assert (
        r.status_code == 503 and "De database kan nu niet opslaan" in r.text and "cannot save" not in r.text
    )
