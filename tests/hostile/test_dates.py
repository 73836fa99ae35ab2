"""One date rule for every date a phone or a person sends (contract v2, backend/platform/dates.py).

`local_date` is exactly YYYY-MM-DD, from 30 days before the earlier of enrolment and pathway
anchor to the patient's today + 1; `authored_at` is RFC 3339 with an offset, in the same
range. The API, the batch, the clinic's anchor dates and replay input follow it. Before: an
ISO week date (`2026-W49-3`) was stored raw and the rules never saw it, so severe drowsiness
raised no urgent alert; year-1 diaries made a 26 MB consult CSV.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from backend.tools.replay import LONG_HEADER, ReplayError, replay
from tests.conftest import AMS, csrf_of, diary, enrol_patient, enrolled_days_ago, new_id


def put(client, headers, body):
    return client.put(f"/api/v1/responses/{new_id()}", json=body, headers=headers)


def alerts_of(services, pid) -> list[str]:
    return [
        r["rule_id"] for r in services.db.query("SELECT rule_id FROM alerts WHERE patient_id = ?", (pid,))
    ]


def test_a_week_date_is_refused_and_the_same_day_written_right_raises_the_urgent_alert(services, client):
    pid, headers = enrol_patient(services, client, pathway="opioid")
    today = datetime.now(AMS).date()
    drowsy = {"pain_avg": 9, "pain_worst": 10, "se_drowsiness": 3}
    week = today.strftime("%G-W%V-%u")
    r = put(client, headers, {**diary(today.isoformat(), **drowsy), "local_date": week})
    assert r.status_code == 422
    assert r.json()["extra"][0]["field"] == "local_date" and r.json()["extra"][0]["code"] == "date.format"
    assert "JJJJ-MM-DD" in r.json()["detail"]
    assert services.db.query("SELECT count(*) AS n FROM responses")[0]["n"] == 0
    assert put(client, headers, diary(today.isoformat(), **drowsy)).status_code == 201
    assert "drowsiness_severe" in alerts_of(services, pid)


def test_the_range_counts_from_the_patients_own_enrolment_day_not_the_utc_one():
    """Enrolled at 00:30 in Amsterdam on 3 Nov. (23:30 UTC on 2 Nov.): the enrolment day is
    3 Nov., so the first diary day taken is 4 Oct.; the UTC date made it 3 Oct. (and the
    hostile test above failed when run between midnight and 01:00 in Amsterdam)."""
    from backend.diary.responses import allowed_dates
    from backend.patients.store import Patient

    patient = Patient(
        id="p1", display_name="x", pathway_id="chronic-pain", timezone="Europe/Amsterdam",
        language="nl", reminder_time="20:00", anchor_date="2026-12-01",
        enrolled_at="2026-11-02T23:30:00Z", status="active",
    )  # fmt: skip
    assert patient.enrolled_on == date(2026, 11, 3)
    allowed = allowed_dates(patient, datetime(2026, 12, 3, 10, 0, tzinfo=AMS))
    assert (allowed.first, allowed.last) == (date(2026, 10, 4), date(2026, 12, 4))


@pytest.mark.parametrize(
    "local_date",
    ["20261202", "2026-12-2", "2026-12-02T00:00", " 2026-12-02", "2026-12-02\n", "２０２６-12-02"],
)
def test_other_spellings_of_a_date_are_refused(client, patient, local_date):
    _pid, headers = patient
    r = put(client, headers, {**diary(), "local_date": local_date})
    assert r.status_code == 422 and r.json()["extra"][0]["code"] == "date.format"


def test_the_range_runs_from_30_days_before_enrolment_to_tomorrow(services, client, patient):
    pid, headers = patient
    enrolled_days_ago(services, pid, 30)
    today = datetime.now(AMS).date()
    first = today - timedelta(days=60)
    assert put(client, headers, diary(first.isoformat())).status_code == 201
    r = put(client, headers, diary((first - timedelta(days=1)).isoformat()))
    assert r.status_code == 422
    assert {p["field"] for p in r.json()["extra"]} == {"local_date", "authored_at"}
    assert all(p["code"] in ("date.range", "datetime.range") for p in r.json()["extra"])
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert put(client, headers, {**diary(), "local_date": tomorrow}).status_code == 201
    r = put(client, headers, {**diary(), "local_date": (today + timedelta(days=2)).isoformat()})
    assert r.status_code == 422 and r.json()["extra"][0]["code"] == "date.range"


@pytest.mark.parametrize(
    ("authored_at", "local_date", "code"),
    [
        ("0001-01-01T00:00:00+14:00", "0001-01-01", "datetime.range"),
        ("0001-01-02T12:00:00+00:00", "0001-01-02", "datetime.range"),
        ("9999-12-31T23:00:00-14:00", "9999-12-31", "datetime.range"),
        ("2026-12-01T20:00:00", None, "datetime.format"),
        ("2026-12-01 20:00", None, "datetime.format"),
        ("2026-W49-2T20:00:00+01:00", None, "datetime.format"),
        ("2026-12-01T20:00:00+01:00\n", None, "datetime.format"),
    ],
)
def test_authored_at_is_rfc3339_with_an_offset_and_in_range(client, patient, authored_at, local_date, code):
    _pid, headers = patient
    body = {**diary(), "authored_at": authored_at}
    if local_date:
        body["local_date"] = local_date
    r = put(client, headers, body)
    assert r.status_code == 422, r.text
    assert r.json()["extra"][0] == {
        "field": "authored_at",
        "error": r.json()["extra"][0]["error"],
        "code": code,
    }
    item = {"id": new_id(), **body}
    r = client.post("/api/v1/responses:batch", json={"responses": [item]}, headers=headers)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "invalid"


def test_since_at_the_ends_of_the_calendar_is_answered(client, patient):
    _pid, headers = patient
    assert put(client, headers, diary()).status_code == 201
    for since, count in (("9999-12-30T23:59:59-14:00", 0), ("0001-01-02T00:00:00+14:00", 1)):
        r = client.get("/api/v1/responses", params={"since": since}, headers=headers)
        assert r.status_code == 200 and len(r.json()["responses"]) == count
    # One step further no UTC time exists: a plain refusal, not an overflow (500).
    for since in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        r = client.get("/api/v1/responses", params={"since": since}, headers=headers)
        assert r.status_code == 400 and "since" in r.json()["detail"]


@pytest.mark.parametrize("anchor", ["2026-W49-2", "20261201", "9999-12-31", "0001-01-01", "01-12-2026"])
def test_the_clinic_refuses_odd_anchor_dates_on_enrolment_and_in_settings(
    services, client, clinician, patient, anchor
):
    pid, _headers = patient
    page = client.get("/clinic/patients/new")
    form = {
        "csrf_token": csrf_of(page.text),
        "display_name": "Mevr. Anker",
        "pathway_id": "tps",
        "anchor_date": anchor,
    }
    r = client.post("/clinic/patients", data=form)
    assert r.status_code == 422 and "startdatum" in r.text.lower()
    assert not services.db.query("SELECT 1 FROM patients WHERE display_name = 'Mevr. Anker'")
    settings = client.get(f"/clinic/patients/{pid}/settings")
    before = services.db.query("SELECT anchor_date FROM patients WHERE id = ?", (pid,))[0]["anchor_date"]
    r = client.post(
        f"/clinic/patients/{pid}/settings",
        data={
            "csrf_token": csrf_of(settings.text),
            "pathway_id": "tps",
            "anchor_date": anchor,
            "reminder_time": "20:00",
        },
    )
    assert r.status_code == 422 and "Startdatum" in r.text
    after = services.db.query("SELECT anchor_date FROM patients WHERE id = ?", (pid,))[0]["anchor_date"]
    assert after == before


def long_rows(days: list[str]) -> list[dict]:
    return [
        dict(
            zip(
                LONG_HEADER,
                [
                    "p1",
                    f"r{n}",
                    "diary",
                    "1",
                    f"{day}T20:00:00+01:00" if "W" not in day else day,
                    day,
                    "pain_avg",
                    "5",
                ],
                strict=True,
            )
        )
        for n, day in enumerate(days)
    ]


def test_replay_refuses_a_week_date_and_a_stray_year_naming_the_line():
    days = [(date(2026, 3, 1) + timedelta(days=n)).isoformat() for n in range(30)]
    with pytest.raises(ReplayError, match="line 7, column local_date"):
        list(replay(long_rows(days[:5] + ["2026-W10-3"] + days[5:]), None, None, None, None))
    with pytest.raises(ReplayError, match="line 12, column local_date: 0001-01-02 lies more than 10 years"):
        list(replay(long_rows(days[:10] + ["0001-01-02"] + days[10:]), None, None, None, None))
    assert list(replay(long_rows(days), None, None, None, None)) == []


# 25 hours apart: at any moment the UTC date is wrong for at least one of them.
FAR_ZONES = ["Pacific/Kiritimati", "Pacific/Pago_Pago"]


@pytest.mark.parametrize("zone", FAR_ZONES)
def test_an_anchor_is_judged_by_the_patients_own_today_in_the_clinic_and_the_cli(
    services, client, clinician, tmp_path, zone
):
    from zoneinfo import ZoneInfo

    from backend.platform.dates import ANCHOR_DAYS
    from tests.test_cli import run
    from tests.test_clinic import enrol_form

    today = datetime.now(ZoneInfo(zone)).date()
    first, last = today - timedelta(days=ANCHOR_DAYS), today + timedelta(days=ANCHOR_DAYS)
    for n, (day, taken) in enumerate(
        [(first, True), (last, True), (first - timedelta(days=1), False), (last + timedelta(days=1), False)]
    ):
        form = {
            **enrol_form(client),
            "display_name": f"Dhr. Ver {n}",
            "pathway_id": "tps",
            "timezone": zone,
            "anchor_date": day.isoformat(),
        }
        r = client.post("/clinic/patients", data=form, follow_redirects=False)
        stored = services.db.query(
            "SELECT anchor_date FROM patients WHERE display_name = ?", (f"Dhr. Ver {n}",)
        )
        assert (r.status_code < 400, [s["anchor_date"] for s in stored]) == (
            (True, [day.isoformat()]) if taken else (False, [])
        ), (zone, day, r.status_code)
    for day in (first, last):
        cli = run(
            tmp_path,
            "enrol",
            "--name",
            "A",
            "--pathway",
            "tps",
            "--timezone",
            zone,
            "--start",
            day.isoformat(),
        )
        assert cli.returncode == 0, (zone, day, cli.stderr)
