"""The PWA's outbox never resends a request the server refuses as a whole (review M2).

A 4xx for a whole batch (413 too large, 400 an item the server cannot read) used to be kept
and resent unchanged after every try, so one poisoned item stopped the phone's sync for good.
Now the app halves the batch until the item at fault stands alone; the rest arrives, and that
one stays in the outbox, marked with the server's reason, for the patient to see and remove.
"""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.conftest import join

QUEUE = """async (items) => {
  for (const [id, day, pain] of items) {
    const body = {questionnaire: 'diary', version: 1, authored_at: day + 'T20:15:00+01:00',
                  local_date: day, task_id: null, answers: {pain_avg: pain, pain_worst: pain}};
    await self.Pijnwacht.store.put('outbox', {id, body, queued_at: new Date().toISOString(),
                                              state: 'pending', attempts: 0, error: null});
  }
}"""


def test_a_batch_refused_whole_is_halved_until_the_bad_item_stands_alone(page, server, patient):
    join(page, patient["code"])
    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 6)]
    poison = ids[3]
    sizes = []

    def refuse_the_poison(route):
        items = json.loads(route.request.post_data)["responses"]
        sizes.append(len(items))
        if any(i["id"] == poison for i in items):
            route.fulfill(
                status=400,
                content_type="application/json",
                body=json.dumps({"status_code": 400, "detail": "Het verzoek klopt niet."}),
            )
        else:
            route.continue_()

    page.route("**/api/v1/responses:batch", refuse_the_poison)
    day = page.evaluate("new Date().toISOString().slice(0, 10)")
    page.evaluate(QUEUE, [[i, day, n] for n, i in enumerate(ids)])
    page.goto("/#/settings")
    page.get_by_role("button", name="Nu versturen").click()
    expect(
        page.get_by_text("De server kon dit antwoord niet verwerken: Het verzoek klopt niet.")
    ).to_be_visible()
    stored = {r["id"] for r in server.responses(patient["patient_id"])}
    assert stored == set(ids) - {poison}
    assert sizes[0] == 5 and sizes.count(1) >= 1
    # Asked again, nothing is resent: the refused item waits for the patient, not for the server.
    before = len(sizes)
    page.get_by_role("button", name="Nu versturen").click()
    page.wait_for_timeout(500)
    assert len(sizes) == before
    assert page.js_errors == []
