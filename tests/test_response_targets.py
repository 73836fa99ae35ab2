"""Response targets per severity, time left or overdue on every alert, and the weekly response
times; the clinic's names for rules; the trial summary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from backend.alerts import deadlines
from backend.alerts.names import rule_name
from backend.diary.questionnaires import load_library
from backend.patients.pathways import SuccessRule, trial_days
from backend.web.timeline import trial_text
from tests.conftest import AMS, diary, make_patient, new_id, store_response

TARGETS = deadlines.Targets(urgent_minutes=60, high_working_days=1, routine_working_days=3)


def alert(severity: str, opened: datetime, acknowledged: datetime | None = None, **more) -> dict:
    at = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ") if d else None  # noqa: E731
    return {
        "severity": severity,
        "status": more.get("status", "acknowledged" if acknowledged else "open"),
        "opened_at": at(opened),
        "acknowledged_at": at(acknowledged),
        "resolved_at": at(more.get("resolved")),
    }


def test_targets_count_working_days_in_the_clinic_zone():
    friday = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 16:00 in Amsterdam
    assert TARGETS.due("urgent", friday) == friday + timedelta(hours=1)
    # High: one working day, so Monday 16:00, not Saturday.
    assert TARGETS.due("high", friday).astimezone(UTC) == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    # Routine: three working days, Wednesday.
    assert TARGETS.due("routine", friday).date() == date(2026, 12, 9)
    assert [TARGETS.describe(s) for s in ("urgent", "high", "routine")] == [
        "1 uur",
        "1 werkdag",
        "3 werkdagen",
    ]


def test_every_alert_says_time_left_or_how_late():
    opened = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    left = deadlines.deadline(TARGETS, alert("urgent", opened), opened + timedelta(minutes=25))
    assert (left.text, left.overdue) == ("nog 35 min", False)
    late = deadlines.deadline(TARGETS, alert("urgent", opened), opened + timedelta(hours=4))
    assert (late.text, late.overdue) == ("3 uur te laat", True)
    seen = deadlines.deadline(TARGETS, alert("urgent", opened, opened + timedelta(minutes=20)), opened)
    assert (seen.text, seen.met) == ("gezien binnen de tijd", True)
    unseen = deadlines.deadline(TARGETS, alert("routine", opened, status="closed"), opened)
    assert unseen.text == "niet gezien" and unseen.met is False


def test_weekly_response_times_per_severity():
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    rows = [
        alert("urgent", monday, monday + timedelta(minutes=10), resolved=monday + timedelta(hours=2)),
        alert("urgent", monday, monday + timedelta(minutes=90)),
        alert("urgent", monday, monday + timedelta(minutes=30)),
        alert("routine", monday, status="closed"),
        alert("high", monday - timedelta(days=7), monday - timedelta(days=6)),
    ]
    weeks = deadlines.weekly(TARGETS, rows, monday + timedelta(days=1))
    assert [w.monday for w in weeks] == [date(2026, 11, 30), date(2026, 11, 23)]
    urgent = weeks[0].cells["urgent"]
    assert (urgent.opened, urgent.median_acknowledge, urgent.median_resolve) == (3, 30, 120)
    assert urgent.share_within == 2 / 3
    assert weeks[0].cells["routine"].closed_unseen == 1
    assert deadlines.minutes(urgent.median_acknowledge) == "30 min"


def test_an_urgent_alert_nobody_saw_is_a_miss_not_a_blank():
    """A week whose one urgent alert is still unseen two days after it opened: 0 % on time
    and one "nog niet gezien, te laat", not "–" as if there were no data."""
    opened = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    [week] = deadlines.weekly(TARGETS, [alert("urgent", opened)], opened + timedelta(days=2))
    urgent = week.cells["urgent"]
    assert (urgent.open_late, urgent.share_within) == (1, 0.0)
    # Within its hour it is not late yet: no share to show.
    [week] = deadlines.weekly(TARGETS, [alert("urgent", opened)], opened + timedelta(minutes=20))
    assert (week.cells["urgent"].open_late, week.cells["urgent"].share_within) == (0, None)


def test_rules_have_the_clinics_names_never_ids():
    library = load_library("questionnaires")
    assert rule_name("pain_rise", library) == "aanhoudend meer pijn dan gewoonlijk"
    assert rule_name("safety.phq9_9", library) == "veiligheidssignaal: PHQ-9 vraag 9"
    assert rule_name("side_effect_severe.se_nausea", library) == "ernstige bijwerking: misselijkheid"
    assert rule_name("silence", library) == "geen dagboek ontvangen"


def test_trial_summary_counts_the_days_with_half_the_pain():
    rule = SuccessRule(label={"nl": "Proef", "en": "Trial"}, min_reduction_percent=50, min_days=4)
    baseline = {d: v for d, v in zip(range(-7, 0), [6, 7, 6, 7, 6, 7, 6.5], strict=True)}
    after = {d: (3 if d <= 9 else 5) for d in range(1, 15)}
    found = trial_days(rule, baseline | after)
    assert (found.baseline, found.reached, found.days) == (6.5, 9, 14)
    assert trial_text(rule, found) == "≥ 50 % pijnvermindering op 9 van 14 dagen (baseline 6,5)"
    assert "nog te weinig" in trial_text(rule, trial_days(rule, after))


def test_response_times_page_and_an_over_long_note(client, clinician, patient, services):
    _pid, headers = patient
    r = client.put(f"/api/v1/responses/{new_id()}", headers=headers, json=diary(se_drowsiness=3))
    assert r.status_code == 201
    page = client.get("/clinic/response-times")
    assert page.status_code == 200
    assert "Mediaan tot in behandeling" in page.text and "urgent" in page.text and "binnen 1 uur" in page.text
    alert_id = services.db.query_one("SELECT id FROM alerts")["id"]
    long = client.post(f"/clinic/alerts/{alert_id}/note", data={"csrf_token": clinician, "text": "x" * 5000})
    # Refused whole with a Dutch reason, never cut to 4 000 characters and stored.
    assert long.status_code == 422 and "5000 tekens" in long.text and "niets opgeslagen" in long.text
    assert services.db.query("SELECT * FROM alert_notes") == []
    ok = client.post(
        f"/clinic/alerts/{alert_id}/resolve", data={"csrf_token": clinician, "outcome": "referred"}
    )
    assert ok.status_code == 200 and "doorverwezen (huisarts/crisisdienst)" in ok.text
    assert services.db.query_one("SELECT outcome FROM alerts")["outcome"] == "referred"


def test_the_patient_page_shows_the_trial_of_an_anchor_long_before_the_chart(client, clinician, services):
    # A trial 300 days ago: its days lie far before the 90 days shown and the baseline's reach,
    # and the page still counts them, and only them (not the days before or after the rule's).
    today = datetime.now(AMS).date()
    anchor = today - timedelta(days=300)
    pain = {-10: 10, -8: 10} | dict(zip(range(-7, -1), [6, 7, 6, 7, 6, 7], strict=True))
    pain |= {d: (3 if d <= 9 else 5) for d in range(1, 15)} | {d: 1 for d in range(15, 40)}

    def seed(conn):
        p = make_patient(
            conn,
            pathway="treatment-followup",
            anchor=anchor,
            enrolled_at=f"{anchor - timedelta(days=20)}T09:00:00Z",
        )
        for d, v in pain.items():
            store_response(conn, p.id, anchor + timedelta(days=d), {"pain_avg": v, "pain_worst": v})
        for n in range(60):  # the recent weeks: what the chart shows
            store_response(conn, p.id, today - timedelta(days=n), {"pain_avg": 2, "pain_worst": 3})
        return p.id

    pid = services.db.write_sync(seed)
    page = client.get(f"/clinic/patients/{pid}")
    assert page.status_code == 200
    assert "≥ 50 % pijnvermindering op 9 van 14 dagen (baseline 6,5)" in page.text
