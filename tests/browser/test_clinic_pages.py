"""The clinic's pages as a pain nurse sees them at 1280×800: the inbox in Dutch with names that
lead to the patient, a self-refreshing list that keeps the filters and the focus and announces a
new urgent alert; the alert page with its 90-day chart, window, baseline, target and who did
what; the timeline with a date axis and a value per day; no English, no ids; axe-clean."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import PIJNWACHT, SCREENSHOTS, Server, axe
from tests.conftest import AMS, diary, new_id

DESKTOP = {"width": 1280, "height": 800}
EMAIL, PASSWORD = "verpleging@example.org", "pijnteam zorgt goed"
# What a nurse must never meet on these pages: rule ids, item ids, raw UTC, English buttons.
FORBIDDEN = re.compile(
    r"pain_rise|drowsiness_severe|safety\.|phq9_|Regel |T\d\d:\d\d:\d\dZ|Acknowledge|Resolve"
)


@pytest.fixture(scope="module")
def nurse(server: Server) -> str:
    proc = subprocess.run(
        [str(PIJNWACHT), "user", "add", "--email", EMAIL, "--name", "M. de Vries", "--password-stdin"],
        input=PASSWORD + "\n",
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return EMAIL


def send_diary(server: Server, token: str, days: list[tuple[date, dict]]) -> None:
    body = {"responses": [{"id": new_id(), **diary(d.isoformat(), **answers)} for d, answers in days]}
    r = httpx.post(
        f"{server.url}/api/v1/responses:batch",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code in (200, 207), r.text
    assert {x["status"] for x in r.json()["results"]} == {"created"}, r.text


@pytest.fixture(scope="module")
def patient_with_alerts(server: Server) -> dict:
    """A patient with 60 days of diary: pain 4, then 7 for the last 9 days (a pain rise), and
    severe drowsiness today (urgent); notes on some days."""
    p = server.enrol_many(1, name="Mevr. de Boer")[0]
    r = httpx.post(f"{server.url}/api/v1/enrol", json={"code": p["code"]}, timeout=30)
    assert r.status_code == 201, r.text
    body = r.json()
    server.backdate(body["patient"]["id"], 70)
    today = datetime.now(AMS).date()
    days = []
    for n in range(60, 0, -1):
        pain = 7 if n <= 9 else 4 + (n % 2)
        answers = {
            "pain_avg": pain,
            "pain_worst": pain + 2,
            "mood": 6 - (n <= 9),
            "activity": 5,
            "sleep_quality": 6,
        }
        if n in (3, 20):
            answers["note"] = "Slecht geslapen, meer pijn in de rug." if n == 3 else "Rustige week."
        days.append((today - timedelta(days=n), answers))
    send_diary(server, body["token"], days)
    send_diary(server, body["token"], [(today, {"pain_avg": 7, "pain_worst": 9, "se_drowsiness": 3})])
    return {"id": body["patient"]["id"], "token": body["token"]}


@pytest.fixture
def desk(browser: Browser, server: Server, nurse: str) -> Iterator[Page]:
    ctx: BrowserContext = browser.new_context(
        base_url=server.url, viewport=DESKTOP, locale="nl-NL", timezone_id="Europe/Amsterdam"
    )
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    page.goto("/clinic/login")
    page.get_by_label("E-mailadres").fill(EMAIL)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.get_by_role("heading", name="Meldingen").wait_for()
    yield page
    ctx.close()


def readable(page: Page) -> str:
    text = page.locator("body").inner_text()
    assert not FORBIDDEN.search(text), FORBIDDEN.search(text).group(0)
    return text


def test_inbox_in_dutch_names_link_to_the_patient_and_it_refreshes_itself(
    desk: Page, server, patient_with_alerts
):
    page = desk
    pid = patient_with_alerts["id"]
    page.goto("/clinic/inbox?category=side_effect")
    text = readable(page)
    assert "ernstige sufheid" in text and "In behandeling nemen" in text
    assert re.search(r"nog \d+ min|te laat", text)  # the target on every alert
    # The patient's name leads to the timeline.
    link = page.locator(f'a[href="/clinic/patients/{pid}"]').first
    assert link.is_visible()
    assert axe(page) == []
    # The inbox as a CSV for Dutch Excel, with the filter in force: Dutch columns and words.
    with page.expect_download() as got:
        page.get_by_role("link", name="CSV voor Excel (Nederlands)").click()
    download = got.value
    assert re.fullmatch(r"meldingen-\d{4}-\d\d-\d\d-excel\.csv", download.suggested_filename)
    body = Path(download.path()).read_bytes().decode("utf-8-sig")
    header, *lines = body.splitlines()
    assert header.startswith("patiënt;naam / pseudoniem;melding;soort;ernst;geopend op;reden;status")
    assert any(line.startswith(f"{pid};Mevr. de Boer;ernstige sufheid;bijwerking;urgent;") for line in lines)
    assert all(";bijwerking;" in line for line in lines)  # the filter in force
    with page.expect_download() as got:
        page.get_by_role("link", name="CSV (standaard)").click()
    assert got.value.suggested_filename == download.suggested_filename.replace("-excel", "")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto("/clinic/inbox")
    page.screenshot(path=str(SCREENSHOTS / "inbox.png"), full_page=False)
    # Filter on urgent, focus a link, then a new urgent alert arrives elsewhere: the refresh
    # keeps the filter and the focus and announces it.
    page.goto("/clinic/inbox?severity=urgent")
    first = page.locator("#inbox-table a[data-focus]").first
    first.focus()
    focused = first.get_attribute("data-focus")
    other = httpx.post(
        f"{server.url}/api/v1/enrol",
        json={"code": server.enrol_many(1, name="Mevr. Nieuw")[0]["code"]},
        timeout=30,
    ).json()
    send_diary(server, other["token"], [(datetime.now(AMS).date(), {"se_drowsiness": 3})])
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.locator("#inbox-live").filter(has_text="Nieuwe urgente melding").wait_for(timeout=10_000)
    assert "Mevr. Nieuw" in page.locator("#inbox-live").inner_text()
    assert page.locator("#inbox-table").get_by_text("Mevr. Nieuw").is_visible()
    assert page.url.endswith("severity=urgent")
    assert page.evaluate("document.activeElement.dataset.focus") == focused
    assert page.js_errors == []


def test_alert_page_chart_window_baseline_target_and_who_did_what(desk: Page, server, patient_with_alerts):
    page = desk
    pid = patient_with_alerts["id"]
    alert_id = server.query("SELECT id FROM alerts WHERE patient_id = ? AND category = 'pain'", (pid,))[0][0]
    page.goto(f"/clinic/alerts/{alert_id}")
    text = readable(page)
    assert "aanhoudend meer pijn dan gewoonlijk" in text and "baseline 4," in text
    assert "periode van deze melding" in text and "doel: gezien binnen 3 werkdagen" in text  # routine
    chart = page.locator("figure.chart-figure svg")
    assert chart.locator("rect.day").count() >= 60  # a value per diary day
    assert chart.locator("text", has_text="▼").count() >= 1  # the alert, as the legend shows it
    assert chart.locator("rect title", has_text="periode van deze melding").count() == 1
    page.get_by_role("button", name="In behandeling nemen").click()
    page.get_by_label("Notitie (hooguit 4000 tekens)").fill("Gebeld: " + "lang" * 1200)
    page.get_by_role("button", name="Notitie toevoegen").click()
    page.get_by_label("Uitkomst").select_option(label="doorverwezen (huisarts/crisisdienst)")
    page.get_by_role("button", name="Afhandelen").click()
    history = page.locator("#who-did-what").inner_text()
    # Who and when, in local time ("2 dec. 2026 om 09:15"), never raw UTC.
    assert re.search(r"In behandeling genomen · \d+ \w+\.? \d{4} om \d\d:\d\d · door M\. de Vries", history)
    assert "Afgehandeld: doorverwezen (huisarts/crisisdienst)" in history and "Notitie" in history
    # A 4 800-character note without spaces wraps: the page is no wider than the window.
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert axe(page) == []
    page.screenshot(path=str(SCREENSHOTS / "alert.png"), full_page=False)
    page.get_by_role("link", name=re.compile("Tijdlijn van")).click()
    page.get_by_role("heading", name=re.compile("Pijn,")).wait_for()
    assert page.js_errors == []


def test_timeline_has_dates_values_per_day_mood_notes_and_the_baseline(desk: Page, patient_with_alerts):
    page = desk
    pid = patient_with_alerts["id"]
    page.goto(f"/clinic/patients/{pid}")
    text = readable(page)
    assert (
        "Stemming, activiteit en slaapkwaliteit" in text and "Slecht geslapen, meer pijn in de rug." in text
    )
    assert "baseline 4," in text and "▼ melding" in text
    page.screenshot(path=str(SCREENSHOTS / "timeline.png"), full_page=False)
    pain = page.locator("svg.chart").first
    labels = pain.locator("text").all_text_contents()
    month = r"\d{1,2} (jan|feb|mrt|apr|mei|jun|jul|aug|sep|okt|nov|dec)\.?"
    assert sum(bool(re.fullmatch(month, t)) for t in labels) >= 5  # a date axis
    # Point at a day: its values stand on the chart (only that day's), and a screen reader
    # reads them from the column.
    day = pain.locator("rect.day").last
    day.hover()
    name = day.get_attribute("aria-label")
    assert re.match(month + r": gemiddelde pijn 7, ergste pijn 9", name), name  # whole: no ",0"
    shown = pain.locator("text.day-value")
    assert shown.last.is_visible() and shown.last.text_content() == name
    assert not shown.first.is_visible()
    # The keyboard: no Tab stop per day (90 of them a chart), but one for the table of values
    # under the chart; opened with Enter, it lists the same day.
    assert pain.locator("[tabindex]").count() == 0
    fold = page.locator("details.chart-table").first
    fold.locator("summary").focus()
    page.keyboard.press("Enter")
    last_row = fold.locator("tbody tr").last
    assert last_row.is_visible()
    cells = last_row.locator("th, td").all_inner_texts()
    assert name.startswith(cells[0].rsplit(" ", 1)[0] + ":") and cells[1:3] == ["7", "9"], cells
    assert pain.locator("text", has_text="▼").count() >= 2
    assert axe(page) == []
    page.goto(f"/clinic/patients/{pid}/consult")
    text = readable(page)
    assert page.get_by_role("button", name="Afdrukken (één A4)").is_visible()
    assert re.search(r"afgedrukt door M\. de Vries op \d+ \w+\.? \d{4} om \d\d:\d\d", text)
    # Two consult CSVs, two file names, neither with the patient's id.
    names = []
    for link in ("CSV voor Excel (Nederlands)", "CSV (standaard)"):
        with page.expect_download() as got:
            page.get_by_role("link", name=link).click()
        names.append(got.value.suggested_filename)
    assert names[0] != names[1] and all(n.startswith("consult-mevr-de-boer-") for n in names), names
    assert not any(pid in n for n in names)
    assert axe(page) == []
    page.goto("/clinic/response-times")
    assert "Reactietijden" in readable(page)
    assert axe(page) == []
    assert page.js_errors == []


def test_the_other_pages_read_in_dutch_without_ids_and_fit_at_double_text(
    browser: Browser, server, nurse, patient_with_alerts
):
    """Patient list, enrolment, response times, (for an admin) the audit log, and the inbox: Dutch, no
    patient id or action code in view, axe-clean, nothing wider than the window at 200 % text;
    photographed for the README."""
    admin, secret = "beheer@example.org", "beheer wachtwoord 77"
    proc = subprocess.run(
        [str(PIJNWACHT), "user", "add", "--email", admin, "--name", "B. Eheer", "--role", "admin",
         "--password-stdin"],
        input=secret + "\n", env=server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ctx = browser.new_context(
        base_url=server.url, viewport=DESKTOP, locale="nl-NL", timezone_id="Europe/Amsterdam"
    )
    page = ctx.new_page()
    page.goto("/clinic/login")
    page.get_by_label("E-mailadres").fill(admin)
    page.get_by_label("Wachtwoord").fill(secret)
    page.get_by_role("button", name="Inloggen").click()
    page.get_by_role("heading", name="Meldingen").wait_for()
    pid = patient_with_alerts["id"]
    page.goto(f"/clinic/patients/{pid}")  # something for the audit log to say
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = {
        "": "/clinic/inbox",  # its own test photographs it
        "patients.png": "/clinic/patients",
        "enrol.png": "/clinic/patients/new",
        "response-times.png": "/clinic/response-times",
        "audit.png": f"/clinic/audit/{pid}",
    }
    for name, path in shots.items():
        r = page.goto(path)
        assert r is not None and r.status == 200, path
        text = readable(page)
        assert pid not in text and not re.search(r"\b(view|list|export)_[a-z]+|\d{4}-\d\d-\d\d", text), path
        assert axe(page) == [], path
        if name:
            page.screenshot(path=str(SCREENSHOTS / name), full_page=False)
        size = "parseFloat(getComputedStyle(document.querySelector('main td, main p, main label')).fontSize)"
        before = page.evaluate(size)
        page.evaluate("document.documentElement.style.fontSize = '200%'")
        # The body text itself grows (not only headings and badges), or this checks nothing.
        assert page.evaluate(size) == 2 * before, f"{path}: the text does not grow with the user's size"
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{path} is {wide}px wider than the window at 200 % text"
        # Every button whole on screen: "In behandeling nemen" not cut off at the right edge.
        cut = page.locator("main button").evaluate_all(
            "bs => bs.filter(b => b.getBoundingClientRect().right > innerWidth).map(b => b.textContent)"
        )
        assert cut == [], f"{path}: buttons past the right edge at 200 % text: {cut}"
    assert "tijdlijn bekeken" in page.locator("body").inner_text()
    # The time zone is picked from a list (the clinic's own first), not typed as an IANA name.
    page.goto("/clinic/patients/new")
    zone = page.get_by_label("Tijdzone")
    assert zone.evaluate("e => e.tagName") == "SELECT" and zone.input_value() == "Europe/Amsterdam"
    first = zone.locator("option").all_text_contents()[:3]
    assert first == ["Amsterdam (Nederland)", "Brussel (België)", "Berlijn (Duitsland)"], first
    # Every place in Dutch, by region, each region in place order ("Azië" lists Calcutta).
    regions = zone.locator("optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert regions[:3] == ["Veelgebruikt", "Afrika", "Amerika"] and "Europa" in regions, regions
    asia = zone.locator('optgroup[label="Azië"] option')
    assert "Calcutta (India)" in asia.all_text_contents()
    zone.select_option(label="Calcutta (India)")
    assert zone.input_value() == "Asia/Kolkata"
    ctx.close()


def test_inbox_buttons_name_the_patient_focus_stays_on_the_row_and_an_ended_session_is_said(
    desk: Page, server, patient_with_alerts
):
    page = desk
    page.goto("/clinic/inbox?category=side_effect")
    button = page.get_by_role("button", name="In behandeling nemen: melding van Mevr. de Boer").first
    row = button.locator("xpath=ancestor::tr")
    alert_id = row.get_attribute("data-alert")
    button.click()
    page.wait_for_url(f"**/clinic/inbox?category=side_effect#melding-{alert_id}")
    # The keyboard goes on at the row just taken on, not at the top of the page.
    assert page.evaluate("document.activeElement.dataset.focus") == f"alert-{alert_id}"
    # The session ends (its hours, or idle): the next refresh says so, seen and announced.
    server.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z'")
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    notice = page.locator("#inbox-expired[role=alert]")
    notice.filter(has_text="Uw sessie is verlopen — log opnieuw in").wait_for(timeout=10_000)
    assert "niet meer ververst" in page.locator("#inbox-refreshed").inner_text()
    assert axe(page) == []
    notice.get_by_role("link", name="log opnieuw in").click()
    page.get_by_label("E-mailadres").fill(EMAIL)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url("**/clinic/inbox?category=side_effect")  # back to the inbox, filters kept
    assert page.js_errors == []


def test_the_charts_tables_open_read_and_fit_at_200_percent_text(desk: Page, server, patient_with_alerts):
    """The timeline and an alert's page with every chart's table of values opened: the
    tables are there (a row per day), axe-clean, and at 200 % text no page is wider than the
    window; the keyboard reaches each table in one Tab stop, not one per day."""
    page = desk
    pid = patient_with_alerts["id"]
    alert_id = server.query("SELECT id FROM alerts WHERE patient_id = ? AND category = 'pain'", (pid,))[0][0]
    for path in (f"/clinic/patients/{pid}", f"/clinic/alerts/{alert_id}"):
        page.goto(path)
        folds = page.locator("details.chart-table")
        assert folds.count() >= 1, path
        for i in range(folds.count()):
            folds.nth(i).locator("summary").click()
            assert folds.nth(i).locator("tbody tr").count() >= 1
        assert page.locator("svg.chart [tabindex]").count() == 0, path
        assert axe(page) == [], path
        page.evaluate("document.documentElement.style.fontSize = '200%'")
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{path} is {wide}px wider than the window at 200 % text with the tables open"
    assert page.js_errors == []
