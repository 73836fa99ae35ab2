"""Every screen a patient can reach, on the smallest phone (320 CSS px wide) and at 200 % text:
nothing runs off sideways or is cut off, every control can be reached and tapped, fixed bars
leave the screen to the content, axe finds nothing, and no screen is a dead end."""

from __future__ import annotations

import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, axe, join, pick
from tests.browser.layout import NARROW, large_text, layout, scale_rows, unreachable
from tests.browser.test_app import open_a_task_for_each

AMS = ZoneInfo("Europe/Amsterdam")
PICTURES = Path(tempfile.gettempdir()) / "pijnwacht-fit"  # to look at when a check fails
MODES = {"320px": (NARROW, False), "200pct": (PHONE, True)}

# A way on from the screen other than the browser's own back button: a dialog's button, the
# navigation, or a link or button in the screen itself.
WAY_ON = """() => {
    const dialog = document.querySelector('dialog[open]');
    if (dialog) return dialog.querySelectorAll('button, a[href]').length > 0;
    const nav = document.getElementById('nav');
    if (!nav.hidden && nav.querySelectorAll('a[href]').length) return true;
    return document.querySelectorAll('main a[href], main button:not([disabled])').length > 0;
}"""


def day(offset: int = 0) -> str:
    return (datetime.now(AMS).date() + timedelta(days=offset)).isoformat()


@pytest.mark.parametrize("mode", MODES)
def test_every_screen_fits_at_320_px_and_at_200_percent_text(page: Page, context, server, mode):
    [patient] = server.enrol_many(1)
    viewport, big = MODES[mode]
    page.set_viewport_size(viewport)
    PICTURES.mkdir(exist_ok=True)
    checked: list[str] = []

    def check(where: str, accessible: bool = True) -> None:
        if big:
            large_text(page)
        page.wait_for_timeout(150)
        page.screenshot(path=str(PICTURES / f"{mode}-{where}.png"))
        state = layout(page)
        assert state["wide"] == [], f"{mode} {where}: the page scrolls sideways"
        assert state["cut"] == [], f"{mode} {where}: text cut off: {state['cut']}"
        if big:
            assert state["fixed"] == [], f"{mode} {where}: bars stay fixed at large text: {state['fixed']}"
        else:
            assert state["covered"] <= 0.3, f"{mode} {where}: fixed bars cover {state['covered']:.0%}"
        assert unreachable(page) == [], f"{mode} {where}: controls that cannot be tapped"
        assert page.evaluate(WAY_ON), f"{mode} {where}: a dead end"
        # 0–10 in balanced rows (6 + 5, 4 + 4 + 3, ...): never one number alone on a row.
        for scale in scale_rows(page):
            rows = scale["rows"]
            assert min(rows) >= 2 and max(rows) - min(rows) <= 1, f"{mode} {where}: scale rows {rows}"
            if not big and scale["digits"] <= 2 and sum(rows) == 11:
                assert rows == [6, 5], f"{mode} {where}: 0–10 in rows {rows}"
        if accessible:
            assert axe(page) == [], f"{mode} {where}"
        checked.append(where)

    def go(url: str, heading: str | re.Pattern) -> None:
        page.goto(url)
        expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()

    server.backdate(patient["patient_id"], 3)
    # Joining: the screen, a refused code, the three choices.
    page.goto("/#code=ABCD-EFGH")
    expect(page.get_by_role("heading", name="Aanmelden bij Pijnwacht")).to_be_visible()
    check("join")
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.locator("#join-error")).to_have_text(re.compile("^Deze code is onbekend"))
    check("join-refused")
    page.get_by_label("Uw code").fill(patient["code"])
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Welkom, Test")).to_be_visible()
    check("setup")
    page.get_by_role("button", name="Klaar").click()
    expect(page.get_by_role("heading", name=re.compile("^Dagboek"))).to_be_visible()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    ids = open_a_task_for_each(server, page, patient["patient_id"])
    page.reload()
    expect(page.get_by_role("heading", name=re.compile("^Dagboek"))).to_be_visible()
    check("today")

    # The diary saved with severe drowsiness: the advice, then yesterday's diary.
    pick(page, "pain_avg", "5 van 10")
    pick(page, "pain_worst", "7 van 10")
    pick(page, "se_drowsiness", "ernstig")
    page.get_by_role("button", name="Opslaan").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    check("drowsiness-advice")
    page.get_by_role("button", name="Ik heb dit gelezen").click()
    go(f"/#/today/{day(-1)}", re.compile("^Dagboek van"))
    check("yesterday")

    # Every questionnaire the pathway has, each of its questions.
    go("/#/tasks", "Vragenlijsten")
    check("tasks")
    for qid in ids:
        go("/#/tasks", "Vragenlijsten")
        task = server.query(
            "SELECT id FROM tasks WHERE patient_id = ? AND questionnaire_id = ? AND status = 'open'",
            (patient["patient_id"], qid),
        )
        page.goto(f"/#/task/{task[0]['id']}")
        progress = page.locator("#progress-text")
        expect(progress).to_have_text(re.compile(r"^Vraag 1 van \d+$"))
        total = int(progress.inner_text().rsplit(" ", 1)[1])
        for n in range(1, total + 1):
            expect(progress).to_have_text(f"Vraag {n} van {total}")
            # axe on each questionnaire's first screen: the rest are built the same way.
            check(f"{qid}-{n}", accessible=n == 1)
            form = page.locator("main form")
            radios = form.locator("input[type=radio]")
            if qid == "phq9" and n == 9:
                form.get_by_role("radio", name="meerdere dagen").check()
                expect(page.get_by_role("dialog")).to_be_visible()
                check("crisis-dialog")
                page.get_by_role("dialog").get_by_role("button").last.click()
                expect(page.get_by_role("dialog")).to_have_count(0)
                check("crisis-box")
            elif radios.count():
                radios.first.check()
            elif form.get_by_role("button", name=re.compile("^Meer:")).count():
                form.get_by_role("button", name=re.compile("^Meer:")).first.click()
            if n < total:
                page.get_by_role("button", name="Volgende").click()
    page.goto("/#/task/999999")
    expect(page.get_by_role("link", name="Naar de vragenlijsten")).to_be_visible()
    check("task-unknown")

    # My trend with its tables open, the settings and the leave question, my summary.
    go("/#/trend", "Mijn verloop")
    check("trend")
    for summary in page.locator("main details > summary").all():
        summary.click()
    check("trend-tables")
    go("/#/settings", "Instellingen")
    check("settings")
    page.get_by_role("button", name="Afmelden").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    check("leave-dialog")
    page.get_by_role("button", name="Annuleren").click()
    go("/#/summary", re.compile("^Mijn overzicht"))
    check("summary")

    # Offline: the banner, the diary kept on the phone, what waits in the settings.
    context.set_offline(True)
    go("/#/today", re.compile("^Dagboek"))
    pick(page, "pain_avg", "4 van 10")
    pick(page, "se_drowsiness", "licht")
    page.get_by_role("button", name="Opslaan").click()
    expect(page.locator("#offline")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    check("offline")
    go("/#/settings", "Instellingen")
    expect(page.get_by_text("1 antwoord wacht op verzending.")).to_be_visible()
    check("offline-settings")
    context.set_offline(False)
    assert len(checked) > 20
    assert page.js_errors == []


def test_a_diary_that_never_reached_the_phone_says_so_and_comes_by_itself(page: Page, context, server):
    # Joined, then the connection went before the questions came: no endless "Even geduld…".
    [patient] = server.enrol_many(1)
    join(page, patient["code"])
    context.set_offline(True)
    page.evaluate("self.Pijnwacht.store.del('kv', 'questionnaires')")
    page.reload()
    expect(
        page.get_by_text("De vragen van uw dagboek staan nog niet op deze telefoon.", exact=False)
    ).to_be_visible()
    page.get_by_role("button", name="Opnieuw proberen").click()
    expect(page.locator("#status")).to_have_text(
        "Nog geen internet. Het dagboek komt vanzelf zodra er internet is."
    )
    assert axe(page) == []
    context.set_offline(False)
    expect(page.locator('fieldset[data-item="pain_avg"]')).to_be_visible()
    expect(page.get_by_role("button", name="Opslaan")).to_be_visible()
    assert page.js_errors == []
