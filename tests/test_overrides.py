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
        (
            ["--set", "noise_z=veel"],
            "'noise_z': 'veel' is geen geldige waarde (een getal van 0 tot en met 6)",
        ),
        # Out of its range: 9 999 baseline days are never complete, so pain was never judged.
        (
            ["--set", "baseline_days=9999"],
            "'baseline_days': '9999' is geen geldige waarde (een heel getal van 7 tot en met 90)",
        ),
        (["--set", "change_points=0,2"], "(een getal van 0,5 tot en met 6)"),
        (["--set", "quiet_days=2.5"], "'quiet_days': '2.5' is geen geldige waarde (een heel getal"),
        (["--set", "expected_pain_level=11", "--until", "2099-01-01"], "'expected_pain_level': '11' is geen"),
        (["--set", "expected_pain_level=6"], "'expected_pain_level' geldt voor een beperkte tijd"),
        (
            ["--set", "expected_pain_level=6", "--until", "2020-01-01"],
            "einddatum 1 jan. 2020 ligt in het verleden",
        ),
        (
            ["--set", "expected_pain_level=6", "--until", "2099-06-01"],
            "einddatum 1 jun. 2099 ligt meer dan 90",
        ),
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
    # Saved from the alert page: back to that page, which says what was saved.
    until = datetime.now(AMS).date() + timedelta(days=13)
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={
            "csrf_token": csrf_of(page),
            "key": "expected_pain_level",
            "value": "6",
            "until": str(until),
            "back": f"alert-{alert_id}",
        },
        follow_redirects=False,
    )
    assert r.status_code in (302, 303)
    assert r.headers["location"] == f"/clinic/alerts/{alert_id}?saved=expected#expected-saved"
    shown = client.get(r.headers["location"]).text
    assert f"Verwacht pijnniveau 6 tot en met {formatting.day(until)} opgeslagen." in shown
    assert "opgeslagen." not in client.get(f"/clinic/alerts/{alert_id}").text
    # Only a plain alert number is followed; anything else returns to the settings page.
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={
            "csrf_token": csrf_of(page),
            "key": "expected_pain_level",
            "value": "6",
            "until": str(until),
            "back": "alert-//evil.example",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == f"/clinic/patients/{pid}/settings"


# -- what may be set ----------------------------------------------------------------------------
def test_every_threshold_has_a_range_holding_its_default_and_every_pathways_value(services):
    from backend.alerts.thresholds import COMMON, RANGES, Thresholds

    defaults = Thresholds()
    assert set(RANGES) == {f for f in Thresholds.__struct_fields__}
    assert set(COMMON) <= set(RANGES)
    for key, (low, high) in RANGES.items():
        assert low <= getattr(defaults, key) <= high, key
    for pid, pathway in services.pathways.items():
        for key, value in (pathway.detection or {}).items():
            low, high = RANGES[key]
            assert low <= value <= high, (pid, key, value)


def test_the_settings_form_shows_each_thresholds_current_value_pathway_value_and_range(
    client, services, clinician, patient
):
    pid, _ = patient
    form = client.get(f"/clinic/patients/{pid}/settings").text
    # The few a nurse sets first, the rest after, for the beheerder.
    assert form.index('<optgroup label="Veelgebruikt">') < form.index(
        '<optgroup label="Geavanceerd (voor de beheerder)">'
    )
    assert form.index('value="change_points"') < form.index('value="baseline_trim"')
    assert "belangrijke stijging (punten) — nu 2 · zorgpad 2 · toegestaan 0,5 tot en met 6</option>" in form
    assert "verwacht pijnniveau — nu geen · zorgpad geen · toegestaan 0 tot en met 10</option>" in form
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": csrf_of(form), "key": "change_points", "value": "3", "until": ""},
    )
    assert "belangrijke stijging (punten) — nu 3 · zorgpad 2 · toegestaan" in r.text


def test_the_settings_form_refuses_an_out_of_range_value_keeping_what_was_typed(
    client, services, clinician, patient
):
    pid, _ = patient
    token = csrf_of(client.get(f"/clinic/patients/{pid}/settings").text)
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "baseline_days", "value": "9999", "until": ""},
    )
    assert r.status_code == 422
    assert (
        "&#39;dagen voor de baseline&#39;: &#39;9999&#39; is geen geldige waarde"
        " (een heel getal van 7 tot en met 90)" in r.text
    )
    # The page keeps the form as it was sent: the same threshold chosen, the value typed.
    assert re.search(r'<option value="baseline_days" selected>', r.text)
    assert 'name="value" inputmode="decimal" required value="9999"' in r.text
    stored = services.db.query_one("SELECT thresholds FROM patients WHERE id = ?", (pid,))["thresholds"]
    assert stored in (None, "{}")


def test_threshold_end_dates_are_refused_with_dates_written_the_dutch_way(
    client, services, clinician, patient
):
    pid, _ = patient
    today = datetime.now(AMS).date()
    token = csrf_of(client.get(f"/clinic/patients/{pid}/settings").text)
    far = today + timedelta(days=120)
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "expected_pain_level", "value": "6", "until": str(far)},
    )
    last = formatting.day(today + timedelta(days=90))
    assert r.status_code == 422
    assert f"einddatum {formatting.day(far)} ligt meer dan 90 dagen vooruit (uiterlijk {last})" in r.text
    assert str(far) not in re.sub(r'value="[^"]*"', "", r.text)  # no ISO date but in the kept field
    assert f'name="until" type="date" value="{far}"' in r.text
    r = client.post(
        f"/clinic/patients/{pid}/thresholds",
        data={"csrf_token": token, "key": "noise_z", "value": "2", "until": "2020-11-01"},
    )
    assert r.status_code == 422 and "einddatum 1 nov. 2020 ligt in het verleden" in r.text
