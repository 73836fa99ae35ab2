"""The clinician inbox: triage, acknowledge, assign, note, resolve, CSV — all audit-logged."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from backend.alerts import store as alerts_store
from backend.patients import enrolment
from backend.patients import store as patients_store
from backend.platform import formatting
from tests.conftest import PASSWORD, add_clinician, diary, enrol_patient, login, new_id

AMS = ZoneInfo("Europe/Amsterdam")


def report_drowsy(client, headers):
    today = datetime.now(AMS).date()
    r = client.put(
        f"/api/v1/responses/{new_id()}",
        headers=headers,
        json=diary(today.isoformat(), se_drowsiness=3),
    )
    assert r.status_code == 201, r.text


def test_severe_drowsiness_reaches_the_inbox_before_the_answer_returns(client, clinician, patient):
    _pid, headers = patient
    report_drowsy(client, headers)
    page = client.get("/clinic/inbox")
    assert page.status_code == 200
    assert "ernstige sufheid" in page.text and "urgent" in page.text


def test_acknowledge_note_assign_resolve_are_audited_and_need_csrf(client, clinician, patient, services):
    pid, headers = patient
    report_drowsy(client, headers)
    alert_id = services.db.query_one("SELECT id FROM alerts")["id"]
    r = client.post(f"/clinic/alerts/{alert_id}/acknowledge", data={"csrf_token": "wrong"})
    assert r.status_code == 403
    assert services.db.query_one("SELECT status FROM alerts")["status"] == "open"
    r = client.post(
        f"/clinic/alerts/{alert_id}/acknowledge", data={"csrf_token": clinician}, follow_redirects=False
    )
    assert r.status_code == 303
    user_id = services.db.query_one("SELECT id FROM users")["id"]
    client.post(
        f"/clinic/alerts/{alert_id}/assign", data={"csrf_token": clinician, "assigned_to": str(user_id)}
    )
    client.post(
        f"/clinic/alerts/{alert_id}/note", data={"csrf_token": clinician, "text": "Gebeld: dosis verlaagd"}
    )
    client.post(
        f"/clinic/alerts/{alert_id}/resolve", data={"csrf_token": clinician, "outcome": "changed_medication"}
    )
    row = services.db.query_one("SELECT * FROM alerts")
    assert (row["status"], row["outcome"], row["assigned_to"]) == ("resolved", "changed_medication", user_id)
    detail = client.get(f"/clinic/alerts/{alert_id}")
    assert "Gebeld: dosis verlaagd" in detail.text and "medicatie aangepast" in detail.text
    actions = [
        r["action"]
        for r in services.db.query("SELECT action FROM audit_log WHERE patient_id = ? ORDER BY id", (pid,))
    ]
    for action in ("acknowledge_alert", "assign_alert", "note_alert", "resolve_alert", "view_alert"):
        assert action in actions
    # Resolved alerts leave the default inbox; the status filter finds them.
    assert "ernstige sufheid" not in client.get("/clinic/inbox").text
    assert "ernstige sufheid" in client.get("/clinic/inbox?status=resolved").text


def test_inbox_sorts_urgent_first_and_filters(client, clinician, patient, other_patient, services):
    _pid, headers = patient
    _other, other_headers = other_patient
    today = datetime.now(AMS).date()
    for i in range(3):
        day = (today - timedelta(days=i)).isoformat()
        r = client.put(
            f"/api/v1/responses/{new_id()}", headers=other_headers, json=diary(day, se_constipation=2)
        )
        assert r.status_code == 201
    report_drowsy(client, headers)
    text = client.get("/clinic/inbox").text
    assert text.index("ernstige sufheid") < text.index("obstipatie")
    only = client.get("/clinic/inbox?severity=routine").text
    assert "obstipatie" in only and "ernstige sufheid" not in only


def _assigned_and_referred(client, clinician, patient, services) -> None:
    """An urgent drowsiness alert, assigned to the nurse and resolved as referred."""
    _pid, headers = patient
    report_drowsy(client, headers)
    alert_id = services.db.query_one("SELECT id FROM alerts")["id"]
    user_id = services.db.query_one("SELECT id FROM users")["id"]
    client.post(
        f"/clinic/alerts/{alert_id}/assign", data={"csrf_token": clinician, "assigned_to": str(user_id)}
    )
    client.post(f"/clinic/alerts/{alert_id}/resolve", data={"csrf_token": clinician, "outcome": "referred"})


def test_alerts_csv_has_the_contract_header_then_status_assignee_and_outcome(
    client, clinician, patient, services
):
    _assigned_and_referred(client, clinician, patient, services)
    r = client.get("/clinic/alerts.csv?status=all")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == [
        *["patient_id", "rule_id", "category", "severity", "opened_on", "reason"],
        *["status", "assigned_to", "outcome"],
    ]
    assert rows[1][1:4] == ["drowsiness_severe", "side_effect", "urgent"]
    assert rows[1][6:] == ["resolved", "nurse", "referred"]


def test_alerts_csv_for_dutch_excel_has_dutch_columns_and_words_and_its_own_name(
    client, clinician, patient, services
):
    _assigned_and_referred(client, clinician, patient, services)
    inbox = client.get("/clinic/inbox?status=all").text
    assert 'href="/clinic/alerts.csv?dialect=nl&amp;status=all"' in inbox
    assert 'href="/clinic/alerts.csv?dialect=standard&amp;status=all"' in inbox
    r = client.get("/clinic/alerts.csv?dialect=nl&status=all")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    today = datetime.now(AMS).date().isoformat()
    assert f'filename="meldingen-{today}-excel.csv"' in r.headers["content-disposition"]
    assert b"\r\n" in r.content
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [
        *["patiënt", "naam / pseudoniem", "melding", "soort", "ernst", "geopend op", "reden"],
        *["status", "toegewezen aan", "uitkomst"],
    ]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["naam / pseudoniem"] == "Mevr. Jansen" and row["geopend op"] == today
    assert (row["melding"], row["soort"], row["ernst"]) == ("ernstige sufheid", "bijwerking", "urgent")
    assert row["reden"].startswith("ernstige sufheid gemeld (3 van 3) op ")
    assert (row["status"], row["toegewezen aan"], row["uitkomst"]) == (
        "afgehandeld",
        "nurse",
        "doorverwezen (huisarts/crisisdienst)",
    )
    plain = client.get("/clinic/alerts.csv?dialect=standard&status=all")
    assert f'filename="meldingen-{today}.csv"' in plain.headers["content-disposition"]
    assert plain.text.startswith("patient_id,rule_id,")
    assert client.get("/clinic/alerts.csv?dialect=xx").status_code == 400


def test_a_patient_with_several_alerts_in_the_list_has_a_link_to_them_together(
    client, clinician, patient, other_patient, services
):
    pid, headers = patient
    other_pid, other_headers = other_patient
    report_drowsy(client, headers)
    report_drowsy(client, other_headers)
    # A routine alert of the first patient: the severity order puts the other patient between.
    services.db.write_sync(
        lambda conn: alerts_store.open_alert(
            conn,
            pid,
            rule_id="side_effect_persistent.se_nausea",
            category="side_effect",
            severity="routine",
            day=datetime.now(AMS).date().isoformat(),
            reason="misselijkheid minstens matig (2 van 3) al 5 dagen achter elkaar",
            level=None,
            at="2026-01-01T08:00:00Z",
        )
    )
    # A second patient called Mevr. Jansen, with an alert of her own.
    twin, twin_headers = enrol_patient(services, client, name="Mevr. Jansen")
    report_drowsy(client, twin_headers)
    inbox = client.get("/clinic/inbox?category=side_effect").text
    # The link is by patient (two can share a name), and no id is shown as text.
    link = f'href="/clinic/inbox?category=side_effect&amp;patient_id={pid}"'
    assert inbox.count(link) == 2 and "2 meldingen, samen tonen" in inbox
    assert f"patient_id={other_pid}" not in inbox and f"patient_id={twin}" not in inbox  # one alert: no link
    shown = re.sub(r"<[^>]+>", " ", inbox)
    assert pid not in shown and twin not in shown
    # The two of the same name are told apart by the day each was enrolled; the other is not.
    assert len(re.findall(r"Mevr\. Jansen</a> <span[^>]*>\(aangemeld \d+ \w+\.? \d{4}\)", inbox)) == 3
    assert not re.search(r"de Vries</a> <span[^>]*>\(aangemeld", inbox)
    only = client.get(f"/clinic/inbox?category=side_effect&patient_id={pid}").text
    assert only.count('data-alert="') == 2 and "Dhr. de Vries" not in only
    assert all(f'href="/clinic/patients/{pid}"' in row for row in only.split('data-alert="')[1:])


def test_an_open_alert_of_a_discharged_patient_says_so(client, clinician, patient, other_patient, services):
    pid, headers = patient
    _other, other_headers = other_patient
    report_drowsy(client, headers)
    report_drowsy(client, other_headers)
    services.db.write_sync(lambda conn: enrolment.discharge(conn, pid, "verhuisd"))
    inbox = client.get("/clinic/inbox").text
    rows = {row.split('"', 1)[0]: row for row in inbox.split('data-alert="')[1:]}
    mine = [row for row in rows.values() if f'href="/clinic/patients/{pid}"' in row]
    theirs = [row for row in rows.values() if f'href="/clinic/patients/{pid}"' not in row]
    assert mine and all("patiënt afgemeld" in row for row in mine)
    assert theirs and not any("patiënt afgemeld" in row for row in theirs)
    alert_id = next(k for k, row in rows.items() if row in mine)
    assert "patiënt afgemeld" in client.get(f"/clinic/alerts/{alert_id}").text


def test_the_nurse_may_order_the_inbox_newest_or_longest_waiting_first(client, clinician, patient, services):
    pid, headers = patient
    report_drowsy(client, headers)  # urgent, opened now

    def routine(day: str, at: str, reason: str) -> None:
        services.db.write_sync(
            lambda conn: alerts_store.open_alert(
                conn,
                pid,
                rule_id=f"side_effect_persistent.se_{reason}",
                category="side_effect",
                severity="routine",
                day=day,
                reason=reason,
                level=None,
                at=at,
            )
        )

    routine("2026-01-01", "2026-01-01T08:00:00Z", "nausea")
    routine("2026-02-01", "2026-02-01T08:00:00Z", "dizziness")

    def order(query: str) -> list[str]:
        text = client.get(f"/clinic/inbox{query}").text
        return sorted(("ernstige sufheid", "nausea", "dizziness"), key=text.index)

    assert order("") == ["ernstige sufheid", "nausea", "dizziness"]  # most urgent first
    assert order("?order=newest") == ["ernstige sufheid", "dizziness", "nausea"]
    assert order("?order=oldest") == ["nausea", "dizziness", "ernstige sufheid"]
    page = client.get("/clinic/inbox?order=oldest").text
    assert '<option value="oldest" selected>langst wachtend eerst</option>' in page
    assert "order=oldest" in page.split("CSV voor Excel")[0].rsplit("href=", 1)[1]  # the CSV too
    assert order("?order=nonsense") == order("")


def test_inbox_needs_a_session(client):
    assert client.get("/clinic/inbox", follow_redirects=False).status_code in (302, 303, 401)
    assert client.get("/clinic/alerts.csv", follow_redirects=False).status_code in (302, 303, 401)


def test_patient_page_draws_the_charts_and_lists_alerts_with_reasons(client, clinician, patient, services):
    pid, headers = patient
    today = datetime.now(AMS).date()
    for i in range(10, 0, -1):
        day = (today - timedelta(days=i)).isoformat()
        assert (
            client.put(
                f"/api/v1/responses/{new_id()}", headers=headers, json=diary(day, pain_avg=4, rescue_doses=1)
            ).status_code
            == 201
        )
    report_drowsy(client, headers)
    r = client.get(f"/clinic/patients/{pid}")
    assert r.status_code == 200
    assert r.text.count("<svg") == 4 and "ernstige sufheid" in r.text
    # No mood, activity or sleep quality in these diaries: a sentence, not empty axes.
    assert r.text.count("Nog geen gegevens in deze periode.") == 1
    # Counts and whole scores read whole: "noodmedicatie 1 keer", never "1,0 keer".
    assert "noodmedicatie 1 keer" in r.text and "gemiddelde pijn 4," in r.text
    assert "1,0 keer" not in r.text and "gemiddelde pijn 4,0" not in r.text
    # Charts are drawn on the server: no inline script (the CSP forbids it), only our own files.
    scripts = re.findall(r"<script[^>]*>", r.text)
    assert all(re.search(r'src="/clinic/static/[\w.-]+\.js"', tag) for tag in scripts), scripts
    actions = [
        x["action"] for x in services.db.query("SELECT action FROM audit_log WHERE patient_id = ?", (pid,))
    ]
    assert "view_patient" in actions
    assert client.get("/clinic/patients/nobody").status_code == 404


def test_a_long_inbox_comes_in_pages_keeping_the_filters(client, clinician, patient, services):
    pid, _headers = patient

    def add(conn):
        for n in range(130):
            alerts_store.open_alert(
                conn,
                pid,
                rule_id=f"rule_{n}",
                category="pain",
                severity="high",
                day="2026-11-01",
                reason=f"reden {n}",
                level=None,
                at=f"2026-11-01T{n // 60:02d}:{n % 60:02d}:00Z",
            )

    services.db.write_sync(add)
    first = client.get("/clinic/inbox", params={"severity": "high"})
    assert first.text.count('class="sev-high"') == 100
    assert "offset=100" in first.text and "severity=high" in first.text
    second = client.get("/clinic/inbox", params={"severity": "high", "offset": 100})
    assert second.text.count('class="sev-high"') == 30
    assert "Meldingen 101–130" in second.text and "Volgende" not in second.text


def put(client, headers, day, **answers) -> None:
    r = client.put(f"/api/v1/responses/{new_id()}", headers=headers, json=diary(day.isoformat(), **answers))
    assert r.status_code == 201, r.text


def test_an_acknowledged_alert_that_gets_materially_worse_comes_back_as_new(
    client, clinician, patient, services
):
    pid, headers = patient
    today = datetime.now(AMS).date()
    # Enrolled ten weeks ago, so that the diary may go back that far.
    since = (today - timedelta(days=75)).isoformat()
    services.db.write_sync(
        lambda conn: (
            patients_store.set_enrolled_at(conn, pid, f"{since}T08:00:00Z"),
            patients_store.update(conn, pid, {"anchor_date": since}),
        )
    )
    for i in range(70, 7, -1):
        put(client, headers, today - timedelta(days=i), pain_avg=(3, 4, 3, 3, 4)[i % 5], pain_worst=5)
    for i in range(7, 3, -1):
        put(client, headers, today - timedelta(days=i), pain_avg=7, pain_worst=8)
    (first,) = services.db.query("SELECT * FROM alerts WHERE rule_id = 'pain_rise'")
    client.post(f"/clinic/alerts/{first['id']}/acknowledge", data={"csrf_token": clinician})
    client.get(f"/clinic/patients/{pid}")  # the team looks: the app says so
    assert client.get("/api/v1/me", headers=headers).json()["team_seen_at"]
    # The level now is the mean of the window's fewest entries (4): four days at 10.
    for i in range(3, -1, -1):
        put(client, headers, today - timedelta(days=i), pain_avg=10, pain_worst=10)
    old, new = services.db.query("SELECT * FROM alerts WHERE rule_id = 'pain_rise' ORDER BY id")
    assert old["status"] == "closed" and old["acknowledged_at"]
    assert new["status"] == "open" and new["acknowledged_at"] is None
    assert "sinds" in new["reason"] and "gestegen van 7,0 naar 10" in new["reason"]
    # Dates in a reason as the pages write them (Babel's "3 dec."), never "03-12-2026".
    month = r"\d{1,2} (jan|feb|mrt|apr|mei|jun|jul|aug|sep|okt|nov|dec)\.?"
    assert re.search(rf"sinds {month} gestegen van 7,0 naar 10", new["reason"]), new["reason"]
    assert not re.search(r"\d\d-\d\d-\d{4}", new["reason"] + old["reason"])
    # An older high alert waiting longer: the news still comes first within its severity.
    services.db.write_sync(
        lambda conn: alerts_store.open_alert(
            conn,
            pid,
            rule_id="questionnaire.odi.odi",
            category="questionnaire",
            severity="high",
            day="2026-01-01",
            reason="oudere melding",
            level=None,
            at="2026-01-01T08:00:00Z",
        )
    )
    inbox = client.get("/clinic/inbox").text
    assert new["severity"] == "high" and "In behandeling nemen" in inbox
    assert 0 < inbox.index(new["reason"]) < inbox.index("oudere melding")
    # The team has not seen the news: the app must not say it has.
    assert client.get("/api/v1/me", headers=headers).json()["team_seen_at"] is None
    put(client, headers, today, pain_avg=10, pain_worst=10)  # more of the same: no new alert
    rows = services.db.query("SELECT reason FROM alerts WHERE rule_id = 'pain_rise' ORDER BY id")
    assert len(rows) == 2 and "gestegen van 7,0 naar 10" in rows[1]["reason"]  # the news stays
    assert "opnieuw gemeld, erger" in client.get(f"/clinic/patients/{pid}").text


def test_alerts_that_closed_by_themselves_say_whether_anyone_saw_them(client, clinician, patient, services):
    from backend.alerts import lifecycle as alerts

    pid, headers = patient
    today = datetime.now(AMS).date()
    for i in range(2, -1, -1):
        put(client, headers, today - timedelta(days=i), se_constipation=2)
    report_drowsy(client, headers)
    rows = {r["rule_id"]: r for r in services.db.query("SELECT * FROM alerts")}
    assert set(rows) >= {"side_effect_persistent.se_constipation", "drowsiness_severe"}
    later = datetime.now(AMS) + timedelta(days=60)
    alerts.sweep(services.db, services.settings, later, services.library, services.pathways)
    status = {r["rule_id"]: r["status"] for r in services.db.query("SELECT * FROM alerts")}
    # The urgent one waits for a clinician, however long its condition has been clear.
    assert status["side_effect_persistent.se_constipation"] == "closed"
    assert status["drowsiness_severe"] == "open"
    assert "ernstige sufheid" in client.get("/clinic/inbox").text
    client.post(
        f"/clinic/alerts/{rows['drowsiness_severe']['id']}/acknowledge", data={"csrf_token": clinician}
    )
    alerts.sweep(
        services.db, services.settings, later + timedelta(days=1), services.library, services.pathways
    )
    page = client.get(f"/clinic/patients/{pid}").text
    assert page.count("vanzelf gesloten, niet gezien") == 1  # constipation: nobody looked
    assert page.count("vanzelf gesloten") == 2  # drowsiness: acknowledged, then clear
    detail = client.get(f"/clinic/alerts/{rows['drowsiness_severe']['id']}").text
    assert "vanzelf gesloten, niet gezien" in detail  # the history lists the other one


def test_a_held_pain_alerts_chart_shows_the_baseline_its_reason_states(client, clinician, services):
    """The reason is rewritten while weaker evidence holds the alert open (its day of last
    evidence stays): the chart's baseline is the reason's, for the reason's day, not the
    baseline of the day of last evidence (the tester saw "baseline 3,8" over "baseline 3,7").
    Each day is received on its own evening, as in the clinic (and the demo)."""
    from datetime import UTC, time

    from backend import intake
    from backend.diary import responses
    from backend.diary.responses import ResponseIn
    from backend.patients import enrolment

    today = datetime.now(AMS).date()
    start = today - timedelta(days=70)
    patient, _code, _exp = services.db.write_sync(
        lambda conn: enrolment.create_patient(
            conn,
            display_name="Mevr. Baseline",
            pathway_id="chronic-pain",
            known_pathways=services.pathway_ids,
            anchor_date=start,
            now=datetime.combine(start, time(9), UTC),
        )
    )
    for i in range(70, -1, -1):
        d = today - timedelta(days=i)
        pain = (2, 5, 3, 2, 6, 3, 4)[i % 7] + (i < 40) if i > 10 else 8 if i > 5 else 4
        written = datetime.combine(d, time(20, 15), patient.zone)
        body = ResponseIn(
            questionnaire="diary",
            version=1,
            authored_at=written.isoformat(),
            local_date=d.isoformat(),
            answers={"pain_avg": pain, "pain_worst": min(10, pain + 1)},
        )
        checked = responses.check(new_id(), body, patient, services.library, written)
        services.db.write_sync(
            lambda conn, c=checked, w=written: intake.receive(
                conn, patient, [c], library=services.library, pathways=services.pathways, now=w
            )
        )
    (alert,) = services.db.query("SELECT * FROM alerts WHERE rule_id = 'pain_rise' AND status = 'open'")
    page = client.get(f"/clinic/alerts/{alert['id']}").text
    stated = re.search(r"baseline (\d+,\d)", alert["reason"]).group(1)
    charted = re.findall(r">baseline (\d+,\d)</text>", page)
    assert alert["last_evidence_on"] < today.isoformat()
    assert charted == [stated], (charted, alert["reason"])


def test_a_side_effect_alerts_page_charts_that_side_effects_days(client, clinician, patient, services):
    """A severe-drowsiness alert is about drowsiness: its page charts the days of drowsiness
    (geen/licht/matig/ernstig) and says what the chart shows, not only the pain."""
    _pid, headers = patient
    report_drowsy(client, headers)
    (alert,) = services.db.query("SELECT * FROM alerts WHERE rule_id = 'drowsiness_severe'")
    page = client.get(f"/clinic/alerts/{alert['id']}").text
    today = datetime.now(AMS).date()
    side = page[page.index("geen, licht, matig of ernstig") : page.index("<h2>Pijn,")]
    assert "sufheid ernstig" in side  # the day's value, as its column reads it
    assert 'aria-label="sufheid per dag' in side.lower() or "sufheid per dag" in side.lower()
    assert today.isoformat() not in side  # dates as Dutch words


def test_escalating_rescue_use_on_the_opioid_pathway_reaches_the_inbox_with_its_own_chart(
    client, clinician, services
):
    """Product: the opioid pathway alerts on escalating rescue use. A patient whose pain stays
    the same but who needs rescue medication three times a day instead of once gets one alert
    (the pain alert: rescue medication is taken for pain), whose page charts the doses per day."""
    today = datetime.now(AMS).date()
    since = (today - timedelta(days=60)).isoformat()

    def eight_weeks_of_diary(name: str, pathway: str) -> str:
        pid, headers = enrol_patient(services, client, name=name, pathway=pathway)
        services.db.write_sync(
            lambda conn: (
                patients_store.set_enrolled_at(conn, pid, f"{since}T08:00:00Z"),
                patients_store.update(conn, pid, {"anchor_date": since}),
            )
        )
        for i in range(56, -1, -1):
            doses = (1, 0, 1, 2, 1)[i % 5] if i > 5 else (3, 4, 3)[i % 3]
            put(client, headers, today - timedelta(days=i), pain_avg=(4, 5, 4, 3)[i % 4], rescue_doses=doses)
        return pid

    pid = eight_weeks_of_diary("Dhr. Opioïd", "opioid")
    (alert,) = services.db.query("SELECT * FROM alerts WHERE patient_id = ?", (pid,))
    # More rescue medication is more pain: the pain alert, its reason the doses.
    assert (alert["rule_id"], alert["category"]) == ("pain_rise", "pain")
    assert (
        alert["reason"].startswith("noodmedicatie gemiddeld ") and "tegenover baseline 1,0" in alert["reason"]
    )
    assert "noodmedicatie gemiddeld" in client.get("/clinic/inbox").text
    page = client.get(f"/clinic/alerts/{alert['id']}").text
    chart = page[page.index("hoe vaak de patiënt extra (nood)medicatie nam") : page.index("<h2>Pijn,")]
    assert "noodmedicatie per dag (keer)" in chart and "rescue_doses" not in chart
    assert "gebruikelijk 1,0 keer per dag" in chart  # the usual level the reason states
    # On the chronic-pain pathway the same diary is no alert: rescue use is the opioid team's.
    other = eight_weeks_of_diary("Mevr. Chronisch", "chronic-pain")
    assert not services.db.query("SELECT * FROM alerts WHERE patient_id = ?", (other,))


def test_the_demo_clinics_diaries_have_mood_activity_and_sleep_quality_to_chart(client, clinician, services):
    """The diary asks mood, activity and sleep quality: the demo patients answer them too, so
    the timeline's chart of them is not empty for every demo patient."""
    from backend.tools import demo

    demo.fill_demo_cohort(services, patients=1, days=40)
    (row,) = services.db.query("SELECT id FROM patients WHERE display_name = ?", (demo.DEMO_NAMES[0],))
    page = client.get(f"/clinic/patients/{row['id']}").text
    assert "Nog geen gegevens in deze periode." not in page
    for name in ("stemming", "activiteit", "slaapkwaliteit"):
        assert re.search(rf"{name} \d+[,<]", page), name


# -- the tester's findings (second wave) -------------------------------------------------------
REFRESH = {"X-Pijnwacht-Refresh": "1"}


def test_the_automatic_refresh_does_not_keep_the_session_alive(client, clinician, services):
    from backend.platform.storage import iso, utcnow

    settings = services.settings
    # Ten minutes quiet: a nurse's own click moves the idle clock on, a refresh does not.
    quiet = iso(utcnow() - timedelta(minutes=10))
    services.db.write_sync(lambda conn: conn.execute("UPDATE sessions SET last_seen_at = ?", (quiet,)))
    assert client.get("/clinic/inbox", headers=REFRESH).status_code == 200
    assert services.db.query_one("SELECT last_seen_at FROM sessions")["last_seen_at"] == quiet
    client.get("/clinic/inbox")
    assert services.db.query_one("SELECT last_seen_at FROM sessions")["last_seen_at"] > quiet
    # Idle past the limit: the refresh is sent to sign in, and that sign-in comes back here.
    idle = iso(utcnow() - timedelta(minutes=settings.session_idle_minutes + 1))
    services.db.write_sync(lambda conn: conn.execute("UPDATE sessions SET last_seen_at = ?", (idle,)))
    r = client.get("/clinic/inbox?severity=urgent", headers=REFRESH, follow_redirects=False)
    assert r.status_code in (302, 303)
    assert r.headers["location"] == "/clinic/login?next=%2Fclinic%2Finbox%3Fseverity%3Durgent"


def test_refreshes_do_not_flood_the_audit_log_but_a_page_load_still_audits(
    client, clinician, patient, services
):
    _pid, headers = patient
    report_drowsy(client, headers)

    def viewed():
        return services.db.query_one("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'list_alerts'")["n"]

    client.get("/clinic/inbox")
    assert viewed() == 1
    for _ in range(3):
        assert client.get("/clinic/inbox", headers=REFRESH).status_code == 200
    assert viewed() == 1  # the same row for the same patient, within the hour: not again
    client.get("/clinic/inbox")
    assert viewed() == 2  # an explicit page load is audited every time (issue 13)
    client.get("/clinic/inbox?severity=urgent", headers=REFRESH)
    assert viewed() == 3  # another list (other filters) is another row


def test_who_did_what_is_one_list_in_time_order_with_who_and_when(client, clinician, patient, services):
    from backend.platform.storage import iso, parse_iso

    report_drowsy(client, patient[1])
    alert_id = services.db.query_one("SELECT id FROM alerts")["id"]
    user_id = services.db.query_one("SELECT id FROM users")["id"]
    token = {"csrf_token": clinician}
    client.post(f"/clinic/alerts/{alert_id}/assign", data=token | {"assigned_to": str(user_id)})
    client.post(f"/clinic/alerts/{alert_id}/note", data=token | {"text": "Gebeld"})
    client.post(f"/clinic/alerts/{alert_id}/acknowledge", data=token)
    client.post(f"/clinic/alerts/{alert_id}/resolve", data=token | {"outcome": "called_patient"})
    # Spread out in time around the assignment (the audit log's own instant, append-only):
    # escalated before it, then the note, taken on, resolved.
    at = parse_iso(services.db.query_one("SELECT at FROM audit_log WHERE action = 'assign_alert'")["at"])

    def spread(conn):
        conn.execute(
            "UPDATE alerts SET opened_at = ?, escalated_at = ?, acknowledged_at = ?, resolved_at = ?",
            tuple(iso(at + timedelta(minutes=m)) for m in (-60, -30, 20, 30)),
        )
        conn.execute("UPDATE alert_notes SET at = ?", (iso(at + timedelta(minutes=10)),))

    services.db.write_sync(spread)
    page = client.get(f"/clinic/alerts/{alert_id}").text
    listed = re.search(r'<ol class="history" id="who-did-what">(.*?)</ol>', page, re.S).group(1)
    lines = [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li>(.*?)</li>", listed, re.S)]
    whats = [line.split(" · ")[0] for line in lines]
    assert whats[:5] == [
        "Geopend",
        "Geëscaleerd (niet op tijd gezien)",
        "Toegewezen aan nurse",
        "Notitie",
        "In behandeling genomen",
    ]
    assert whats[5].startswith("Afgehandeld") and len(whats) == 6
    for line in lines:  # each with its local time and who did it
        assert re.search(r" om \d\d:\d\d · door \S", line), line
    assert "door nurse" in lines[2] and "door Pijnwacht" in lines[1]


def test_sign_in_returns_to_the_page_asked_for_never_elsewhere(client, services):
    add_clinician(services)
    r = client.get("/clinic/alerts/81", follow_redirects=False)
    assert r.headers["location"] == "/clinic/login?next=%2Fclinic%2Falerts%2F81"
    form = client.get(r.headers["location"]).text
    assert '<input type="hidden" name="next" value="/clinic/alerts/81">' in form

    def sign_in(next_page):
        client.cookies.clear()
        page = client.get("/clinic/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
        data = {"email": "nurse@example.org", "password": PASSWORD, "login_csrf": token, "next": next_page}
        return client.post("/clinic/login", data=data, follow_redirects=False)

    hostile = (
        "//evil.example",
        "https://evil",
        "/clinic//evil.example",
        "/\\evil.example",
        "/clinic/\r\nX: y",
    )
    for target in hostile:
        r = sign_in(target)
        assert r.status_code in (302, 303) and r.headers["location"] == "/clinic/", target
    assert sign_in("/clinic/alerts/81").headers["location"] == "/clinic/alerts/81"
    # The page's own ?next= is shown only when it is a clinic page.
    assert 'name="next"' not in client.get("/clinic/login?next=https://evil").text
    assert login(client, "nurse@example.org").headers["location"] == "/clinic/"


def test_inbox_pager_total_clear_filters_and_named_buttons(client, clinician, patient, services):
    report_drowsy(client, patient[1])
    name = services.db.query_one("SELECT display_name FROM patients")["display_name"]
    page = client.get("/clinic/inbox").text
    assert f'aria-label="In behandeling nemen: melding van {name}"' in page
    alert_id = services.db.query_one("SELECT id FROM alerts")["id"]
    # Back from acknowledging: to that row (inbox.js puts the focus there).
    r = client.post(
        f"/clinic/alerts/{alert_id}/acknowledge",
        data={"csrf_token": clinician, "back": f"/clinic/inbox#melding-{alert_id}"},
        follow_redirects=False,
    )
    assert r.headers["location"] == f"/clinic/inbox#melding-{alert_id}"
    assert f'id="melding-{alert_id}"' in page and f"#melding-{alert_id}" in page
    empty = client.get("/clinic/inbox?severity=info&patient=niemand").text
    assert (
        "Geen meldingen." in empty
        and '<a href="/clinic/inbox" data-focus="clear-filters">Filters wissen</a>' in empty
    )
    # No filters set (only another order, another page): nothing to clear.
    unfiltered_empty = client.get("/clinic/inbox?order=newest&offset=500").text
    assert "Geen meldingen." in unfiltered_empty and "Filters wissen" not in unfiltered_empty
    # How many there are in all, for the filters chosen.
    assert "Meldingen 1–1 van 1" in client.get("/clinic/inbox?status=all").text
    assert "Meldingen 1–1 van 1" in client.get("/clinic/inbox?status=acknowledged").text


def test_the_audit_page_names_which_alert_was_viewed(client, services, patient, other_patient):
    """'melding bekeken' says which: its kind and the day it opened, never its number; an
    alert of another patient is not named on this patient's page."""
    pid, headers = patient
    report_drowsy(client, headers)
    add_clinician(services, email="boss@example.org", role="admin")
    login(client, "boss@example.org")
    alert = services.db.query_one("SELECT id, opened_on FROM alerts WHERE patient_id = ?", (pid,))
    assert client.get(f"/clinic/alerts/{alert['id']}").status_code == 200
    page = client.get(f"/clinic/audit/{pid}").text
    cells = re.findall(r"<td[^>]*>(.*?)</td>", page.split("<tbody>", 1)[1], re.S)
    named = (
        f"melding van {formatting.day(date.fromisoformat(alert['opened_on']))} (bijwerking)"  # "2 dec. 2026"
    )
    assert "melding bekeken" in cells and named in cells
    assert f"alert {alert['id']}" not in page
    # A row about another patient's alert (a forged object) names nothing of it here.
    other_pid, other_headers = other_patient
    report_drowsy(client, other_headers)
    theirs = services.db.query_one("SELECT id FROM alerts WHERE patient_id = ?", (other_pid,))["id"]
    services.db.write_sync(
        lambda conn: conn.execute(
            "INSERT INTO audit_log (at, user_id, user_email, role, patient_id, action, object, source)"
            " VALUES ('2026-12-01T10:00:00Z', NULL, 'x@example.org', 'nurse', ?, 'view_alert', ?, '')",
            (pid, f"alert {theirs}"),
        )
    )
    page = client.get(f"/clinic/audit/{pid}").text
    assert page.count("(bijwerking)") == 1 and "de melding" in page
