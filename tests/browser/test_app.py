"""The patient app as an older patient meets it: no broken texts, no licence placeholders,
refusals said plainly, scales with the steps the server takes, plain words, and the phone's back
button. (At 200 % text and 320 px wide: test_fit.py.)"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, join, pick

AMS = ZoneInfo("Europe/Amsterdam")
BROKEN = re.compile(r"null|undefined|NaN|\[object")
PLACEHOLDER = re.compile(r"\[Tekst onder licentie|\[Licensed text")
QUEUED = "Opgeslagen op uw telefoon. Het wordt verstuurd zodra er internet is."


def screen_text(page: Page) -> str:
    return page.locator("body").inner_text()


def assert_reads_well(page: Page, where: str) -> None:
    text = screen_text(page)
    assert not BROKEN.search(text), f"{where}: {BROKEN.search(text).group(0)!r} in {text[:400]!r}"
    assert not PLACEHOLDER.search(text), f"{where}: licence placeholder shown"


def token_of(page: Page) -> str:
    return page.evaluate("self.Pijnwacht.store.get('kv', 'token')")


def open_a_task_for_each(server, page: Page, patient_id: str) -> list[str]:
    """An open task today for every questionnaire the server serves this patient."""
    headers = {"Authorization": f"Bearer {token_of(page)}"}
    served = httpx.get(f"{server.url}/api/v1/questionnaires", headers=headers).json()["questionnaires"]
    ids = sorted({q["id"] for q in served} - {"diary"})
    now = datetime.now(AMS)
    day = now.date().isoformat()
    utc = lambda d: d.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    for qid in ids:
        server.execute(
            "INSERT OR IGNORE INTO tasks (patient_id, questionnaire_id, local_date, until_date, opens_at,"
            " due_at, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                patient_id,
                qid,
                day,
                day,
                utc(now - timedelta(hours=1)),
                utc(now),
                utc(now + timedelta(days=2)),
                utc(now),
            ),
        )
        server.execute(
            "UPDATE tasks SET status = 'open', opens_at = ? WHERE patient_id = ? AND questionnaire_id = ?"
            " AND local_date = ?",
            (utc(now - timedelta(hours=1)), patient_id, qid, day),
        )
    return ids


def answer_this_screen(page: Page) -> None:
    form = page.locator("main form")
    radios = form.locator("input[type=radio]")
    if radios.count():
        radios.first.check()
    elif form.get_by_role("button", name=re.compile("^Meer:")).count():
        form.get_by_role("button", name=re.compile("^Meer:")).first.click()


def test_every_questionnaire_screen_reads_as_words_and_licensed_text_only_when_supplied(
    browser, server, patient
):
    # Pathways that hold every open instrument, BPI-SF (text supplied) and DN4 (not supplied).
    patients = [("chronic-pain", patient)] + [
        (pathway, server.enrol_many(1, pathway=pathway)[0]) for pathway in ("palliative", "tps")
    ]
    walked: set[str] = set()
    errors: list[str] = []
    for pathway, p in patients:
        context = browser.new_context(
            base_url=server.url, viewport=PHONE, locale="nl-NL", timezone_id="Europe/Amsterdam"
        )
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        join(page, p["code"])
        assert_reads_well(page, f"{pathway}: diary")
        ids = open_a_task_for_each(server, page, p["patient_id"])
        # Never served without the clinic's text; BPI-SF is, with it.
        assert not {"eq5d5l", "dn4", "odi"} & set(ids)
        if pathway == "chronic-pain":
            assert "bpi" in ids
        page.goto("/#/tasks")
        page.reload()
        page.get_by_role("link", name=re.compile("^Beginnen: ")).first.wait_for()
        assert_reads_well(page, f"{pathway}: tasks")
        while page.get_by_role("link", name=re.compile("^Beginnen: ")).count():
            page.get_by_role("link", name=re.compile("^Beginnen: ")).first.click()
            page.locator("#progress-text").wait_for()
            title = page.locator("h1").inner_text()
            total = int(re.search(r"van (\d+)", page.locator("#progress-text").inner_text()).group(1))
            for n in range(1, total + 1):
                expect(page.locator("#progress-text")).to_have_text(f"Vraag {n} van {total}")
                assert_reads_well(page, f"{pathway}: {title}: question {n}")
                answer_this_screen(page)
                page.get_by_role("button", name="Versturen" if n == total else "Volgende").click()
            expect(page.get_by_role("heading", name="Vragenlijsten")).to_be_visible()
            expect(page.locator("#status")).to_have_text(re.compile("^Bedankt"))
            walked.add(title)
        for url in ("/#/today", "/#/trend", "/#/settings"):
            page.goto(url)
            page.locator("h1").wait_for()
            assert_reads_well(page, f"{pathway}: {url}")
        context.close()
    # Plain titles, the instrument's name small underneath.
    assert any(t.startswith("Vragen over uw stemming") and "PHQ-9" in t for t in walked)
    assert any("BPI-SF" in t for t in walked)
    stored = {
        r["questionnaire_id"]
        for p in patients
        for r in server.query(
            "SELECT questionnaire_id FROM responses WHERE patient_id = ?", (p[1]["patient_id"],)
        )
    }
    assert {"phq9", "gad7", "peg", "pgic", "bpi", "esas"} <= stored
    assert errors == []


def test_the_back_button_steps_back_one_question(page, server, patient):
    join(page, patient["code"])
    page.goto("/#/tasks")
    page.get_by_role("link", name="Beginnen: Vragen over zorgen en spanning (GAD-7)").click()
    expect(page.get_by_text("Vraag 1 van 7")).to_be_visible()
    page.get_by_role("radio", name="meerdere dagen").check()
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_text("Vraag 2 van 7")).to_be_visible()
    page.go_back()
    expect(page.get_by_text("Vraag 1 van 7")).to_be_visible()
    expect(page.get_by_role("radio", name="meerdere dagen")).to_be_checked()
    page.go_forward()
    expect(page.get_by_text("Vraag 2 van 7")).to_be_visible()
    # "Vorige" does what the back button does.
    page.get_by_role("button", name="Vorige").click()
    expect(page.get_by_text("Vraag 1 van 7")).to_be_visible()
    for n in range(7):
        expect(page.get_by_text(f"Vraag {n + 1} van 7")).to_be_visible()
        page.get_by_role("radio", name="helemaal niet", exact=True).check()
        page.get_by_role("button", name="Versturen" if n == 6 else "Volgende").click()
    expect(page.locator("#status")).to_have_text("Bedankt. Uw antwoorden zijn verstuurd.")
    # Back from the list into the questionnaire just sent: said as it is.
    page.go_back()
    expect(page.get_by_text("U heeft deze vragenlijst al ingevuld. Bedankt.")).to_be_visible()
    assert page.js_errors == []


def test_a_refused_diary_says_it_was_not_saved_and_why(page, server, patient):
    join(page, patient["code"])
    pick(page, "pain_avg", "5 van 10")
    pick(page, "pain_worst", "6 van 10")
    # Past the field's limit (a paste, an old app): the real server refuses it, online.
    page.evaluate("""() => {
        const area = document.querySelector('textarea[data-item="note"]');
        area.removeAttribute('maxlength');
        area.value = 'x'.repeat(5000);
        area.dispatchEvent(new Event('input'));
    }""")
    page.get_by_role("button", name="Opslaan").click()
    status = page.locator("#status")
    expect(status).to_have_text(re.compile(r"^Niet opgeslagen: \S"))
    assert "internet" not in status.inner_text()
    assert "note" in status.inner_text() or "notitie" in status.inner_text().lower()
    expect(page.get_by_text("U heeft deze dag al ingevuld")).to_be_hidden()
    assert server.responses(patient["patient_id"]) == []
    # A refusal without a reason: the app's own Dutch words.
    page.route(
        "**/api/v1/responses:batch",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps(
                {
                    "results": [
                        {"id": i["id"], "status": "invalid"}
                        for i in route.request.post_data_json["responses"]
                    ]
                }
            ),
        ),
    )
    page.evaluate("""() => {
        const area = document.querySelector('textarea[data-item="note"]');
        area.value = 'kort';
        area.dispatchEvent(new Event('input'));
    }""")
    page.get_by_role("button", name="Opslaan").click()
    expect(status).to_have_text(
        "Niet opgeslagen: de server heeft dit antwoord geweigerd."
        " Controleer uw antwoorden en probeer het opnieuw."
    )


def test_a_wrong_code_is_explained_in_dutch(page):
    page.goto("/")
    page.get_by_label("Uw code").fill("ABCD-EFGH")
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.locator("#join-error")).to_have_text(re.compile("^Deze code is onbekend of al gebruikt"))


def test_a_scale_in_steps_of_ten_offers_those_steps_and_a_long_scale_is_a_number(page, server, patient):
    # BPI item 8 is 0-100 % in steps of 10: eleven buttons, not 101 the server would refuse.
    join(page, patient["code"])
    open_a_task_for_each(server, page, patient["patient_id"])
    page.goto("/#/tasks")
    page.reload()
    page.get_by_role("link", name=re.compile(r"^Beginnen: .*\(BPI-SF\)$")).click()
    relief = page.locator('fieldset[data-item="bpi_relief"]')
    page.locator("#progress-text").wait_for()
    total = int(re.search(r"van (\d+)", page.locator("#progress-text").inner_text()).group(1))
    # Step by the question number, so each screen is answered only once it is on view.
    for n in range(1, total + 1):
        expect(page.locator("#progress-text")).to_have_text(f"Vraag {n} van {total}")
        if relief.count():
            assert relief.locator("input[type=radio]").evaluate_all("(els) => els.map((e) => e.value)") == [
                str(v) for v in range(0, 101, 10)
            ]
            relief.get_by_role("radio", name="70 van 100").check()
        else:
            answer_this_screen(page)
        if n < total:
            page.get_by_role("button", name="Volgende").click()
    page.get_by_role("button", name="Versturen").click()
    expect(page.locator("#status")).to_have_text("Bedankt. Uw antwoorden zijn verstuurd.")
    [stored] = server.responses(patient["patient_id"], "bpi")
    assert stored["answers"]["bpi_relief"] == 70
    # A 0-100 scale in steps of 1 (EQ-5D's VAS) is a number to type or step, with its ends said.
    widget = page.evaluate("""async () => {
        const { renderItem } = await import('/js/items.js');
        const w = renderItem({ id: 'vas', type: 'scale', min: 0, max: 100, required: true,
            text: 'Hoe goed is uw gezondheid vandaag?', min_label: 'slechtst', max_label: 'best' },
            undefined, () => {});
        return { radios: w.el.querySelectorAll('input[type=radio]').length,
                 field: w.el.querySelectorAll('input[inputmode=decimal]').length, text: w.el.textContent };
    }""")
    assert widget["radios"] == 0 and widget["field"] == 1
    assert "0 = slechtst" in widget["text"] and "100 = best" in widget["text"]
    assert page.js_errors == []


def test_plain_words_plurals_and_no_days_before_the_start(page, context, server, patient):
    join(page, patient["code"])
    # Enrolled today: no "yesterday is missing", no earlier day to pick.
    expect(page.get_by_role("heading", name="Dagboek")).to_be_visible()
    assert "Gisteren is nog niet ingevuld" not in screen_text(page)
    assert page.locator("#other-day").count() == 0
    page.goto("/#/today/" + (datetime.now(AMS).date() - timedelta(days=2)).isoformat())
    # A day before the start opens today instead.
    expect(page.get_by_role("heading", name=re.compile("^Dagboek"))).to_be_visible()
    assert not page.get_by_role("heading", name=re.compile("^Dagboek van")).count()
    # The sleep stepper shows where it starts and steps from there.
    sleep = page.locator('[data-item="sleep_hours"] input')
    assert sleep.get_attribute("placeholder") == "7"
    page.get_by_role("button", name="Minder: Hoeveel uur heeft u geslapen?").click()
    expect(sleep).to_have_value("6,5")
    pick(page, "pain_avg", "4 van 10")
    pick(page, "pain_worst", "6 van 10")
    page.get_by_role("button", name="Opslaan").click()
    expect(page.locator("#status")).to_have_text("Opgeslagen en verstuurd.")
    page.goto("/#/trend")
    expect(page.get_by_text("Gemiddelde pijn, 30 dagen: 1 dag ingevuld", exact=False)).to_be_visible()
    # No alert, so nobody "saw your report"; the patient reads when the team looks.
    expect(page.get_by_text("Het pijnteam kijkt op werkdagen naar uw antwoorden.")).to_be_visible()
    # Navigation icons are drawings of what they open, not empty boxes.
    assert page.locator("#nav svg.icon path").count() >= 8
    context.set_offline(True)
    page.goto("/#/today")
    pick(page, "pain_avg", "5 van 10")
    page.get_by_role("button", name="Opslaan").click()
    expect(page.locator("#status")).to_have_text(QUEUED)
    page.goto("/#/settings")
    expect(page.get_by_text("1 antwoord wacht op verzending.")).to_be_visible()
    context.set_offline(False)


def test_the_start_page_does_not_shift_and_the_shell_is_cached_by_version(page, server):
    page.add_init_script("""
        window.__shift = 0;
        new PerformanceObserver((list) => {
            for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
        })
          .observe({type: 'layout-shift', buffered: true});
    """)
    page.goto("/")
    expect(page.get_by_role("heading", name="Aanmelden bij Pijnwacht")).to_be_visible()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__shift") < 0.01
    # Without a version the file is revalidated; the service worker's versioned copy is kept a year.
    plain = httpx.get(f"{server.url}/js/main.js")
    assert plain.headers["cache-control"] == "no-cache"
    versioned = httpx.get(f"{server.url}/js/main.js?v=pijnwacht-shell-v4")
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{server.url}/sw.js?v=1").headers["cache-control"] == "no-cache"
    assert httpx.get(f"{server.url}/js/nothing.js?v=1").headers["cache-control"] == "no-cache"
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    cached = page.evaluate(
        "async () => (await (await caches.open((await caches.keys())[0])).keys()).map((r) => r.url)"
    )
    assert cached and all("?v=pijnwacht-shell-" in u for u in cached)
