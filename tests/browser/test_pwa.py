"""The patient PWA in a real Chromium against the real server: join, diary, offline, push, a11y."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, axe, join, pick, push_to_worker, worker_registration

AMS = ZoneInfo("Europe/Amsterdam")


def today(offset: int = 0) -> str:
    return (datetime.now(AMS).date() + timedelta(days=offset)).isoformat()


def fill_diary(page: Page, avg: int, worst: int) -> None:
    pick(page, "pain_avg", f"{avg} van 10")
    pick(page, "pain_worst", f"{worst} van 10")


def save(page: Page, expected: str) -> None:
    page.get_by_role("button", name="Opslaan").click()
    expect(page.locator("#status")).to_have_text(expected)


SENT = "Opgeslagen en verstuurd."
QUEUED = "Opgeslagen op uw telefoon. Het wordt verstuurd zodra er internet is."


def test_join_with_code_and_save_the_diary(page, server, patient):
    # A wrong code: the server's explanation is shown, and nothing else happens.
    page.goto("/")
    page.get_by_label("Uw code").fill("ABCD-EFGH")
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.locator("#join-error")).not_to_be_empty()
    expect(page.get_by_role("heading", name="Aanmelden bij Pijnwacht")).to_be_visible()

    page.goto(f"/?code={patient['code'].lower()}")
    # The link's code is filled in, shown the way the letter shows it.
    expect(page.get_by_label("Uw code")).to_have_value(patient["code"])
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Welkom, Test")).to_be_visible()
    assert "code=" not in page.url  # a used code does not linger in the address bar
    page.get_by_label("Herinnering voor uw dagboek, elke dag om").fill("19:30")
    page.get_by_role("button", name="Klaar").click()
    expect(page.get_by_role("heading", name="Dagboek")).to_be_visible()
    assert (
        server.query("SELECT reminder_time FROM patients WHERE id = ?", (patient["patient_id"],))[0][0]
        == "19:30"
    )

    # Saving without the two required pain scores says what is missing.
    page.get_by_role("button", name="Opslaan").click()
    expect(page.get_by_role("alert").filter(has_text="Vul nog in")).to_be_visible()

    fill_diary(page, 6, 8)
    page.get_by_role("button", name="Meer: Hoeveel uur heeft u geslapen?").click()  # from the 7 shown
    pick(page, "se_nausea", "matig")
    page.get_by_role("button", name="Meer: Hoe vaak nam u extra (nood)medicatie tegen de pijn?").click()
    page.get_by_label("Wilt u nog iets kwijt? (niet voor spoed)").fill("Slecht weer")
    save(page, SENT)

    [stored] = server.responses(patient["patient_id"])
    assert stored["local_date"] == today()
    assert stored["answers"] == {
        "pain_avg": 6,
        "pain_worst": 8,
        "sleep_hours": 7.5,
        "se_nausea": 2,
        "rescue_doses": 1,
        "note": "Slecht weer",
    }
    # authored_at keeps the device's UTC offset (Amsterdam: +01:00 or +02:00).
    assert server.query("SELECT authored_at_client FROM responses WHERE id = ?", (stored["id"],))[0][0][
        -6:
    ] in ("+01:00", "+02:00")
    # The saved day opens with its answers, ready to be edited.
    page.reload()
    expect(page.get_by_text("U heeft deze dag al ingevuld")).to_be_visible()
    expect(page.locator('[data-item="pain_avg"]').get_by_role("radio", name="6 van 10")).to_be_checked()
    # The service worker serves the app shell, never in place of the clinic's pages.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.goto("/clinic/login")
    expect(page.locator("h1")).to_have_text("Inloggen")
    assert page.locator("form.diary").count() == 0
    assert page.js_errors == []


def test_offline_entries_reach_the_server_exactly_once(page, context, server, patient):
    server.backdate(patient["patient_id"], 3)
    join(page, patient["code"])
    fill_diary(page, 5, 7)
    save(page, SENT)

    context.set_offline(True)
    # 1: an edit of today — a new response for the same local_date.
    fill_diary(page, 4, 6)
    save(page, QUEUED)
    expect(page.get_by_text("U bent offline")).to_be_visible()
    # 2: yesterday, missed, filled in later.
    page.get_by_role("link", name="Gisteren invullen").click()
    expect(page.get_by_role("heading", name="Dagboek van")).to_be_visible()
    fill_diary(page, 7, 9)
    save(page, QUEUED)
    # 3: the day before, through the day picker.
    page.get_by_label("Kies een dag").select_option(today(-2))
    page.get_by_role("button", name="Toon").click()
    fill_diary(page, 3, 5)
    save(page, QUEUED)

    # Offline reload: the shell comes from the service worker, the outbox from IndexedDB.
    page.reload()
    expect(page.get_by_role("heading", name="Dagboek van")).to_be_visible()
    page.goto("/#/settings")
    expect(page.get_by_text("3 antwoorden wachten op verzending.")).to_be_visible()
    assert len(server.responses(patient["patient_id"])) == 1

    context.set_offline(False)
    # Coming back online sends the outbox by itself.
    assert len(server.wait_for_responses(patient["patient_id"], 4)) == 4
    expect(page.get_by_text("Alles is verstuurd.")).to_be_visible()
    # Sending again (and a restart) must not double anything.
    page.get_by_role("button", name="Nu versturen").click()
    expect(page.locator("#status")).to_have_text("0 verstuurd.")
    page.reload()
    page.wait_for_timeout(500)
    stored = server.responses(patient["patient_id"])
    assert len(stored) == 4
    assert len({r["id"] for r in stored}) == 4
    assert sorted(r["local_date"] for r in stored) == sorted([today(), today(), today(-1), today(-2)])
    current = {
        r["local_date"]: r["pain_avg"]
        for r in server.query(
            "SELECT local_date, json_extract(answers, '$.pain_avg') AS pain_avg FROM current_responses"
            " WHERE patient_id = ? AND questionnaire_id = 'diary'",
            (patient["patient_id"],),
        )
    }
    assert current == {today(): 4, today(-1): 7, today(-2): 3}
    assert page.js_errors == []


def test_a_server_error_keeps_the_answer_in_the_outbox(page, server, patient):
    join(page, patient["code"])
    calls = []

    def fail(route):
        calls.append(route.request.url)
        route.fulfill(
            status=500,
            content_type="application/json",
            body='{"status_code": 500, "detail": "Something went wrong"}',
        )

    page.route("**/api/v1/responses*", fail)
    fill_diary(page, 6, 7)
    save(page, QUEUED)
    assert calls, "the app did try to send"
    page.goto("/#/settings")
    expect(page.get_by_text("1 antwoord wacht op verzending.")).to_be_visible()
    page.get_by_role("button", name="Nu versturen").click()
    expect(page.locator("#status")).to_have_text(
        "De server is nu niet bereikbaar. Wij proberen het later opnieuw."
    )
    assert server.responses(patient["patient_id"]) == []

    page.unroute("**/api/v1/responses*")
    page.get_by_role("button", name="Nu versturen").click()
    # (the app may already have retried by itself: either way it arrives once)
    expect(page.locator("#status")).to_have_text(re.compile(r"^[01] verstuurd\.$"))
    expect(page.get_by_text("Alles is verstuurd.")).to_be_visible()
    assert [r["answers"]["pain_avg"] for r in server.responses(patient["patient_id"])] == [6]


# Headless Chromium cannot subscribe for real: in a Playwright context (incognito) the push
# service answers "permission denied", and a persistent profile waits for Google's push
# service, which the closed network never answers. So the page's PushManager.subscribe is
# replaced by a recorder that returns a well-formed subscription; everything else is real:
# the key fetched from the server, the POST, the service worker's push and click handlers.
FAKE_PUSH = """
(() => {
  const b64u = (bytes) => btoa(String.fromCharCode(...bytes))
    .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  let current = null;
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    // A real P-256 key, as a browser would make: the server checks it is on the curve.
    const pair = await crypto.subtle.generateKey({name: 'ECDH', namedCurve: 'P-256'}, true, ['deriveBits']);
    const p256dh = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    const auth = crypto.getRandomValues(new Uint8Array(16));
    window.__subscribed = {userVisibleOnly: options.userVisibleOnly, key: b64u(key)};
    const keys = {p256dh: b64u(p256dh), auth: b64u(auth)};
    current = {
      endpoint: 'https://push.invalid/send/' + b64u(crypto.getRandomValues(new Uint8Array(12))),
      options: {applicationServerKey: key.buffer, userVisibleOnly: true},
      toJSON() { return {endpoint: this.endpoint, expirationTime: null, keys}; },
      async unsubscribe() { current = null; return true; },
    };
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
})();
"""


def test_push_subscribes_with_the_server_key_and_a_push_opens_the_task(page, context, server, patient):
    page.add_init_script(FAKE_PUSH)
    page.goto(f"/?code={patient['code']}")
    page.get_by_role("button", name="Aanmelden").click()
    page.get_by_role("button", name="Meldingen toestaan").click()
    expect(page.get_by_text("Meldingen staan aan.")).to_be_visible()
    page.get_by_role("button", name="Klaar").click()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")

    token = page.evaluate("self.Pijnwacht.store.get('kv', 'token')")
    key = httpx.get(f"{server.url}/api/v1/push/key", headers={"Authorization": f"Bearer {token}"}).json()[
        "key"
    ]
    assert page.evaluate("window.__subscribed") == {"userVisibleOnly": True, "key": key}
    [sub] = server.query(
        "SELECT endpoint FROM push_subscriptions WHERE patient_id = ? AND deactivated_at IS NULL",
        (patient["patient_id"],),
    )
    assert sub["endpoint"].startswith("https://push.invalid/send/")

    # A push message as the push service would deliver it, straight into the service worker.
    [task] = server.query(
        "SELECT id FROM tasks WHERE patient_id = ? AND questionnaire_id = 'phq9' ORDER BY opens_at LIMIT 1",
        (patient["patient_id"],),
    )
    payload = {
        "title": "Pijnwacht",
        "body": "Er staat een vragenlijst voor u klaar.",
        "url": f"/#/task/{task['id']}",
        "tag": f"task-{task['id']}",
    }
    push_to_worker(context, page, server, payload)
    shown = """async () => (await (await navigator.serviceWorker.ready).getNotifications())
        .map(n => ({title: n.title, body: n.body, tag: n.tag, url: n.data.url}))"""
    for _ in range(50):
        if page.evaluate(shown):
            break
        page.wait_for_timeout(100)
    assert page.evaluate(shown) == [
        {"title": payload["title"], "body": payload["body"], "tag": payload["tag"], "url": payload["url"]}
    ]

    # Clicking it (the browser's event, fired in the worker) brings the app to that task.
    page.goto("/#/trend")
    expect(page.get_by_role("heading", name="Mijn verloop")).to_be_visible()
    [worker] = context.service_workers
    worker.evaluate("""async () => {
        const [n] = await self.registration.getNotifications();
        self.dispatchEvent(new NotificationEvent('notificationclick', {notification: n}));
    }""")
    expect(page).to_have_url(re.compile(f"#/task/{task['id']}(/0)?$"))
    expect(page.get_by_role("heading", name="PHQ-9", exact=False)).to_be_visible()

    # Turning notifications off removes the subscription on the server.
    page.goto("/#/settings")
    page.get_by_role("button", name="Meldingen uitzetten").click()
    expect(page.get_by_role("button", name="Meldingen toestaan")).to_be_visible()
    assert (
        server.query(
            "SELECT endpoint FROM push_subscriptions WHERE patient_id = ? AND deactivated_at IS NULL",
            (patient["patient_id"],),
        )
        == []
    )


def test_a_safety_answer_shows_crisis_contacts_at_once_even_offline(page, context, server, patient):
    join(page, patient["code"])
    [task] = server.query(
        "SELECT id FROM tasks WHERE patient_id = ? AND questionnaire_id = 'phq9' ORDER BY opens_at LIMIT 1",
        (patient["patient_id"],),
    )
    context.set_offline(True)
    page.goto("/#/tasks")
    page.get_by_role("link", name="Beginnen: Vragen over uw stemming (PHQ-9)").click()
    expect(page.get_by_text("Vraag 1 van")).to_be_visible()
    for n in range(8):
        page.get_by_role("radio", name="helemaal niet").check()
        page.get_by_role("button", name="Volgende").click()
        expect(page.get_by_text(f"Vraag {n + 2} van")).to_be_visible()
    # Resume later keeps the answers: leave at item 9, come back after a reload.
    page.get_by_role("link", name="Later verder").click()
    page.reload()
    page.get_by_role("link", name="Verder invullen: Vragen over uw stemming (PHQ-9)").click()
    expect(page.get_by_text("Vraag 9 van")).to_be_visible()
    page.get_by_role("radio", name="meerdere dagen").check()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("link", name="Bel 0800-0113")).to_have_attribute("href", "tel:08000113")
    expect(dialog.get_by_role("link", name="Direct gevaar? Bel 112")).to_have_attribute("href", "tel:112")
    expect(dialog).to_contain_text("huisartsenpost")
    assert axe(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "crisis.png"))
    dialog.get_by_role("button", name="Ik heb dit gelezen").click()
    # The contacts stay on the screen while the answer stands.
    expect(page.locator(".safety-slot")).to_contain_text("0800-0113")
    page.get_by_role("button", name="Volgende").click()
    page.get_by_role("radio", name="helemaal niet moeilijk").check()
    page.get_by_role("button", name="Versturen").click()
    expect(page.locator("#status")).to_contain_text("worden verstuurd zodra er internet is")
    context.set_offline(False)
    [stored] = server.wait_for_responses(patient["patient_id"], 1, "phq9")
    assert stored["answers"]["phq9_9"] == 1 and len(stored["answers"]) == 10
    assert server.query("SELECT task_id FROM responses WHERE id = ?", (stored["id"],))[0][0] == task["id"]


SCREENS = [
    ("join", None),
    ("setup", None),
    ("today", "/#/today"),
    ("yesterday", None),
    ("tasks", "/#/tasks"),
    ("questionnaire", None),
    ("trend", "/#/trend"),
    ("settings", "/#/settings"),
]


def test_every_screen_passes_axe_and_is_photographed(page, context, server, patient):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))

    def check(name: str) -> None:
        page.wait_for_timeout(150)  # let the focus move and live regions settle
        violations = axe(page)
        assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    server.backdate(patient["patient_id"], 3)
    page.goto(f"/?code={patient['code']}")
    expect(page.get_by_role("heading", name="Aanmelden bij Pijnwacht")).to_be_visible()
    check("join")
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Welkom, Test")).to_be_visible()
    check("setup")
    page.get_by_role("button", name="Klaar").click()
    expect(page.get_by_role("heading", name="Dagboek")).to_be_visible()
    # Some history for the trend: the last days, filled in through the app.
    for offset, (avg, worst) in [(-3, (6, 8)), (-2, (5, 7)), (-1, (4, 7))]:
        page.goto(f"/#/today/{today(offset)}")
        expect(page.get_by_role("heading", name="Dagboek van")).to_be_visible()
        fill_diary(page, avg, worst)
        page.get_by_role("button", name="Meer: Hoeveel uur heeft u geslapen?").click()
        pick(page, "activity", f"{avg - 1} van 10")
        save(page, SENT)
        if offset == -1:
            check("yesterday")
    page.goto("/#/today")
    expect(page.get_by_role("heading", name="Dagboek")).to_be_visible()
    fill_diary(page, 5, 8)
    check("today")
    for name, url in SCREENS:
        if url and name != "today":
            page.goto(url)
            page.locator("h1").wait_for()
            check(name)
    page.goto("/#/tasks")
    page.get_by_role("link", name="Beginnen: Vragen over uw stemming (PHQ-9)").click()
    page.get_by_role("radio", name="meerdere dagen").check()
    check("questionnaire")
    page.goto("/#/trend")
    expect(page.locator("svg.chart path.line")).to_have_count(3)  # pain avg, worst, activity
    expect(page.locator("svg.chart rect")).to_have_count(3)  # sleep bars
    # 200 % zoom (half the width): still no violations, nothing cut off sideways.
    page.set_viewport_size({"width": 195, "height": 422})
    for url in ("/#/today", "/#/tasks", "/#/trend", "/#/settings"):
        page.goto(url)
        page.locator("h1").wait_for()
        page.wait_for_timeout(150)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), url
        assert axe(page) == [], url
    assert page.js_errors == []
    # No request ever left the server's origin (no CDN, no fonts, no analytics).
    assert requests and [u for u in requests if not u.startswith((server.url, "data:", "blob:"))] == []


def test_settings_conflict_download_language_and_leave(page, server, patient):
    join(page, patient["code"])
    fill_diary(page, 6, 8)
    save(page, SENT)
    [stored] = server.responses(patient["patient_id"])

    # Same UUID, other content (a bug or a tampered phone): the server refuses with a
    # conflict; the app keeps the answer, marked, until the patient removes it.
    page.evaluate(
        """async (id) => {
        const item = (await self.Pijnwacht.store.get('history', id));
        const body = {questionnaire: 'diary', version: 1, authored_at: item.authored_at,
                      local_date: item.local_date, task_id: null, answers: {pain_avg: 1, pain_worst: 2}};
        await self.Pijnwacht.store.put('outbox', {id, body, queued_at: new Date().toISOString(),
                                                  state: 'pending', attempts: 0, error: null});
    }""",
        stored["id"],
    )
    page.goto("/#/settings")
    page.get_by_role("button", name="Nu versturen").click()
    expect(page.get_by_text("De server heeft al andere antwoorden onder dit nummer.")).to_be_visible()
    assert server.responses(patient["patient_id"])[0]["answers"]["pain_avg"] == 6
    assert axe(page) == []
    page.get_by_role("button", name="Verwijderen: Dagboek van", exact=False).click()
    expect(page.get_by_text("Alles is verstuurd.")).to_be_visible()

    # Right of access: the patient's own data as a CSV file.
    with page.expect_download() as download:
        page.get_by_role("button", name="Mijn gegevens downloaden (CSV)").click()
    assert download.value.suggested_filename.endswith(".csv")
    assert stored["id"] in Path(download.value.path()).read_text(encoding="utf-8-sig")

    # English, saved on the server, and the whole app follows.
    page.get_by_role("radio", name="English").check()
    page.get_by_role("button", name="Instellingen opslaan").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Today")).to_be_visible()
    assert server.query("SELECT language FROM patients WHERE id = ?", (patient["patient_id"],))[0][0] == "en"
    assert axe(page) == []

    # Leaving removes this device: its token no longer works, the join screen is back.
    token = page.evaluate("self.Pijnwacht.store.get('kv', 'token')")
    page.get_by_role("button", name="Remove device").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, remove").click()
    expect(page.get_by_role("heading", name="Join Pijnwacht")).to_be_visible()
    gone = httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
    assert page.evaluate("self.Pijnwacht.store.get('kv', 'token')") is None
    assert page.js_errors == []


def test_background_sync_sends_the_outbox_with_the_app_closed(context, server, patient):
    page = context.new_page()
    join(page, patient["code"])
    context.set_offline(True)
    fill_diary(page, 7, 9)
    save(page, QUEUED)
    page.close()  # the patient puts the phone away: no page left to send anything
    context.set_offline(False)

    # The browser fires the `sync` event when the network is back; DevTools can fire it too.
    probe = context.new_page()
    cdp, registration = worker_registration(context, probe)
    assert server.responses(patient["patient_id"]) == []
    cdp.send(
        "ServiceWorker.dispatchSyncEvent",
        {
            "origin": server.url,
            "registrationId": registration,
            "tag": "pijnwacht-outbox",
            "lastChance": False,
        },
    )
    [stored] = server.wait_for_responses(patient["patient_id"], 1)
    assert stored["answers"] == {"pain_avg": 7, "pain_worst": 9}
