"""The consult: the clinic's CSV download, the printable summary, the cohort page, charts."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from backend.alerts import store as alerts_store
from backend.exports.long import patient_export
from backend.platform import accounts, formatting
from backend.web import charts
from tests.conftest import AMS, PASSWORD, diary, enrolled_days_ago, new_id


def add_alert(
    conn,
    patient_id: str,
    *,
    opened: str,
    closed: str | None,
    status: str,
    outcome: str | None,
    reason: str,
    note: str | None,
    rule: str = "pain_rise",
) -> None:
    """An alert as the inbox leaves it: resolved with an outcome, with a clinician's note."""
    users = accounts.accounts_list(conn)
    user_id = (
        users[0].id
        if users
        else accounts.add_user(conn, email="n@example.org", name="N", role="clinician", password=PASSWORD).id
    )
    alert_id = alerts_store.open_alert(
        conn,
        patient_id,
        rule_id=rule,
        category="pain",
        severity="high",
        day=opened,
        reason=reason,
        level=None,
        at=f"{opened}T09:00:00Z",
    )
    assert alert_id is not None
    if note:
        alerts_store.add_note(conn, alert_id, user_id, note, f"{opened}T11:00:00Z")
    if status == "resolved":
        assert closed and outcome
        assert alerts_store.resolve(conn, alert_id, user_id, outcome, f"{closed}T10:00:00Z")
        assert alerts_store.close(conn, alert_id, f"{closed}T10:00:00Z")
    else:
        assert status == "open" and not closed


def send(client, headers, body) -> None:
    r = client.put(f"/api/v1/responses/{new_id()}", json=body, headers=headers)
    assert r.status_code == 201, r.text


def phq9(day: str, level: int) -> dict:
    body = diary(day)
    body.update(questionnaire="phq9", answers={**{f"phq9_{n}": level for n in range(1, 9)}, "phq9_9": 0})
    return body


def days_ago(n: int) -> str:
    return (datetime.now(AMS).date() - timedelta(days=n)).isoformat()


def audit_rows(settings, action: str) -> list[tuple]:
    conn = sqlite3.connect(settings.db)
    try:
        return conn.execute(
            "SELECT patient_id, object, user_email FROM audit_log WHERE action = ? ORDER BY id", (action,)
        ).fetchall()
    finally:
        conn.close()


def test_consult_csv_downloads_for_dutch_excel_and_is_audited(client, clinician, patient, settings):
    pid, headers = patient
    send(client, headers, diary(days_ago(2), pain_avg=6, sleep_hours=6.5))
    send(client, headers, diary(days_ago(1), pain_avg=4, sleep_hours=7))
    r = client.get(f"/clinic/patients/{pid}/consult.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    # The name beside the pseudonymous id, then the day (YYYY-MM-DD, as contract.md has it).
    assert rows[0][:3] == ["patiënt", "naam / pseudoniem", "datum"]
    assert [row[2] for row in rows[1:]] == [days_ago(2), days_ago(1)]
    assert {row[1] for row in rows[1:]} == {"Mevr. Jansen"} and rows[1][0] == pid
    assert dict(zip(rows[0], rows[1], strict=True))["slaap (uren)"] == "6,5"
    # Two downloads, two file names, neither with the patient's id in it: the pseudonymous
    # name as a slug and the period's last day.
    today = datetime.now(AMS).date().isoformat()
    assert f'filename="consult-mevr-jansen-{today}-excel.csv"' in r.headers["content-disposition"]
    assert pid not in r.headers["content-disposition"]
    assert audit_rows(settings, "export") == [(pid, "wide csv dialect nl start..end", "nurse@example.org")]
    plain = client.get(f"/clinic/patients/{pid}/consult.csv?dialect=standard&from={days_ago(1)}")
    assert f'filename="consult-mevr-jansen-{today}.csv"' in plain.headers["content-disposition"]
    ranged = client.get(f"/clinic/patients/{pid}/consult.csv?from={days_ago(2)}&to={days_ago(1)}")
    assert f'filename="consult-mevr-jansen-{days_ago(1)}-excel.csv"' in ranged.headers["content-disposition"]
    assert plain.text.splitlines()[1].split(",")[1] == days_ago(1)


def test_consult_csv_refuses_bad_requests_and_strangers(client, clinician, patient):
    pid, headers = patient
    send(client, headers, diary(days_ago(1)))
    assert client.get("/clinic/patients/nobody/consult.csv").status_code == 404
    r = client.get(f"/clinic/patients/{pid}/consult.csv?from=2026-02-01&to=2026-01-01")
    assert r.status_code == 400 and "omgekeerd" in r.text and "Terug naar de patiënten" in r.text
    assert client.get(f"/clinic/patients/{pid}/consult.csv?dialect=xx").status_code == 400
    client.cookies.clear()
    r = client.get(f"/clinic/patients/{pid}/consult.csv", follow_redirects=False)
    assert r.status_code in (302, 303, 401)
    assert "pain_avg" not in r.text


def test_consult_summary_page_shows_period_baseline_scores_and_chart(
    client, clinician, patient, settings, services
):
    pid, headers = patient
    enrolled_days_ago(services, pid, 45)
    for n in range(45, 0, -1):
        pain = 7 if n <= 10 else 4
        send(
            client,
            headers,
            diary(
                days_ago(n),
                pain_avg=pain,
                pain_worst=pain + 1,
                se_constipation=3 if n <= 3 else 0,
                note="slecht" if n == 2 else None,
            ),
        )
    send(client, headers, phq9(days_ago(39), 1))
    send(client, headers, phq9(days_ago(3), 2))
    r = client.get(f"/clinic/patients/{pid}/consult")
    assert r.status_code == 200, r.text
    html = r.text
    assert "Consultoverzicht" in html and "Mevr. Jansen" in html
    # THE baseline (detection's): the pain of the weeks before the last two, flares trimmed.
    assert "baseline 4,0" in html and "verschil <strong>+" in html
    assert "<svg" in html and "<path" in html
    assert "PHQ-9" in html and "16" in html and "+8,0" in html  # 8 -> 16 since intake
    assert "slecht" in html
    assert audit_rows(settings, "view")[-1][0] == pid
    short = client.get(f"/clinic/patients/{pid}/consult?from={days_ago(5)}&to={days_ago(1)}")
    shown = [formatting.day(date.fromisoformat(days_ago(n))) for n in (5, 1)]
    assert f"{shown[0]} t/m {shown[1]}" in short.text
    # Printed with the date and time, by whom; a print button (a script file, no inline script).
    assert "afgedrukt door nurse op " in html and " om " in html.split("afgedrukt door nurse op ")[1][:20]
    assert "data-print" in html and '<script type="module" src="/clinic/static/print.js">' in html
    assert client.get("/clinic/patients/nobody/consult").status_code == 404


def test_cohort_page_and_csv(client, clinician, patient, other_patient, settings):
    for _pid, headers in (patient, other_patient):
        for n in range(5, 0, -1):
            send(client, headers, diary(days_ago(n), pain_avg=6))
    r = client.get("/clinic/cohort/chronic-pain")
    assert r.status_code == 200, r.text
    # Pathways by their names, numbers the Dutch way (never 4.8).
    assert "Chronische pijn" in r.text and ">opioid" not in r.text
    assert not re.search(r"<td>\d+\.\d</td>", r.text)
    assert "intake" in r.text and "<svg" in r.text
    assert '<th scope="col">Nog open</th>' in r.text and "telt nog niet mee voor de respons" in r.text
    # Axis values with the decimals they need: 0, 5, 10, never 0,0 and 5,0.
    ticks = re.findall(r'text-anchor="end" fill="#555d66">([^<]+)</text>', r.text)
    assert ticks == ["0", "5", "10"], ticks
    csv_r = client.get("/clinic/cohort/chronic-pain/cohort.csv")
    assert csv_r.status_code == 200
    rows = list(csv.reader(io.StringIO(csv_r.text)))
    assert rows[0][:3] == ["patient_id", "anchor_date", "time_point"]
    assert len(rows) == 1 + 2 * 5  # two patients x five time points
    assert {a[0] for a in audit_rows(settings, "export")} == {patient[0], other_patient[0]}
    assert client.get("/clinic/cohort/nope").status_code == 404
    # Time points as a nurse says them, on the page and its chart: "6 weken", never "6w".
    assert '<th scope="row">6 weken</th>' in r.text and '<th scope="row">3 maanden</th>' in r.text
    assert ">6w<" not in r.text and ">12m<" not in r.text and ">12 maanden</text>" in r.text
    # The Dutch Excel variant, linked from the page: BOM, ';', Dutch headers and words.
    assert "cohort.csv?dialect=nl" in r.text
    nl = client.get("/clinic/cohort/chronic-pain/cohort.csv", params={"dialect": "nl"})
    assert nl.status_code == 200 and nl.content.startswith(b"\xef\xbb\xbf")
    assert "-excel.csv" in nl.headers["content-disposition"]
    dutch = list(csv.reader(io.StringIO(nl.content.decode("utf-8-sig")), delimiter=";"))
    assert dutch[0][:8] == [
        *["patiënt", "naam / pseudoniem", "startdatum", "meetmoment", "dag", "streefdatum", "status"],
        "pijn gemiddeld (7 dagen)",
    ]
    assert {row[1] for row in dutch[1:]} == {"Mevr. Jansen", "Dhr. de Vries"}
    assert [row[3] for row in dutch[1:6]] == ["intake", "6 weken", "3 maanden", "6 maanden", "12 maanden"]
    statuses = {row[6] for row in dutch[1:]}
    assert statuses <= {"ingevuld", "gemist", "nog open", "nog niet aan de beurt"} and statuses
    assert csv_r.text == client.get("/clinic/cohort/chronic-pain/cohort.csv").text  # standard unchanged
    assert client.get("/clinic/cohort/chronic-pain/cohort.csv", params={"dialect": "fr"}).status_code == 400


def test_the_one_chart_is_wellformed_svg_with_gaps_dates_values_and_baseline():
    start = date(2026, 3, 1)
    values = {
        start + timedelta(days=i): v for i, v in enumerate([5, 6, None, None, 7, 8, 6]) if v is not None
    }
    svg = charts.DayChart(
        title="Pijn",
        first=start,
        last=start + timedelta(days=6),
        top=10,
        series=[charts.Series("gemiddelde pijn", values)],
        levels=[charts.Level(4.5, "baseline 4,5", start, start + timedelta(days=6))],
        markers=[charts.Marker(start + timedelta(days=4), "high", "melding <b>")],
    ).svg()
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    (path,) = root.findall(f"{ns}path")
    assert path.get("d").count("M") == 2  # the gap splits the line
    assert len(root.findall(f"{ns}circle")) == 5
    assert "baseline 4,5" in svg and "style=" not in svg  # CSP: no inline style
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "1 mrt." in texts and "7 mrt." in texts  # a date axis
    # One column per day with a value, its title saying the day and the value; none is a Tab
    # stop of its own (a keyboard reads the table after the chart).
    days = [r for r in root.iter(f"{ns}rect") if r.get("class") == "day"]
    assert not [r for r in root.iter(f"{ns}rect") if r.get("tabindex") is not None]
    # A whole value reads whole ("5", not "5,0"); a half one with its decimal.
    assert len(days) == 5 and days[0].find(f"{ns}title").text == "1 mrt.: gemiddelde pijn 5"
    # The values also stand on the chart, in a text that timeline.css shows while the pointer is
    # on the column: the page's promise is visible, not only in a tooltip.
    shown = [t for t in root.iter(f"{ns}text") if t.get("class") == "day-value"]
    assert [t.text for t in shown] == [r.find(f"{ns}title").text for r in days]
    assert charts.num(6.0) == "6" and charts.num(6.45) == "6,5" and charts.num(1.96) == "2"
    assert "▼" in texts and "melding &lt;b&gt;" in svg  # markers as the legend shows; escaped
    bars = charts.bar_chart("Mediane pijn", [("intake", 6.5), ("6w", None)])
    assert len(ET.fromstring(bars).findall(f"{ns}rect")) == 1


def test_a_charts_values_are_also_a_table_under_it_for_the_keyboard():
    """The values per day in a folded table (one Tab stop instead of one per day): a row per
    day with a value, a column per series and side effect, whole values whole, gaps as '–',
    notes in their own column; every text escaped; nothing when there is nothing to show."""
    start = date(2026, 3, 1)
    chart = charts.DayChart(
        title="Pijn <en slaap>",
        first=start,
        last=start + timedelta(days=6),
        top=10,
        series=[
            charts.Series("gemiddelde pijn", {start: 5, start + timedelta(days=2): 6.5}),
            charts.Series("slaap", {start: 7}, unit="uur"),
        ],
        strips=[("sufheid", {start + timedelta(days=2): 3}, {3: "ernstig"})],
        extra={start: "notitie"},
    )
    table = ET.fromstring(str(chart.table()))
    assert table.tag == "details" and table.find("summary").text == charts.TABLE_SUMMARY
    assert table.find("table/caption").text == "Pijn <en slaap>"  # escaped, read back as text
    heads = [th.text for th in table.find("table/thead/tr")]
    assert heads == ["Dag", "gemiddelde pijn", "slaap", "sufheid", "Opmerking"]
    rows = [[c.text or "" for c in tr] for tr in table.find("table/tbody")]
    assert rows == [
        ["1 mrt. 2026", "5", "7 uur", "–", "notitie"],
        ["3 mrt. 2026", "6,5", "–", "ernstig", ""],
    ]
    assert str(chart.html()) == str(chart.svg()) + str(chart.table())
    nothing = charts.DayChart(title="Leeg", first=start, last=start, top=10, series=[])
    assert nothing.table() == "" and charts.NO_DATA in nothing.html()


def test_a_chart_without_values_in_its_period_says_so_instead_of_empty_axes():
    start = date(2026, 3, 1)
    empty = charts.DayChart(
        title="Stemming",
        first=start,
        last=start + timedelta(days=6),
        top=10,
        series=[charts.Series("stemming", {start - timedelta(days=1): 5})],  # before the period
    ).svg()
    assert "<svg" not in empty and charts.NO_DATA in empty and "Stemming" in empty


def test_alerts_in_the_period_with_outcome_and_note(settings, services, patient):
    pid, _headers = patient

    def add(conn):
        for opened, closed, outcome in (
            ("2026-03-01", "2026-03-05", "called_patient"),
            ("2026-01-01", "2026-01-10", "no_action"),
            ("2026-03-20", None, None),
        ):
            add_alert(
                conn,
                pid,
                opened=opened,
                closed=closed,
                status="resolved" if closed else "open",
                outcome=outcome,
                reason="pijn hoger",
                note="gebeld",
                rule=f"pain_rise_{opened}",
            )

    services.db.write_sync(add)
    conn = sqlite3.connect(settings.db)
    conn.row_factory = sqlite3.Row
    found = alerts_store.in_period(conn, pid, "2026-03-01", "2026-03-28")
    notes = alerts_store.notes(conn, [a["id"] for a in found])
    conn.close()
    assert [(a["opened_on"], a["outcome"]) for a in found] == [
        ("2026-03-20", None),
        ("2026-03-01", "called_patient"),
    ]
    assert [n["text"] for n in notes if n["alert_id"] == found[1]["id"]] == ["gebeld"]


def test_patient_export_is_their_own_long_csv(client, patient, other_patient, settings):
    pid, headers = patient
    send(client, headers, diary(days_ago(1), pain_avg=3))
    send(client, other_patient[1], diary(days_ago(1), pain_avg=9))
    conn = sqlite3.connect(settings.db)
    text = "".join(patient_export(conn, pid))
    empty = "".join(patient_export(conn, "p-without-data"))
    conn.close()
    rows = list(csv.reader(io.StringIO(text)))
    assert {r[0] for r in rows[1:]} == {pid}
    assert empty.startswith("patient_id,response_id") and empty.count("\n") == 1


def test_consult_summary_prints_on_one_a4_page(client, clinician, patient, services, tmp_path):
    """A full month with notes, three questionnaires and alerts still prints as one A4."""
    from playwright.sync_api import sync_playwright

    pid, headers = patient
    enrolled_days_ago(services, pid, 60)
    for n in range(60, 0, -1):
        send(
            client,
            headers,
            diary(
                days_ago(n),
                pain_avg=3 + n % 5,
                pain_worst=8,
                sleep_quality=5,
                activity=4,
                mood=6,
                rescue_doses=2,
                se_drowsiness=n % 4,
                se_nausea=1,
                se_constipation=2,
                se_dizziness=0,
                note=f"Een lange opmerking over dag {n}, met wat uitleg erbij"
                " over slapen, lopen en de medicatie."
                if n < 12
                else None,
            ),
        )
    for n in (58, 30, 3):
        send(client, headers, phq9(days_ago(n), 1 + (n < 10)))
        gad = diary(days_ago(n))
        gad.update(questionnaire="gad7", answers={f"gad7_{i}": 2 for i in range(1, 8)})
        send(client, headers, gad)
        peg = diary(days_ago(n))
        peg.update(questionnaire="peg", answers={"peg_pain": 6, "peg_enjoyment": 5, "peg_activity": 7})
        send(client, headers, peg)

    def alerts(conn):
        for n in (20, 12, 5):
            add_alert(
                conn,
                pid,
                opened=days_ago(n),
                closed=days_ago(n - 1),
                status="resolved",
                outcome="called_patient",
                note="Patiënt gebeld, afspraak gemaakt",
                reason="gemiddelde pijn 6,4 over 5 dagen tegenover baseline 3,9 (+2,5; +64 %)",
            )

    services.db.write_sync(alerts)
    html = client.get(f"/clinic/patients/{pid}/consult").text
    static = Path(__file__).resolve().parents[1] / "backend" / "web" / "static"

    def serve(route):
        url = route.request.url
        if "/clinic/static/" in url:
            name = url.rsplit("/", 1)[1]
            route.fulfill(body=(static / name).read_text(), content_type="text/css")
        else:
            route.fulfill(body=html, content_type="text/html")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.route("**/*", serve)
            page.goto("http://clinic.test/clinic/consult")
            pdf = page.pdf(format="A4", prefer_css_page_size=True)
        finally:
            browser.close()
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    (tmp_path / "consult.pdf").write_bytes(pdf)
    assert pages == 1


def test_a_period_that_cannot_be_shown_gives_the_period_form_again_with_why_in_dutch(
    client, clinician, patient
):
    pid, _ = patient
    r = client.get(f"/clinic/patients/{pid}/consult?from=2026-12-01&to=2026-11-01")
    assert r.status_code == 400
    assert (
        "De periode is omgekeerd: &#39;van&#39; (1 dec. 2026) ligt na &#39;tot en met&#39; (1 nov. 2026)."
        in r.text
    )
    # The consult's own period form, as typed, and the way to the patient (not the patient list).
    assert 'action="/clinic/patients/' + pid + '/consult"' in r.text
    assert 'name="from" value="2026-12-01"' in r.text and 'name="to" value="2026-11-01"' in r.text
    assert f'href="/clinic/patients/{pid}"' in r.text and "Terug naar de patiënten" not in r.text
    r = client.get(f"/clinic/patients/{pid}/consult?from=2026-13-01")
    assert r.status_code == 400
    assert "&#39;van&#39;: &#39;2026-13-01&#39; is geen datum" in r.text and "from &#39;" not in r.text
    r = client.get(f"/clinic/patients/{pid}/consult?to=morgen")
    assert "&#39;tot en met&#39;: &#39;morgen&#39; is geen datum" in r.text
    future = (datetime.now(AMS).date() + timedelta(days=3)).isoformat()
    r = client.get(f"/clinic/patients/{pid}/consult?from={future}")
    assert r.status_code == 400 and "ligt na vandaag" in r.text


def test_the_consult_counts_diary_days_from_enrolment_and_ends_today_at_the_latest(
    client, clinician, patient, services
):
    pid, headers = patient
    enrolled_days_ago(services, pid, 10)
    for n in range(10, 0, -1):
        send(client, headers, diary(days_ago(n), pain_avg=4))
    later = (datetime.now(AMS).date() + timedelta(days=30)).isoformat()
    r = client.get(f"/clinic/patients/{pid}/consult?from=2020-01-01&to={later}")
    assert r.status_code == 200, r.text
    today = datetime.now(AMS).date()
    enrolled = formatting.day(today - timedelta(days=10))
    # 11 days followed (enrolment up to today), not the 2 500 since 2020; the period ends today.
    assert f"dagboek 10 van 11 dagen (gevolgd vanaf {enrolled})" in r.text
    assert f"t/m {formatting.day(today)}" in r.text
    # A diary day before enrolment (allowed up to 30 days before) counts from that day.
    send(client, headers, diary(days_ago(14), pain_avg=4))
    r = client.get(f"/clinic/patients/{pid}/consult?from=2020-01-01")
    assert f"dagboek 11 van 15 dagen (gevolgd vanaf {formatting.day(today - timedelta(days=14))})" in r.text
    # A period within the follow-up says nothing about it.
    r = client.get(f"/clinic/patients/{pid}/consult?from={days_ago(5)}&to={days_ago(1)}")
    assert "dagboek 5 van 5 dagen</dd>" in r.text


def test_an_alert_closed_after_midnight_shows_the_patients_own_day(client, clinician, patient, services):
    """Resolved at 00:30 in Amsterdam on the 3rd (23:30 UTC on the 2nd): the consult says it
    closed on the 3rd, the day the patient and the nurse lived it (the UTC date said the 2nd)."""
    pid, _headers = patient
    enrolled_days_ago(services, pid, 20)
    opened = datetime.now(AMS).date() - timedelta(days=5)
    closed_local = datetime.combine(opened + timedelta(days=2), datetime.min.time(), AMS) + timedelta(
        minutes=30
    )
    at = closed_local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def add(conn):
        user = accounts.accounts_list(conn)[0].id
        alert = alerts_store.open_alert(
            conn, pid, rule_id="pain_rise", category="pain", severity="high", day=opened.isoformat(),
            reason="pijn hoger", level=None, at=f"{opened.isoformat()}T09:00:00Z",
        )  # fmt: skip
        assert alerts_store.resolve(conn, alert, user, "called_patient", at)
        assert alerts_store.close(conn, alert, at)

    services.db.write_sync(add)
    page = client.get(f"/clinic/patients/{pid}/consult").text
    shown = formatting.day(closed_local.date())
    assert f"({shown})" in page, shown
    assert f"({formatting.day(closed_local.date() - timedelta(days=1))})" not in page


def test_one_odd_day_of_rescue_doses_does_not_flatten_the_others():
    """A day of 30 doses among days of 1-3 (a typo, or a crisis): the scale stays that of the
    ordinary days, so they still read, and the odd bar is cut at the top with its number."""
    first = date(2026, 11, 1)
    doses = {first + timedelta(days=i): float(1 + i % 3) for i in range(30)}
    doses[first + timedelta(days=20)] = 30.0
    top = charts.robust_top(list(doses.values()), 4.0)
    assert top <= 6
    chart = charts.DayChart(
        title="noodmedicatie",
        first=first,
        last=first + timedelta(days=29),
        top=top,
        height=120,
        series=[charts.Series("noodmedicatie", doses, "#7a4a9d", bars=True, unit="keer")],
    )
    svg = ET.fromstring(str(chart.svg()))
    ns = "{http://www.w3.org/2000/svg}"
    heights = sorted(float(r.get("height")) for r in svg.iter(f"{ns}rect") if r.get("fill") == "#7a4a9d")
    assert len(heights) == 30 and heights[0] > 0.15 * heights[-1]  # a day of 1 is not flat
    cut = [t.text for t in svg.iter(f"{ns}text") if t.get("class") == "cut"]
    assert cut == ["30"]
    # Without an odd day, nothing is cut and the highest day fills the scale.
    del doses[first + timedelta(days=20)]
    assert charts.robust_top(list(doses.values()), 4.0) == 4.0
    assert charts.robust_top([8.0] * 30, 4.0) == 8.0
