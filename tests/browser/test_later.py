"""Less burden in the app: remind me later (from a task or the notification), a pause, my
own printable summary, and what to do when notifications are off."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.conftest import join, pick, push_to_worker

AMS = ZoneInfo("Europe/Amsterdam")


def open_task(server, patient_id: str, questionnaire: str = "phq9") -> int:
    """Make the patient's first task of `questionnaire` open now, with a window of two days."""
    now = datetime.now(AMS)
    utc = lambda d: d.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    [task] = server.query(
        "SELECT id FROM tasks WHERE patient_id = ? AND questionnaire_id = ? ORDER BY opens_at LIMIT 1",
        (patient_id, questionnaire),
    )
    server.execute(
        "UPDATE tasks SET status = 'open', opens_at = ?, expires_at = ?, next_reminder_at = NULL"
        " WHERE id = ?",
        (utc(now - timedelta(hours=1)), utc(now + timedelta(days=2)), task["id"]),
    )
    return task["id"]


def test_remind_me_later_from_the_task_list_and_from_the_notification(page, context, server, patient):
    join(page, patient["code"])
    task = open_task(server, patient["patient_id"])
    page.goto("/#/tasks")
    page.reload()
    page.wait_for_load_state("networkidle")  # the list is drawn again once the tasks arrive
    card = page.locator("li.card").filter(has_text="Vragen over uw stemming")
    card.get_by_role("button", name="Over 1 uur").click()
    expect(card.get_by_role("status")).to_have_text(re.compile("^U krijgt een herinnering op "))
    [row] = server.query("SELECT next_reminder_at FROM tasks WHERE id = ?", (task,))
    first = datetime.fromisoformat(row["next_reminder_at"].replace("Z", "+00:00"))
    assert first > datetime.now(AMS) + timedelta(minutes=55)

    # The reminder itself offers the same, and the service worker tells the server.
    [worker] = context.service_workers
    shown = worker.evaluate(
        """async (task) => {
        const push = {title: 'Pijnwacht', body: 'Er staat een vragenlijst voor u klaar.',
                      url: `/#/task/${task}`, tag: `task-${task}`};
        const {title, options} = notificationFor(push, 'nl');
        await self.registration.showNotification(title, options);
        const [n] = await self.registration.getNotifications();
        await snoozeFromNotification(n, 3);
        return n.actions.map((a) => a.title);
    }""",
        task,
    )
    assert shown == ["Over 1 uur", "Over 3 uur"]
    [row] = server.query("SELECT next_reminder_at FROM tasks WHERE id = ?", (task,))
    later = datetime.fromisoformat(row["next_reminder_at"].replace("Z", "+00:00"))
    # Three hours on (or, at night, when the quiet hours end): never sooner.
    assert later >= first and later >= datetime.now(AMS) + timedelta(hours=2, minutes=55)
    assert page.js_errors == []


def test_a_pause_from_the_settings_page(page, server, patient):
    join(page, patient["code"])
    page.goto("/#/settings")
    until = (datetime.now(AMS).date() + timedelta(days=10)).isoformat()
    page.get_by_label("Geen herinneringen tot en met").fill(until)
    page.get_by_role("button", name="Herinneringen pauzeren").click()
    expect(page.get_by_text(re.compile("^Herinneringen gepauzeerd tot en met "))).to_be_visible()
    assert (
        server.query("SELECT paused_until FROM patients WHERE id = ?", (patient["patient_id"],))[0][0]
        == until
    )
    page.get_by_role("button", name="Pauze beëindigen").click()
    expect(page.get_by_role("button", name="Herinneringen pauzeren")).to_be_visible()
    assert (
        server.query("SELECT paused_until FROM patients WHERE id = ?", (patient["patient_id"],))[0][0] is None
    )


def test_notifications_off_are_explained(page, patient):
    join(page, patient["code"])
    page.goto("/#/settings")
    expect(page.get_by_text("Meldingen staan uit: u krijgt geen herinneringen")).to_be_visible()


def test_my_summary_prints_on_at_most_two_a4_pages(page, server, patient):
    server.backdate(patient["patient_id"], 7)
    join(page, patient["code"])
    today = datetime.now(AMS).date()
    for offset, avg in ((-6, 6), (-5, 5), (-3, 4), (-1, 4), (0, 3)):
        day = (today + timedelta(days=offset)).isoformat()
        page.goto("/#/today" if offset == 0 else f"/#/today/{day}")
        expect(page.get_by_role("heading", name=re.compile("^Dagboek"))).to_be_visible()
        pick(page, "pain_avg", f"{avg} van 10")
        pick(page, "pain_worst", f"{avg + 2} van 10")
        page.get_by_role("button", name="Opslaan").click()
        expect(page.locator("#status")).to_have_text("Opgeslagen en verstuurd.")
    page.goto("/#/settings")
    page.get_by_role("link", name="Mijn overzicht om af te drukken").click()
    expect(page.get_by_role("heading", name=re.compile("^Mijn overzicht"))).to_be_visible()
    expect(page.get_by_role("button", name="Afdrukken")).to_be_visible()
    weeks = page.locator("table.weeks tbody tr")
    expect(weeks.first).to_contain_text("5/7")
    text = page.locator("main").inner_text()
    assert "null" not in text and "NaN" not in text
    page.emulate_media(media="print")
    assert page.locator("nav#nav").is_hidden() and page.get_by_role("button", name="Afdrukken").is_hidden()
    pdf = page.pdf(format="A4")
    assert 1 <= len(re.findall(rb"/Type\s*/Page[^s]", pdf)) <= 2
    assert page.js_errors == []


def test_the_phone_reports_a_reminder_shown_and_opened(page, context, server, patient):
    join(page, patient["code"])
    task = open_task(server, patient["patient_id"])
    payload = {
        "title": "Pijnwacht",
        "body": "Er staat een vragenlijst voor u klaar.",
        "url": f"/#/task/{task}",
        "tag": f"task-{task}",
    }
    push_to_worker(context, page, server, payload)

    def events() -> list[str]:
        return [
            r["event"]
            for r in server.query("SELECT event FROM push_receipts WHERE task_id = ? ORDER BY id", (task,))
        ]

    for _ in range(50):
        if events():
            break
        page.wait_for_timeout(100)
    assert events() == ["shown"]
    [worker] = context.service_workers
    worker.evaluate("""async () => {
        const [n] = await self.registration.getNotifications();
        self.dispatchEvent(new NotificationEvent('notificationclick', {notification: n}));
    }""")
    for _ in range(50):
        if len(events()) == 2:
            break
        page.wait_for_timeout(100)
    assert events() == ["shown", "opened"]
    # Nothing about health went with them: only the task and the event are stored.
    assert set(server.query("SELECT * FROM push_receipts")[0].keys()) == {
        "id",
        "patient_id",
        "task_id",
        "event",
        "at",
    }
