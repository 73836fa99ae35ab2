"""Clinic sign-in, sessions, CSRF, roles, enrolment pages and the audit trail."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from backend.platform import accounts
from tests.conftest import PASSWORD, add_clinician, csrf_of, login


def test_clinic_pages_need_a_session(client):
    for path in ("/clinic/patients", "/clinic/patients/new", "/clinic/users", "/clinic/password"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].split("?")[0].endswith(
            "/clinic/login"
        ), path


def test_login_gives_a_fresh_session_id_and_logout_ends_it(client, services):
    add_clinician(services)
    client.cookies.set("pw_session", "planted-by-an-attacker", path="/clinic")
    r = login(client, "nurse@example.org")
    assert r.status_code in (302, 303)
    session = r.cookies.get("pw_session")
    assert session and session != "planted-by-an-attacker"
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    page = client.get("/clinic/patients")
    assert page.status_code == 200
    r = client.post("/clinic/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code in (302, 303)
    client.cookies.set("pw_session", session, path="/clinic")
    assert client.get("/clinic/patients", follow_redirects=False).status_code in (302, 303)


def test_wrong_password_is_refused_and_guessing_is_throttled(client, services, settings):
    add_clinician(services)
    for _ in range(settings.login_max_failures):
        r = login(client, "nurse@example.org", "wrong password!")
        assert r.status_code == 401 and "klopt niet" in r.text
    # Locked now: even the right password waits out the lockout.
    r = login(client, "nurse@example.org")
    assert r.status_code == 429 and "Te veel" in r.text


def test_every_form_needs_its_csrf_token(client, clinician):
    r = client.post("/clinic/patients", data={"display_name": "X", "pathway_id": "chronic-pain"})
    assert r.status_code == 403
    r = client.post(
        "/clinic/patients", data={"display_name": "X", "pathway_id": "chronic-pain", "csrf_token": "forged"}
    )
    assert r.status_code == 403
    assert "verlopen" in r.text
    conn = sqlite3.connect(client.app.state.settings.db)
    assert conn.execute("SELECT count(*) FROM patients").fetchone()[0] == 0
    conn.close()


def test_login_form_needs_its_own_csrf_token(client, services):
    add_clinician(services)
    r = client.post(
        "/clinic/login", data={"email": "nurse@example.org", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403


def enrol_form(client) -> dict[str, str]:
    """The enrolment form's hidden fields (CSRF and the one-time form token)."""
    page = client.get("/clinic/patients/new").text
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    return {"csrf_token": csrf_of(page), "form_token": token}


def test_enrol_page_makes_a_code_and_qr_and_audits(client, clinician, settings):
    r = client.post(
        "/clinic/patients",
        data={
            **enrol_form(client),
            "display_name": "Mevr. Bakker",
            "pathway_id": "opioid",
            "anchor_date": "",
            "reminder_time": "19:00",
            "timezone": "Europe/Amsterdam",
        },
    )
    assert r.status_code == 200, r.text
    code = re.search(r'class="code"[^>]*>([A-Z0-9]{4}-[A-Z0-9]{4})<', r.text).group(1)
    assert "<svg" in r.text and f"/#code={code}" in r.text
    # No public address yet: the nurse is told whom to ask, not the server's setting.
    assert "openbaar https-adres" in r.text and "Vraag de beheerder van Pijnwacht" in r.text
    assert "PIJNWACHT_PUBLIC_URL" not in r.text
    # Nor does the sign-in page give server commands for a forgotten password.
    client.cookies.clear()
    login_page = client.get("/clinic/login").text
    assert "Vraag de beheerder van Pijnwacht om een nieuw wachtwoord." in login_page
    assert "pijnwacht user" not in login_page
    conn = sqlite3.connect(settings.db)
    row = conn.execute("SELECT id, pathway_id, reminder_time FROM patients").fetchone()
    assert row[1:] == ("opioid", "19:00")
    audit = conn.execute(
        "SELECT action, user_email, role, patient_id, source FROM audit_log WHERE action = 'enrol'"
    ).fetchone()
    conn.close()
    assert audit == ("enrol", "nurse@example.org", "clinician", row[0], "testclient")
    # The code works once in the patient API.
    assert client.post("/api/v1/enrol", json={"code": code}).status_code == 201


def test_the_code_page_says_why_no_code_is_shown_and_that_a_new_code_cancels_the_old(
    client, clinician, settings
):
    r = client.post(
        "/clinic/patients",
        data={
            **enrol_form(client),
            "display_name": "Dhr. Smit",
            "pathway_id": "opioid",
            "anchor_date": "",
            "reminder_time": "19:00",
            "timezone": "Europe/Amsterdam",
        },
    )
    old = re.search(r'class="code"[^>]*>([A-Z0-9]{4}-[A-Z0-9]{4})<', r.text).group(1)
    pid = str(r.url).split("/clinic/patients/")[1].split("/")[0]
    # Minutes later, opened from an address without the enrolment's token: not an hour's limit.
    page = client.get(f"/clinic/patients/{pid}/code").text
    assert old not in page and "een uur" not in page and "veiligheidsredenen" not in page
    assert "alleen op de pagina die direct na het aanmelden" in page
    assert "de vorige code werkt dan niet meer" in page and "14 dagen geldig" in page
    # The page reached from enrolment, after its hour: that is the reason then.
    conn = sqlite3.connect(settings.db)
    with conn:
        conn.execute("UPDATE enrol_forms SET created_at = ?", ("2020-01-01T00:00:00Z",))
    conn.close()
    again = client.get(str(r.url)).text
    assert old not in again and "tot een uur na het maken; dat uur is voorbij" in again
    # What the button does: a new code, and the old one no longer enrols a phone.
    made = client.post(f"/clinic/patients/{pid}/code", data={"csrf_token": csrf_of(page)})
    new = re.search(r'class="code"[^>]*>([A-Z0-9]{4}-[A-Z0-9]{4})<', made.text).group(1)
    assert new != old
    assert client.post("/api/v1/enrol", json={"code": old}).status_code == 404
    assert client.post("/api/v1/enrol", json={"code": new}).status_code == 201


@pytest.mark.parametrize(
    ("name", "pathway", "words"),
    [
        ("", "chronic-pain", "Een naam of pseudoniem is nodig."),
        ("123456782", "chronic-pain", "BSN"),
        ("Mevr. A", "unknown-path", "Zorgpad &#39;unknown-path&#39; is onbekend"),
        ("x" * 81, "chronic-pain", "De naam is langer dan 80 tekens."),
    ],
)
def test_enrol_page_explains_bad_input_in_dutch(client, clinician, name, pathway, words):
    r = client.post(
        "/clinic/patients", data={**enrol_form(client), "display_name": name, "pathway_id": pathway}
    )
    assert r.status_code == 422 and words in r.text
    # What was typed stays in the form, with a fresh one-time token.
    assert 'name="form_token"' in r.text and (not name or name in r.text)


def test_enrol_page_refuses_an_unknown_time_zone_in_dutch(client, clinician):
    r = client.post(
        "/clinic/patients",
        data={
            **enrol_form(client),
            "display_name": "Mevr. Tijd",
            "pathway_id": "opioid",
            "timezone": "Amsterdam",
        },
    )
    assert r.status_code == 422 and "is geen bekende tijdzone" in r.text


def test_only_admins_manage_accounts(client, services, clinician):
    assert client.get("/clinic/users").status_code == 403
    add_clinician(services, email="boss@example.org", role="admin")
    client.cookies.clear()
    login(client, "boss@example.org")
    page = client.get("/clinic/users")
    assert page.status_code == 200
    r = client.post(
        "/clinic/users",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Nieuw",
            "email": "new@example.org",
            "role": "clinician",
            "password": "welkom123",
        },
    )
    assert r.status_code == 422 and "veelgebruikte wachtwoorden" in r.text
    assert 'value="new@example.org"' in r.text  # what was typed stays
    r = client.post(
        "/clinic/users",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Nieuw",
            "email": "new@example.org",
            "role": "clinician",
            "password": "lange-zin-voor-nieuw",
        },
        follow_redirects=False,
    )
    assert r.status_code in (302, 303)
    shown = client.get(r.headers["location"]).text
    assert "new@example.org: toegevoegd." in shown


def test_password_change_ends_every_session(client, services, clinician):
    page = client.get("/clinic/password")
    r = client.post(
        "/clinic/password",
        data={"csrf_token": csrf_of(page.text), "current": PASSWORD, "new": "short", "again": "short"},
    )
    assert r.status_code == 422 and "minstens 8 tekens" in r.text
    r = client.post(
        "/clinic/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current": PASSWORD,
            "new": "een lange zin",
            "again": "een lange zon",
        },
    )
    assert r.status_code == 422 and "niet gelijk" in r.text
    r = client.post(
        "/clinic/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current": "fout",
            "new": "een lange zin",
            "again": "een lange zin",
        },
    )
    assert r.status_code == 422 and "Het huidige wachtwoord klopt niet." in r.text
    r = client.post(
        "/clinic/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current": PASSWORD,
            "new": "een nieuw lang wachtwoord",
            "again": "een nieuw lang wachtwoord",
        },
        follow_redirects=False,
    )
    assert r.status_code in (302, 303)
    assert client.get("/clinic/patients", follow_redirects=False).status_code in (302, 303)
    assert login(client, "nurse@example.org", "een nieuw lang wachtwoord").status_code in (302, 303)


def test_password_hashes_are_argon2id_at_least_owasp_minimum(services):
    add_clinician(services)
    row = services.db.query_one("SELECT password_hash FROM users")
    params = dict(p.split("=") for p in row["password_hash"].split("$")[3].split(","))
    assert row["password_hash"].startswith("$argon2id$")
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2


def test_audit_log_refuses_update_and_delete(services, client, clinician):
    client.get("/clinic/patients")
    conn = sqlite3.connect(services.settings.db)
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] >= 1
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_log SET user_email = 'someone-else'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_log")
    conn.close()


def test_admin_sees_a_patients_access_history(client, services, patient):
    pid, _ = patient
    add_clinician(services, email="boss@example.org", role="admin")
    login(client, "boss@example.org")
    assert client.get(f"/clinic/patients/{pid}/settings").status_code == 200
    page = client.get(f"/clinic/audit/{pid}")
    assert page.status_code == 200
    # In the clinic's words and local time, not codes in UTC.
    assert "boss@example.org" in page.text and "bekeken" in page.text and "instellingen" in page.text
    assert "beheerder" in page.text and " om " in page.text and "<td>view</td>" not in page.text


def test_security_headers_on_every_kind_of_answer(client, clinician):
    for path in ("/clinic/patients", "/api/v1/me", "/healthz", "/clinic/nope"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert client.get("/api/v1/me").headers["cache-control"] == "no-store"


def test_session_check_is_not_fooled_by_a_disabled_account(client, services, clinician):
    services.db.write_sync(lambda conn: conn.execute("UPDATE users SET disabled_at = 'now'"))
    assert client.get("/clinic/patients", follow_redirects=False).status_code in (302, 303)
    assert accounts.login_candidate(services.db.reader, "nurse@example.org") is None


def test_the_audit_page_says_every_action_in_words_with_no_code_or_id(client, services, patient):
    """A settings change, a threshold, a consult view and a CSV, then the audit page: every
    row is Dutch words; no action code, no patient id, no threshold key, no ISO date."""
    pid, _ = patient
    add_clinician(services, email="boss@example.org", role="admin")
    login(client, "boss@example.org")
    token = csrf_of(client.get(f"/clinic/patients/{pid}/settings").text)
    until = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "expected_pain_level", "value": "6.5", "until": until},
    )
    client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "silence_alert_days", "value": "7"},
    )
    client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "silence_alert_days", "clear": "1"},
    )
    row = services.db.query_one("SELECT pathway_id, anchor_date FROM patients WHERE id = ?", (pid,))
    settings_form = {"pathway_id": row["pathway_id"], "anchor_date": row["anchor_date"] or ""}
    client.post(
        f"/clinic/patients/{pid}/settings",
        data={"csrf_token": token, **settings_form, "reminder_time": "20:00", "timezone": "America/Curacao"},
    )
    assert client.get(f"/clinic/patients/{pid}").status_code == 200
    assert client.get(f"/clinic/patients/{pid}/consult").status_code == 200
    # No answers yet: the CSV button says so on a clinic page, in Dutch, with no id.
    csv = client.get(f"/clinic/patients/{pid}/consult.csv?dialect=nl")
    assert csv.status_code == 400 and "nog niets om te downloaden" in csv.text
    assert pid not in re.sub(r"<[^>]+>", "", csv.text)
    assert 'href="/clinic/patients"' in csv.text
    page = client.get(f"/clinic/audit/{pid}").text
    cells = re.findall(r"<td[^>]*>(.*?)</td>", page.split("<tbody>", 1)[1], re.S)
    assert "eigen drempel ingesteld" in cells and "verwacht pijnniveau: 6,5, tot en met" in page
    assert "melding na dagen zonder dagboek: 7, blijvend" in page and "tijdlijn bekeken" in cells
    assert "tijdzone Curaçao" in page and "America/Curacao" not in page
    for code in ("set_threshold", "view_patient", "expected_pain_level", "silence_alert_days", "timeline 90"):
        assert code not in page
    assert pid not in re.sub(r"<[^>]+>", "", page)  # in links and forms only, never shown
    assert not re.search(r">[^<]*\d{4}-\d\d-\d\d", page)
    assert "consult summary" not in page and "wide csv" not in page and "=" not in "".join(cells)


def test_every_clinic_button_says_what_it_does_in_an_infinitive():
    """The review read "Bevestig", "Handel af", "Wijs toe", "Voeg toe" as commands to the nurse;
    a Dutch button names the action ("In behandeling nemen", "Afhandelen", "Toewijzen")."""
    from pathlib import Path

    templates = Path(__file__).resolve().parents[1] / "backend" / "web" / "templates"
    texts = []
    for path in templates.rglob("*.html"):
        for body in re.findall(r"<button[^>]*>(.*?)</button>", path.read_text(), re.S):
            texts += [t.strip() for t in re.findall(r"'([^']+)'", body)] if "{{" in body else [body.strip()]
    assert len(texts) >= 20, texts
    imperative = re.compile(r"^(Bevestig|Handel|Wijs|Voeg|Toon|Maak|Sla|Zet|Kies|Stuur|Meld)\b")
    assert [t for t in texts if imperative.search(t)] == []
    assert "In behandeling nemen" in texts and "Afhandelen" in texts and "Toewijzen" in texts


def test_the_time_zone_list_names_places_and_keeps_a_zone_it_does_not_list(client, services, patient):
    """A nurse picks "Amsterdam (Nederland)", not an IANA name; a patient whose zone was set
    elsewhere (the CLI takes any IANA zone) keeps it when the settings page is saved."""
    pid, _ = patient
    add_clinician(services, email="boss@example.org", role="admin")
    login(client, "boss@example.org")
    html = client.get(f"/clinic/patients/{pid}/settings").text
    assert '<option value="Europe/Amsterdam" selected>Amsterdam (Nederland)</option>' in html
    assert ">Europe/Amsterdam<" not in html and 'label="Europa"' in html
    services.db.write_sync(
        lambda conn: conn.execute("UPDATE patients SET timezone = 'Etc/GMT-1' WHERE id = ?", (pid,))
    )
    html = client.get(f"/clinic/patients/{pid}/settings").text
    assert html.count(" selected>") >= 1
    assert '<optgroup label="Nu ingesteld">' in html
    assert '<option value="Etc/GMT-1" selected>Etc/GMT-1</option>' in html


def test_the_audit_page_pages_newest_first_instead_of_cutting_off(client, services, patient):
    from backend.platform import audit

    pid, _ = patient
    add_clinician(services, email="boss@example.org", role="admin")
    login(client, "boss@example.org")

    def flood(conn):  # the discharge first, then 620 rows after it
        for action in ["discharge", *(f"view_{i}" for i in range(620))]:
            audit.record(
                conn,
                user_id=None,
                user_email="x@example.org",
                role="clinician",
                patient_id=pid,
                action=action,
            )

    services.db.write_sync(flood)

    def rows(html):
        return re.findall(r"<tbody>(.*?)</tbody>", html, re.S)[0].count("<tr>")

    first = client.get(f"/clinic/audit/{pid}").text
    assert rows(first) == 100 and "Vorige" not in first
    html, pages = first, 1
    while (more := re.search(r'href="(/clinic/audit/[^"]+\?before=\d+)">Volgende', html)) is not None:
        html = client.get(more.group(1)).text
        pages += 1
        assert "Vorige (nieuwer)" in html
    # Over 620 rows: all reachable, the oldest on the last page rather than cut off at 500.
    assert pages == 7 and "afgemeld (monitoring gestopt)" in html  # the discharge, the oldest
    back = re.search(r'href="(/clinic/audit/[^"]+\?after=\d+)">', html).group(1)
    newer = client.get(back).text
    assert rows(newer) == 100 and "Volgende (ouder)" in newer
