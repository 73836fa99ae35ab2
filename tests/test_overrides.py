"""A clinician's per-patient overrides: thresholds for good or until a date, and the expected
pain level (rises up to it do not alert until its end date). CLI, clinic forms, detection."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

import pytest

from backend import cli
from backend.alerts import store as alerts_store
from backend.alerts.detection import Entry, evaluate, overrides_in_force, thresholds_for
from backend.patients import store as patients_store
from backend.platform import formatting
from tests.conftest import AMS, csrf_of, diary, enrolled_days_ago, new_id

START = date(2026, 3, 2)


def history(rise_to: float, days: int = 56, rise_days: int = 6) -> list[Entry]:
    """Eight weeks around 3-4, then `rise_days` days at `rise_to`."""
    out = []
    for i in range(days):
        pain = rise_to if i >= days - rise_days else (3 if i % 2 else 4)
        out.append(Entry("diary", START + timedelta(days=i), {"pain_avg": pain, "se_drowsiness": 0}))
    return out


def pain_findings(entries: list[Entry], overrides: dict) -> list[str]:
    today = entries[-1].local_date
    t = thresholds_for({}, overrides_in_force(overrides, today))
    return [f.rule_id for f in evaluate(entries, t, today, START) if f.category == "pain"]


# -- detection ----------------------------------------------------------------------------------
def test_a_rise_up_to_the_expected_level_does_not_alert_and_one_above_it_does():
    today = (START + timedelta(days=55)).isoformat()
    expected = {"expected_pain_level": {"value": 7, "until": today}}
    assert pain_findings(history(7), {}) == ["pain_rise"]  # the rise alone alerts
    assert pain_findings(history(7), expected) == []
    assert pain_findings(history(8.5), expected) == ["pain_rise"]  # above what was expected


def test_the_expected_level_lapses_by_itself_after_its_end_date_and_spares_other_rules():
    yesterday = (START + timedelta(days=54)).isoformat()
    assert pain_findings(history(7), {"expected_pain_level": {"value": 7, "until": yesterday}}) == [
        "pain_rise"
    ]
    entries = history(7)
    entries[-1] = Entry("diary", entries[-1].local_date, {"pain_avg": 7, "se_drowsiness": 3})
    t = thresholds_for({}, {"expected_pain_level": 7})
    rules = [f.rule_id for f in evaluate(entries, t, entries[-1].local_date, START)]
    assert "drowsiness_severe" in rules and "pain_rise" not in rules


# -- the command --------------------------------------------------------------------------------
def run_cli(capsys, settings, *args) -> tuple[int, str, str]:
    code = cli.main(["--db", settings.db, "patient", "thresholds", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_sets_lists_and_clears_overrides_audited(capsys, settings, services, patient):
    pid, _ = patient
    until = (datetime.now(AMS).date() + timedelta(days=14)).isoformat()
    code, out, err = run_cli(capsys, settings, pid, "--set", "expected_pain_level=6,5", "--until", until)
    assert code == 0, err
    assert json.loads(out)["expected_pain_level"] == {
        "key": "expected_pain_level",
        "value": 6.5,
        "until": until,
        "set_on": datetime.now(AMS).date().isoformat(),
        "in_force": True,
    }
    code, out, _ = run_cli(capsys, settings, pid, "--set", "silence_alert_days=7")
    assert code == 0 and json.loads(out)["silence_alert_days"]["until"] is None
    stored = json.loads(
        services.db.query_one("SELECT thresholds FROM patients WHERE id = ?", (pid,))["thresholds"]
    )
    assert stored["silence_alert_days"] == 7
    code, out, _ = run_cli(capsys, settings, pid, "--clear", "silence_alert_days")
    assert code == 0 and sorted(json.loads(out)) == ["expected_pain_level"]
    audit = services.db.query(
        "SELECT action, object, role FROM audit_log WHERE patient_id = ? ORDER BY id", (pid,)
    )
    assert [(a["action"], a["object"], a["role"]) for a in audit if a["role"] == "cli"] == [
        ("set_threshold", f"expected_pain_level=6.5 tot {until}", "cli"),
        ("set_threshold", "silence_alert_days=7 (blijvend)", "cli"),
        ("clear_threshold", "silence_alert_days", "cli"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "silence_alarm_days=3"], "onbekende instelling 'silence_alarm_days'"),
        (["--set", "noise_z=veel"], "'noise_z': 'veel' is geen geldige waarde (een getal van 0 of meer)"),
        (["--set", "quiet_days=2.5"], "'quiet_days': '2.5' is geen geldige waarde (een heel getal"),
        (["--set", "expected_pain_level=11", "--until", "2099-01-01"], "'expected_pain_level': '11' is geen"),
        (["--set", "expected_pain_level=6"], "'expected_pain_level' geldt voor een beperkte tijd"),
        (["--set", "expected_pain_level=6", "--until", "2020-01-01"], "ligt in het verleden"),
        (
            ["--set", "noise_z=2", "--until", "volgende week"],
            "'noise_z': einddatum 'volgende week' is geen datum",
        ),
        # A week date is ten characters too: it was stored as that week's Wednesday.
        (["--set", "noise_z=2", "--until", "2099-W49-3"], "einddatum '2099-W49-3' is geen datum"),
        (["--set", "noise_z=2", "--until", "20991202"], "einddatum '20991202' is geen datum"),
        (["--set", "noise_z=2", "--until", "2099-12-2"], "einddatum '2099-12-2' is geen datum"),
    ],
)
def test_the_command_refuses_bad_settings_in_dutch_naming_the_key(
    capsys, settings, services, patient, args, message
):
    pid, _ = patient
    code, out, err = run_cli(capsys, settings, pid, *args)
    assert code == 2 and out == ""
    assert message in err
    assert services.db.query_one("SELECT thresholds FROM patients WHERE id = ?", (pid,))["thresholds"] in (
        None,
        "{}",
    )


# -- the clinic ---------------------------------------------------------------------------------
def test_an_expected_level_set_on_the_timeline_stops_the_alert_and_shows_on_the_chart(
    client, services, clinician, patient
):
    pid, headers = patient
    today = datetime.now(AMS).date()
    enrolled_days_ago(services, pid, 70)
    services.db.write_sync(
        lambda conn: patients_store.update(conn, pid, {"anchor_date": str(today - timedelta(days=70))})
    )
    until = today + timedelta(days=10)
    page = client.get(f"/clinic/patients/{pid}")
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={
            "csrf_token": csrf_of(page.text),
            "key": "expected_pain_level",
            "value": "7",
            "until": str(until),
            "back": "timeline",
        },
        follow_redirects=False,
    )
    assert r.status_code in (302, 303) and r.headers["location"] == f"/clinic/patients/{pid}"
    # Eight weeks around 3-4, then a week at 7: what the nurse expected after the procedure.
    items = [
        {"id": new_id(), **diary(str(today - timedelta(days=n)), pain_avg=7 if n < 7 else 3 + n % 2)}
        for n in range(62, -1, -1)
    ]
    for part in (items[:40], items[40:]):
        r = client.post("/api/v1/responses:batch", json={"responses": part}, headers=headers)
        assert {x["status"] for x in r.json()["results"]} == {"created"}
    assert services.db.query("SELECT rule_id FROM alerts WHERE category = 'pain'") == []
    timeline = client.get(f"/clinic/patients/{pid}").text
    # The line on the chart, its date as a nurse reads it ("12 dec.").
    assert (
        f"verwacht pijnniveau 7,0 t/m {formatting.day(date.fromisoformat(str(until)), year=False)}"
        in timeline
    )
    audit = services.db.query_one(
        "SELECT object FROM audit_log WHERE action = 'set_threshold' AND patient_id = ?", (pid,)
    )
    assert audit["object"] == f"expected_pain_level=7 tot {until}"


def test_the_settings_form_sets_a_threshold_and_refuses_a_bad_value_naming_it(
    client, services, clinician, patient
):
    pid, _ = patient
    form = client.get(f"/clinic/patients/{pid}/settings")
    assert 'name="key"' in form.text and "Geen eigen drempels" in form.text
    shown = re.sub(r"<[^>]+>", " ", form.text)  # what a nurse reads: threshold names, no keys
    assert "Verwacht pijnniveau" in shown and not re.search(r"\b[a-z]+_[a-z_]+\b", shown)
    token = csrf_of(form.text)
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "noise_z", "value": "2,5", "until": ""},
    )
    assert (
        r.status_code == 200
        and "<td>boven de dag-tot-dagschommeling (z)</td><td>2,5</td>" in r.text
        and "blijvend" in r.text
    )
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "noise_z", "value": "-1", "until": ""},
    )
    assert (
        r.status_code == 422
        and "&#39;boven de dag-tot-dagschommeling (z)&#39;: &#39;-1&#39; is geen geldige waarde" in r.text
    )
    stored = services.db.query_one("SELECT thresholds FROM patients WHERE id = ?", (pid,))["thresholds"]
    assert json.loads(stored) == {"noise_z": 2.5}


def test_a_pain_alert_offers_the_expected_level_form(client, services, clinician, patient):
    pid, _ = patient
    services.db.write_sync(
        lambda conn: alerts_store.open_alert(
            conn,
            pid,
            rule_id="pain_rise",
            category="pain",
            severity="routine",
            day="2026-12-01",
            reason="pijn hoger",
            level=None,
            at="2026-12-01T08:00:00Z",
        )
    )
    alert_id = services.db.query_one("SELECT id FROM alerts WHERE patient_id = ?", (pid,))["id"]
    page = client.get(f"/clinic/alerts/{alert_id}").text
    assert f'action="/clinic/patients/{pid}/thresholds"' in page
    assert 'name="key" value="expected_pain_level"' in page
