"""The clinic's patient list (pages, natural sort, filters), safe enrolment (post/redirect/get),
discharge and resume (page and CLI), name correction, session expiry without losing typed text."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from html import unescape

from backend.patients import enrolment
from backend.platform.formatting import name_sort_key
from backend.platform.storage import iso, utcnow
from tests.conftest import PASSWORD, csrf_of, diary, enrol_patient, login
from tests.test_clinic import enrol_form


def names_on(html: str) -> list[str]:
    return re.findall(r'<a href="/clinic/patients/p\w+">([^<]+)</a>', html)


def link(html: str, rel: str) -> str:
    """The address of the pager's "Vorige" (prev) or "Volgende" (next) link."""
    return unescape(re.search(rf'<a href="([^"]+)" rel="{rel}">', html).group(1))


def every_page(client, address: str) -> list[str]:
    """The names on every page of the list, following "Volgende" from the first page."""
    names, html = [], client.get(address).text
    while True:
        names += names_on(html)
        if 'rel="next"' not in html:
            return names
        html = client.get(link(html, "next")).text


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
    assert 'rel="prev"' not in first.text
    second = client.get(link(first.text, "next"))
    assert "Pagina 2 van 3" in second.text and names_on(second.text)[0] == "Extra 51"
    last = client.get(link(second.text, "next"))
    assert "Pagina 3 van 3" in last.text
    assert names_on(last.text)[-1] == "Mevr. van Zanten" and len(names_on(last.text)) == 21
    assert 'rel="prev"' in last.text and 'rel="next"' not in last.text
    back = client.get(link(last.text, "prev"))
    assert "Pagina 2 van 3" in back.text and names_on(back.text) == names_on(second.text)
    assert names_on(client.get(link(back.text, "prev")).text) == names_on(first.text)
    by_alerts = client.get("/clinic/patients?sort=open_alerts")
    assert names_on(by_alerts.text)[0] == "Mevr. van Zanten"
    # Nonsense in the address is no error: the defaults.
    assert client.get("/clinic/patients?page=abc&sort=evil&status=x").status_code == 200


def _answer(conn, patient_id: str, day: str, n: int) -> None:
    conn.execute(
        "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version, authored_at,"
        " authored_at_client, local_date, answers, content_hash, received_at)"
        " VALUES (?1, ?2, 'diary', 1, ?3, ?3, ?4, '{}', 'h', ?3)",
        (f"r-{patient_id}-{n}", patient_id, f"{day}T18:00:00Z", day),
    )


def _alert(conn, patient_id: str, rule: str) -> int:
    return conn.execute(
        "INSERT INTO alerts (patient_id, rule_id, category, severity, opened_on, opened_at, updated_at,"
        " last_evidence_on, reason) VALUES (?, ?, 'pain', 'routine', '2026-12-01', '2026-12-01T08:00:00Z',"
        " '2026-12-01T08:00:00Z', '2026-12-01', 'r')",
        (patient_id, rule),
    ).lastrowid


def test_every_sort_pages_along_its_key_through_ties_and_both_statuses(client, services, clinician):
    """Keyset pages (issue 15): walking "Volgende" gives every patient once, in the order the
    sort defines, counted from the answers and alerts themselves; the stored last entry and
    open alerts follow every write (a later answer, an earlier one, an alert resolved)."""
    names = [f"Extra {i}" for i in range(1, 118)] + ["Mevr. de Boer", "Dhr. Aalders", "Ézra"]
    ids = make(services, *names)

    def fill(conn):
        for k, pid in enumerate(ids):
            if k % 3:  # many equal last entries and alert counts: ties across page edges
                _answer(conn, pid, f"2026-11-{10 + k % 5:02d}", 1)
                _answer(conn, pid, "2026-10-01", 2)  # an earlier day, written later
            for r in range(k % 4 if k % 2 else 0):
                live = _alert(conn, pid, f"rule{r}")
                if r == 2:
                    conn.execute("UPDATE alerts SET status = 'resolved' WHERE id = ?", (live,))
        for pid in ids[::7]:
            enrolment.discharge(conn, pid, "klaar")

    services.db.write_sync(fill)

    def expected(status: str, sort: str) -> list[str]:
        conn = services.db.reader
        rows = conn.execute(
            "SELECT p.id, p.display_name, p.status,"
            " (SELECT coalesce(max(local_date), '') FROM responses r WHERE r.patient_id = p.id) AS last,"
            " (SELECT count(*) FROM alerts a WHERE a.patient_id = p.id"
            "  AND a.status IN ('open', 'acknowledged')) AS live FROM patients p"
        ).fetchall()
        rows = [r for r in rows if status == "all" or r["status"] == status]
        rows.sort(key=lambda r: (name_sort_key(r["display_name"]), r["id"]))
        if sort != "name":
            rows.sort(key=lambda r: r["last"] if sort == "last_entry" else r["live"], reverse=True)
        return [r["display_name"] for r in rows]

    for status in ("active", "left", "all"):
        for sort in ("name", "last_entry", "open_alerts"):
            want = expected(status, sort)
            address = f"/clinic/patients?status={status}&sort={sort}"
            assert every_page(client, address) == want, (status, sort)
            # The count, kept at write time per pathway and status, is the list's length.
            assert f"{len(want)} patiënten" in client.get(address).text
    by_name = every_page(client, "/clinic/patients?status=all")
    assert by_name[:3] == ["Dhr. Aalders", "Mevr. de Boer", "Extra 1"] and by_name[-1] == "Ézra"
    assert by_name.index("Extra 7") < by_name.index("Extra 69")
    # The pathway filter pages the same way; an unknown key shows the first page.
    assert every_page(client, "/clinic/patients?pathway=chronic-pain&sort=open_alerts") == expected(
        "active", "open_alerts"
    )
    assert "Pagina 1 van" in client.get("/clinic/patients?after=nobody&page=9").text


def test_the_list_columns_are_filled_for_the_patients_there_were_before(tmp_path):
    """The migration that stores last entry and open alerts fills them for existing patients."""
    from backend.platform import migrations
    from backend.platform.storage import connect

    path = tmp_path / "old.db"
    conn = connect(path)
    for _name, step in migrations.MIGRATIONS.values():
        if step.__name__ == "patient_list_columns":
            break
        conn.execute("BEGIN IMMEDIATE")
        step(conn)
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    for pid in ("p1", "p2"):
        conn.execute(
            "INSERT INTO patients (id, display_name, pathway_id, anchor_date, enrolled_at)"
            " VALUES (?, ?, 'chronic-pain', '2026-11-01', '2026-11-01T09:00:00Z')",
            (pid, pid),
        )
    _answer(conn, "p1", "2026-11-20", 1)
    _answer(conn, "p1", "2026-11-03", 2)
    _alert(conn, "p1", "a")
    conn.execute("UPDATE alerts SET status = 'closed' WHERE id = ?", (_alert(conn, "p1", "b"),))
    conn.execute("COMMIT")
    conn.execute("CREATE TABLE _migrations (number INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    conn.executemany(
        "INSERT INTO _migrations VALUES (?, ?, '2026-12-01T09:00:00Z')",
        [(n, name) for n, (name, step) in migrations.MIGRATIONS.items() if name != "patient_list_columns"],
    )
    assert migrations.apply(conn)[-1].endswith("patient_list_columns")
    got = conn.execute("SELECT id, last_entry, open_alerts FROM patients ORDER BY id").fetchall()
    assert [tuple(r) for r in got] == [("p1", "2026-11-20", 1), ("p2", "", 0)]
    assert [tuple(r) for r in conn.execute("SELECT * FROM patient_counts")] == [("chronic-pain", "active", 2)]
    conn.close()


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
    # The patient number from the code page finds its patient by its start, typed in any case;
    # a start too short to tell patients apart finds no one by number.
    assert names_on(client.get(f"/clinic/patients?q={writer[:5].upper()}").text) == ["Mevr. Schrijver"]
    assert names_on(client.get(f"/clinic/patients?q={writer}").text) == ["Mevr. Schrijver"]
    assert names_on(client.get(f"/clinic/patients?status=all&q={quiet[:3]}").text) == []


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


def test_a_second_patient_with_the_same_name_is_enrolled_only_when_confirmed(client, settings, clinician):
    def count() -> int:
        conn = sqlite3.connect(settings.db)
        try:
            sql = "SELECT count(*) FROM patients WHERE display_name = 'Mevr. Kok'"
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()

    form = {"display_name": "Mevr. Kok", "pathway_id": "opioid"}
    first = client.post("/clinic/patients", data={**enrol_form(client), **form}, follow_redirects=False)
    assert first.status_code in (302, 303) and count() == 1
    # A fresh form (Back and reload, or a colleague) with the same name: asked, not enrolled.
    asked = client.post("/clinic/patients", data={**enrol_form(client), **form, "display_name": "mevr. kok"})
    assert asked.status_code == 422 and count() == 1
    text = unescape(asked.text)
    asked_why = r"Er is al een patiënt 'mevr\. kok' \(aangemeld \d+ \w+\.? \d{4}\)\. Toch een nieuwe"
    assert re.search(asked_why, text)
    assert 'name="same_name_ok"' in asked.text and 'value="mevr. kok"' in asked.text
    # Confirmed: a second Mevr. Kok, told apart in the list by the day each was enrolled.
    again = client.post(
        "/clinic/patients",
        data={**enrol_form(client), **form, "same_name_ok": "1"},
        follow_redirects=False,
    )
    assert again.status_code in (302, 303) and count() == 2
    listed = client.get("/clinic/patients?q=Kok").text
    assert names_on(listed) == ["Mevr. Kok", "Mevr. Kok"] and listed.count('data-label="Aangemeld"') == 2


def test_discharge_stops_the_monitoring_keeps_the_data_and_resumes(client, services, clinician):
    pid, headers = enrol_patient(services, client, name="Mevr. Klaar")
    from tests.conftest import new_id

    assert client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers).status_code == 201
    page = client.get(f"/clinic/patients/{pid}/settings")
    # The first press only asks: nothing stops until "Ja, afmelden".
    asked = client.post(
        f"/clinic/patients/{pid}/discharge",
        data={"csrf_token": csrf_of(page.text), "reason": "behandeling afgerond"},
    )
    assert asked.status_code == 200 and "Mevr. Klaar afmelden?" in asked.text and "Ja, afmelden" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and 'value="behandeling afgerond"' in asked.text
    assert services.db.query_one("SELECT status FROM patients WHERE id = ?", (pid,))["status"] == "active"
    r = client.post(
        f"/clinic/patients/{pid}/discharge",
        data={"csrf_token": csrf_of(asked.text), "reason": "behandeling afgerond", "confirm": "yes"},
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
    assert re.search(r"<td[^>]*>afgemeld op \d+ \w+\.? \d{4} ·", listed), listed[-3000:]
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
    assert r.status_code in (302, 303) and r.headers["location"].split("?")[0].endswith("/clinic/login")


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
    assert r.status_code in (302, 303) and r.headers["location"].split("?")[0].endswith("/clinic/login")
    assert "uw sessie was verlopen" in client.get("/clinic/login").text.lower()
    back = login(client, "nurse@example.org", PASSWORD)
    assert back.headers["location"] == settings_page
    shown = client.get(settings_page).text
    assert "Uw sessie was verlopen" in shown and "Mevr. Nieuw getypt" in shown and 'id="pw-restore"' in shown
    assert "niet uitgevoerd" in shown  # the rename was not done: the message says so
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
