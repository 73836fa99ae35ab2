"""Severe drowsiness: the app says what to do at once, on the phone itself (offline too)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, axe, join, pick

QUEUED = "Opgeslagen op uw telefoon. Het wordt verstuurd zodra er internet is."
SENT = "Opgeslagen en verstuurd."


def save_diary(page, drowsiness: str, status: str) -> None:
    pick(page, "pain_avg", "5 van 10")
    pick(page, "pain_worst", "7 van 10")
    pick(page, "se_drowsiness", drowsiness)
    page.get_by_role("button", name="Opslaan").click()
    expect(page.locator("#status")).to_have_text(status)


def test_severe_drowsiness_on_the_opioid_pathway_shows_what_to_do_even_offline(page, context, server):
    [patient] = server.enrol_many(1, pathway="opioid")
    join(page, patient["code"])
    # Moderate drowsiness: saved, no advice.
    save_diary(page, "matig", SENT)
    expect(page.locator("#drowsy-dialog")).to_have_count(0)
    # Severe, with no internet: the advice comes from the phone itself.
    context.set_offline(True)
    save_diary(page, "ernstig", QUEUED)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="U bent erg suf. Let hier goed op.")).to_be_visible()
    expect(dialog.get_by_role("link", name="Bel 112")).to_have_attribute("href", "tel:112")
    for words in (
        "niet wakker blijven",
        "heel langzaam of onregelmatig",
        "lippen of nagels worden blauw",
        "niet wakker te krijgen",
        "huisartsenpost",
        "geen extra pijnstillers, ook geen noodmedicatie",
        "iemand om bij u te blijven",
        "Het pijnteam ziet uw antwoord niet meteen",
    ):
        expect(dialog).to_contain_text(words)
    assert axe(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "drowsiness-advice.png"))
    dialog.get_by_role("button", name="Ik heb dit gelezen").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    context.set_offline(False)
    stored = server.wait_for_responses(patient["patient_id"], 2)
    assert [r["answers"]["se_drowsiness"] for r in stored] == [2, 3]
    assert page.js_errors == []


def test_the_advice_is_in_english_for_an_english_patient_and_on_other_pathways_too(page, server):
    # Decided: on every pathway (the server's urgent alert is on every pathway, and so are
    # opioids, gabapentinoids and sleeping pills); here chronic pain, in English.
    [patient] = server.enrol_many(1, pathway="chronic-pain")
    join(page, patient["code"])
    with closing(sqlite3.connect(server.db)) as conn, conn:  # chose English, as PATCH /me stores it
        conn.execute("UPDATE patients SET language = 'en' WHERE id = ?", (patient["patient_id"],))
    page.reload()
    page.get_by_role("heading", name="Diary").wait_for()
    pick(page, "pain_avg", "5 of 10")
    pick(page, "pain_worst", "7 of 10")
    pick(page, "se_drowsiness", "severe")
    page.get_by_role("button", name="Save").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="You are very drowsy. Take this seriously.")).to_be_visible()
    expect(dialog.get_by_role("link", name="Call 112")).to_have_attribute("href", "tel:112")
    expect(dialog).to_contain_text("out-of-hours GP service (huisartsenpost)")
    assert page.js_errors == []
