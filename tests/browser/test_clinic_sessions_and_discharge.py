"""What a nurse sees in the clinic (Chromium, 1280×800): a form sent after the session ran out
comes back filled in after signing in again; discharge from the settings page takes a patient
off the list and back on it; the pages pass axe."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PIJNWACHT, Server, axe

EMAIL = "verpleegkundige@example.org"
PASSWORD = "een lang wachtwoord 42"


@pytest.fixture(scope="module")
def nurse(server: Server) -> str:
    r = subprocess.run(
        [str(PIJNWACHT), "user", "add", "--email", EMAIL, "--name", "M. de Vries", "--password-stdin"],
        env=server.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return EMAIL


def new_patient(server: Server, name: str) -> str:
    """A patient straight in the server's database file (WAL: beside the running server)."""
    from backend.patients import enrolment
    from backend.platform.storage import connect

    conn = connect(server.db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        patient, _code, _ = enrolment.create_patient(
            conn, display_name=name, pathway_id="chronic-pain", known_pathways={"chronic-pain"}
        )
        conn.execute("COMMIT")
        return patient.id
    finally:
        conn.close()


@pytest.fixture
def desk(browser: Browser, server: Server) -> Page:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800}, locale="nl-NL")
    yield ctx.new_page()
    ctx.close()


def sign_in(page: Page) -> None:
    page.get_by_label("E-mailadres").fill(EMAIL)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()


def type_then_send_after_expiry(desk: Page, server: Server, pid: str, label: str, text: str, button: str):
    """Type into a settings field, let the session run out, send: after signing in again the
    nurse is back on that page with the text still in the field, and told why."""
    desk.goto("/clinic/login")
    sign_in(desk)
    desk.goto(f"/clinic/patients/{pid}/settings")
    desk.get_by_label(label).fill(text)
    server.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z'")
    desk.get_by_role("button", name=button).click()
    expect(desk.locator("p.notice[role=status]")).to_contain_text("Uw sessie was verlopen")
    sign_in(desk)
    desk.wait_for_url(f"**/clinic/patients/{pid}/settings")  # the page it came from, not the inbox
    expect(desk.get_by_label(label)).to_have_value(text)
    expect(desk.locator("p.notice[role=status]")).to_contain_text("staat weer in het formulier")


def test_typed_text_survives_an_expired_session(desk: Page, server: Server, nurse: str):
    pid = new_patient(server, "Mevr. Oud")
    type_then_send_after_expiry(
        desk, server, pid, "Naam of pseudoniem (geen BSN)", "Mevr. Lang Getypt", "Naam opslaan"
    )
    # Back, not sent: nothing changed until the nurse sends it again.
    assert server.query("SELECT display_name FROM patients WHERE id = ?", (pid,))[0][0] == "Mevr. Oud"
    assert axe(desk) == []


def test_discharge_takes_a_patient_off_the_list_and_resume_brings_them_back(
    desk: Page, server: Server, nurse: str, patient: dict
):
    pid = patient["patient_id"]
    server.execute(
        "UPDATE patients SET display_name = 'Mevr. de Afmeld', sort_key = 'afmeld' WHERE id = ?", (pid,)
    )
    desk.goto("/clinic/login")
    sign_in(desk)
    desk.goto(f"/clinic/patients/{pid}/settings")
    desk.get_by_label("Reden (niet verplicht, bijv. behandeling afgerond)").fill("behandeling afgerond")
    desk.get_by_role("button", name="Afmelden (monitoring stoppen)").click()
    # Asked once more (no script needed); "Afmelden" is only this: signing out is "Uitloggen".
    expect(desk.get_by_role("alert")).to_contain_text("Mevr. de Afmeld afmelden?")
    assert server.query("SELECT status FROM patients WHERE id = ?", (pid,))[0][0] == "active"
    expect(desk.get_by_role("button", name="Uitloggen")).to_be_visible()
    expect(desk.get_by_role("button", name="Afmelden", exact=True)).to_have_count(0)
    desk.get_by_role("button", name="Ja, afmelden").click()
    expect(desk.locator("p.notice[role=status]")).to_contain_text("is afgemeld")
    desk.goto("/clinic/patients?q=Afmeld")
    expect(desk.get_by_role("link", name="Mevr. de Afmeld")).to_have_count(0)
    desk.get_by_label("Status").select_option(label="afgemeld")
    desk.get_by_role("button", name="Tonen").click()
    expect(desk.get_by_role("link", name="Mevr. de Afmeld")).to_be_visible()
    assert axe(desk) == []
    desk.goto(f"/clinic/patients/{pid}/settings")
    desk.get_by_role("button", name="Weer volgen").click()
    expect(desk.locator("p.notice[role=status]")).to_contain_text("wordt weer gevolgd")
    assert server.query("SELECT status FROM patients WHERE id = ?", (pid,))[0][0] == "active"


def test_typed_text_survives_an_expired_session_without_javascript(
    browser: Browser, server: Server, nurse: str
):
    """The server itself fills the form in again (and knows the page it came from): a browser
    with scripts off loses nothing either."""
    pid = new_patient(server, "Mevr. Zonder Script")
    ctx = browser.new_context(
        base_url=server.url,
        viewport={"width": 1280, "height": 800},
        locale="nl-NL",
        java_script_enabled=False,
    )
    desk = ctx.new_page()
    type_then_send_after_expiry(
        desk,
        server,
        pid,
        "Reden (niet verplicht, bijv. behandeling afgerond)",
        "verhuisd naar Groningen",
        "Afmelden (monitoring stoppen)",
    )
    assert server.query("SELECT status FROM patients WHERE id = ?", (pid,))[0][0] == "active"  # not sent
    desk.get_by_role("button", name="Afmelden (monitoring stoppen)").click()
    desk.get_by_role("button", name="Ja, afmelden").click()
    desk.get_by_role("button", name="Weer volgen").wait_for()
    assert (
        server.query("SELECT discharge_reason FROM patients WHERE id = ?", (pid,))[0][0]
        == "verhuisd naar Groningen"
    )
    ctx.close()


def test_the_threshold_form_shows_what_holds_and_refuses_out_of_range_keeping_the_form(
    desk: Page, server: Server, nurse: str
):
    pid = new_patient(server, "Mevr. Drempel")
    desk.goto("/clinic/login")
    sign_in(desk)
    desk.goto(f"/clinic/patients/{pid}/settings")
    key = desk.get_by_label("Drempel", exact=True)
    groups = key.locator("optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert groups == ["Veelgebruikt", "Geavanceerd (voor de beheerder)"], groups
    assert key.locator("option:checked").inner_text() == (
        "belangrijke stijging (punten) — nu 2 · zorgpad 2 · toegestaan 0,5 tot en met 6"
    )
    key.select_option("baseline_days")
    desk.get_by_label("Waarde").fill("9999")
    desk.get_by_role("button", name="Drempel opslaan").click()
    expect(desk.get_by_role("alert")).to_contain_text(
        "'dagen voor de baseline': '9999' is geen geldige waarde (een heel getal van 7 tot en met 90)"
    )
    expect(desk.get_by_label("Drempel", exact=True)).to_have_value("baseline_days")
    expect(desk.get_by_label("Waarde")).to_have_value("9999")
    # Its line in the hint list is in view: the advanced list opens for an advanced threshold.
    expect(
        desk.get_by_text("dagen voor de baseline: nu 42 · zorgpad 42 · toegestaan 7 tot en met 90")
    ).to_be_visible()
    assert axe(desk) == []
    desk.evaluate("document.documentElement.style.fontSize = '200%'")
    wide = desk.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the settings page is {wide}px wider than the window at 200 % text"
