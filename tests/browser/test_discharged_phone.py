"""The patient's phone after the pain team discharged them ("afgemeld"): it says plainly that
the team ended the diary, and after a resume it works again as it was (no dead end)."""

from __future__ import annotations

import subprocess

from playwright.sync_api import expect

from tests.browser.conftest import PIJNWACHT, join

ENDED = "Het pijnteam heeft uw dagboek beëindigd"


def cli(server, *args: str) -> None:
    subprocess.run([str(PIJNWACHT), "patient", *args], env=server.env, check=True, capture_output=True)


def test_a_discharged_patients_phone_says_the_team_ended_the_diary(page, server, patient):
    join(page, patient["code"])
    cli(server, "discharge", patient["patient_id"])
    page.reload()  # the app asks the server for the profile: 401, the diary was ended
    expect(page.get_by_role("heading", name=ENDED)).to_be_visible()
    expect(page.get_by_text("U hoeft niets meer in te vullen.")).to_be_visible()
    assert "Meld u opnieuw aan met een nieuwe code" not in page.content()  # not "you were removed"
    expect(page.locator("#nav")).to_be_hidden()  # no diary screens behind it
    # Opened again later (the app from the home screen): it still says so.
    again = page.context.new_page()
    again.goto("/")
    expect(again.get_by_role("heading", name=ENDED)).to_be_visible()
    again.close()
    # The team follows the patient again: the same phone goes on with its diary.
    cli(server, "resume", patient["patient_id"])
    page.get_by_role("button", name="Opnieuw kijken").click()
    expect(page.get_by_role("heading", name="Dagboek")).to_be_visible()
    expect(page.get_by_role("heading", name=ENDED)).to_have_count(0)
    assert page.js_errors == []
