"""Alert lifecycle: one alert per patient and rule, updated by new evidence, closed when quiet."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from backend.alerts import entries
from backend.alerts import lifecycle as alerts
from backend.alerts.detection import Finding
from backend.alerts.lifecycle import OpenAlert, step
from backend.patients import store as patients_store
from backend.platform import accounts
from backend.platform.settings import load_settings
from backend.platform.storage import open_database
from tests.conftest import PASSWORD, make_patient, store_response

START = date(2026, 3, 2)


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "pijnwacht.db")
    yield database
    database.close()


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={}, db=str(tmp_path / "pijnwacht.db"), scheduler=False)


def add_patient(conn: sqlite3.Connection, pid: str = "p1", thresholds: dict | None = None) -> str:
    make_patient(
        conn,
        pid,
        name="Test",
        pathway="opioid",
        anchor=START,
        enrolled_at=f"{START}T08:00:00Z",
        thresholds=thresholds,
    )
    return pid


def add_diary(conn, pid: str, day: date, at: str | None = None, **answers) -> None:
    store_response(conn, pid, day, {"pain_avg": 4, "pain_worst": 5, **answers}, at=at)


def live(conn, pid="p1"):
    return conn.execute("SELECT * FROM alerts WHERE patient_id = ? ORDER BY id", (pid,)).fetchall()


def finding(rule="drowsiness_severe", severity="urgent", on=START) -> Finding:
    return Finding(rule, "side_effect", severity, "ernstige sufheid", on, evidence_on=on)


# -- the pure lifecycle ----------------------------------------------------------------------
def test_step_opens_updates_instead_of_doubling_and_closes_after_the_quiet_period():
    ch = step({}, [finding()], START, quiet_days=7)
    assert [f.rule_id for f in ch.opened] == ["drowsiness_severe"] and not ch.updated
    a = OpenAlert("drowsiness_severe", "side_effect", "high", START, START, "x")
    ch = step({"drowsiness_severe": a}, [finding(severity="high")], START + timedelta(days=2), 7)
    assert not ch.opened and len(ch.updated) == 1
    assert not step({"drowsiness_severe": a}, [], START + timedelta(days=6), 7).closed
    assert step({"drowsiness_severe": a}, [], START + timedelta(days=7), 7).closed == [a]


def test_an_urgent_alert_nobody_saw_never_closes_by_itself():
    a = OpenAlert("drowsiness_severe", "side_effect", "urgent", START, START, "x")
    assert not step({"drowsiness_severe": a}, [], START + timedelta(days=200), 7).closed
    seen = OpenAlert("drowsiness_severe", "side_effect", "urgent", START, START, "x", status="acknowledged")
    assert step({"drowsiness_severe": seen}, [], START + timedelta(days=7), 7).closed == [seen]
    # A new report, the next day or weeks later, does not hide inside the unseen one.
    for later in (START + timedelta(days=1), START + timedelta(days=30)):
        ch = step({"drowsiness_severe": a}, [finding(on=later)], later, 7)
        assert not ch.updated and [u.alert for u in ch.resurfaced] == [a]
        assert "melding van 2 mrt. is nog niet gezien" in ch.resurfaced[0].reason
    # The day after a report the rule still sees it: more of the same.
    ch = step({"drowsiness_severe": a}, [finding(on=START)], START + timedelta(days=1), 7)
    assert len(ch.updated) == 1


def pain(level: float, severity="routine", opens=True) -> Finding:
    return Finding("pain_rise", "pain", severity, f"gemiddelde pijn {level}", START, level, 2.0, opens)


def test_step_resurfaces_an_alert_that_became_materially_worse_than_last_seen():
    a = OpenAlert("pain_rise", "pain", "routine", START, START, "x", "acknowledged", 1, 6.0, 5.1, START)
    today = START + timedelta(days=2)
    # Worse, but less than another important change (2 points) above the level last seen.
    assert len(step({"pain_rise": a}, [pain(7.0)], today, 3).updated) == 1
    ch = step({"pain_rise": a}, [pain(7.4)], today, 3)
    assert not ch.updated and not ch.opened and [u.alert for u in ch.resurfaced] == [a]
    assert ch.resurfaced[0].reason == "gemiddelde pijn 7.4; sinds 2 mrt. gestegen van 5,1 naar 7,4"
    # A higher severity is news once someone has seen the alert; unseen, it is raised in place.
    ch = step({"pain_rise": a}, [pain(6.0, "high")], today, 3)
    assert ch.resurfaced and "van routine naar hoog" in ch.resurfaced[0].reason
    unseen = msgspec.structs.replace(a, status="open")
    assert len(step({"pain_rise": unseen}, [pain(6.0, "high")], today, 3).updated) == 1


def test_a_noisy_patients_level_wandering_inside_a_rise_is_not_news_a_steady_ones_is():
    """The same recent days, 8,5 against a level of 5,5 seen before (+3, more than the 2,55
    of a clinically important change): for a patient whose days swing by 2-3 points
    that is their noise; for one whose days barely move it is news."""
    from backend.alerts.detection import Entry, Thresholds, evaluate

    def entries(base: list[int]) -> list[Entry]:
        days = [*(base[i % 10] for i in range(60)), 8, 9, 8, 9]
        return [
            Entry(
                "diary",
                START + timedelta(days=i),
                {"pain_avg": v},
                {},
                f"{START + timedelta(days=i)}T19:00:00Z",
            )
            for i, v in enumerate(days)
        ]

    today = START + timedelta(days=63)
    seen = OpenAlert("pain_rise", "pain", "high", START, today, "x", "acknowledged", 1, 5.5, 5.5, START)
    noisy, steady = (
        next(f for f in evaluate(entries(base), Thresholds(), today, START) if f.rule_id == "pain_rise")
        for base in ([1, 7, 2, 6, 4, 1, 7, 3, 6, 2], [4, 4, 3, 4, 5, 4, 4, 3, 4, 4])
    )
    assert noisy.level == steady.level == 8.5 and steady.material == pytest.approx(2.55)
    assert noisy.material > 3.3
    assert len(step({"pain_rise": seen}, [noisy], today, 3).updated) == 1
    assert step({"pain_rise": seen}, [steady], today, 3).resurfaced


def test_evidence_too_weak_to_open_keeps_an_open_alert_from_closing_but_opens_nothing():
    late = START + timedelta(days=10)
    a = OpenAlert(
        "pain_rise", "pain", "routine", START, late - timedelta(days=1), "x", level=6.0, seen_level=6.0
    )
    assert len(step({"pain_rise": a}, [pain(5.0, opens=False)], late, 3).updated) == 1
    assert not step({}, [pain(5.0, opens=False)], late, 3).opened


def test_step_routes_silence_reminders_to_the_patient_not_the_team():
    f = Finding("silence_reminder", "adherence", "routine", "2 dagen", START)
    ch = step({}, [f], START, 7)
    assert ch.reminders == [f] and not ch.opened


# -- stored -------------------------------------------------------------------------------------
def test_severe_drowsiness_opens_one_urgent_alert_and_a_new_report_is_a_new_alert(db):
    def run(conn):
        add_patient(conn)
        add_diary(conn, "p1", START, se_drowsiness=3)
        first = alerts.evaluate_patient(conn, "p1", START, None, {})
        add_diary(conn, "p1", START + timedelta(days=1), se_drowsiness=1)
        # The next day the report is still current: more of the same.
        second = alerts.evaluate_patient(conn, "p1", START + timedelta(days=1), None, {})
        one = [dict(r) for r in live(conn)]
        add_diary(conn, "p1", START + timedelta(days=2), se_drowsiness=3)
        third = alerts.evaluate_patient(conn, "p1", START + timedelta(days=2), None, {})
        return first, second, one, third, live(conn)

    first, second, one, third, rows = db.write_sync(run)
    assert len(first.opened_ids) == 1 and not second.opened_ids and len(second.updated) == 1
    assert len(one) == 1
    assert (one[0]["severity"], one[0]["status"], one[0]["category"]) == ("urgent", "open", "side_effect")
    assert one[0]["last_evidence_on"] == (START + timedelta(days=1)).isoformat()
    # Severe again on another day: a new urgent alert, never hidden in the unseen one.
    assert len(third.opened_ids) == 1 and [r["status"] for r in rows] == ["closed", "open"]
    assert "opnieuw gemeld op 4 mrt." in rows[1]["reason"] and rows[0]["superseded_by"] == rows[1]["id"]


def test_an_alert_closes_once_the_condition_is_clear_for_the_quiet_period(db):
    def run(conn):
        add_patient(conn, thresholds={"quiet_days": 3})
        for i in range(9):
            add_diary(conn, "p1", START + timedelta(days=i), se_constipation=2 if i < 3 else 0)
        for i in range(9):
            alerts.evaluate_patient(conn, "p1", START + timedelta(days=i), None, {})
        return live(conn)

    rows = db.write_sync(run)
    assert len(rows) == 1 and rows[0]["status"] == "closed" and rows[0]["closed_at"]


def test_an_urgent_alert_stays_open_until_a_clinician_sees_it_however_long_clear(db):
    def run(conn):
        add_user(conn)
        add_patient(conn, thresholds={"quiet_days": 3})
        for i in range(40):
            add_diary(conn, "p1", START + timedelta(days=i), se_drowsiness=3 if i == 0 else 0)
            alerts.evaluate_patient(conn, "p1", START + timedelta(days=i), None, {})
        still = [dict(r) for r in live(conn)]
        alerts.acknowledge(conn, still[0]["id"], 1, datetime(2026, 4, 10, 9, 0, tzinfo=UTC))
        alerts.evaluate_patient(conn, "p1", START + timedelta(days=40), None, {})
        return still, live(conn)

    still, after = db.write_sync(run)
    assert [r["status"] for r in still] == ["open"]
    assert [r["status"] for r in after] == ["closed"]


def add_user(conn) -> int:
    user = accounts.add_user(
        conn, email="a@b.nl", name="Verpleegkundige", role="clinician", password=PASSWORD
    )
    return user.id


def test_an_acknowledged_pain_alert_resurfaces_as_new_when_materially_worse(db):
    now = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def run(conn):
        user_id = add_user(conn)
        add_patient(conn)
        patients_store.set_team_seen(conn, "p1", "2026-04-30T10:00:00Z")
        day = START
        for i in range(60):
            add_diary(conn, "p1", day, pain_avg=(3, 4, 3, 4, 3)[i % 5])
            day += timedelta(days=1)
        for level in (7, 7, 7, 7):
            add_diary(conn, "p1", day, pain_avg=level)
            alerts.evaluate_patient(conn, "p1", day, None, {})
            day += timedelta(days=1)
        (first,) = live(conn)
        assert alerts.acknowledge(conn, first["id"], user_id, now)
        for level in (10, 10, 10, 10):
            add_diary(conn, "p1", day, pain_avg=level)
            alerts.evaluate_patient(conn, "p1", day, None, {})
            day += timedelta(days=1)
        seen = conn.execute("SELECT team_seen_at FROM patients").fetchone()[0]
        return first, live(conn), seen

    first, rows, seen = db.write_sync(run)
    assert first["status"] == "open" and first["level"] == 7.0
    old, new = rows
    assert (old["status"], old["superseded_by"]) == ("closed", new["id"])
    assert old["acknowledged_at"]  # the acknowledgement stays with what was seen
    assert (new["status"], new["acknowledged_at"], new["resurfaced_from"]) == ("open", None, old["id"])
    assert "gestegen van 7,0 naar 10" in new["reason"] and new["opened_on"] > old["opened_on"]
    assert seen is None  # the app no longer says the team has seen the reports


def test_only_one_live_alert_per_patient_and_rule_even_when_written_directly(db):
    def run(conn):
        add_patient(conn)
        add_diary(conn, "p1", START, se_drowsiness=3)
        alerts.evaluate_patient(conn, "p1", START, None, {})
        conn.execute(
            "INSERT INTO alerts (patient_id, rule_id, category, severity, opened_on, opened_at,"
            " updated_at, last_evidence_on, reason) SELECT patient_id, rule_id, category,"
            " severity, opened_on, opened_at, updated_at, last_evidence_on, reason FROM alerts"
        )

    with pytest.raises(sqlite3.IntegrityError):
        db.write_sync(run)


def test_a_resolved_alert_is_not_raised_again_while_the_condition_lasts(db):
    now = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)

    def with_user(conn):
        add_user(conn)
        add_patient(conn)
        for i in range(3):
            add_diary(conn, "p1", START + timedelta(days=i), se_constipation=2)
        alerts.evaluate_patient(conn, "p1", START + timedelta(days=2), None, {})
        (alert_id,) = [r["id"] for r in live(conn)]
        assert alerts.acknowledge(conn, alert_id, 1, now)
        assert not alerts.acknowledge(conn, alert_id, 1, now)  # compare-and-set
        alerts.add_note(conn, alert_id, 1, "Gebeld, laxans gestart", now)
        assert alerts.resolve(conn, alert_id, 1, "changed_medication", now)
        add_diary(conn, "p1", START + timedelta(days=3), se_constipation=2)
        later = alerts.evaluate_patient(conn, "p1", START + timedelta(days=3), None, {})
        add_diary(conn, "p1", START + timedelta(days=4), se_constipation=3)
        worse = alerts.evaluate_patient(conn, "p1", START + timedelta(days=4), None, {})
        return later, worse, live(conn)

    later, worse, rows = db.write_sync(with_user)
    assert not later.opened_ids  # still constipated: the resolved alert takes the evidence
    assert rows[0]["status"] == "resolved" and rows[0]["outcome"] == "changed_medication"
    # Severe constipation is a rule of its own: that does open.
    assert [r["rule_id"] for r in rows if r["status"] == "open"] == ["side_effect_severe.se_constipation"]
    assert worse.opened_ids


def test_sweep_catches_a_silent_patient_as_of_their_local_day(db, settings):
    def seed(conn):
        add_patient(conn)
        for i in range(10):
            add_diary(conn, "p1", START + timedelta(days=i))

    db.write_sync(seed)
    quiet_day = START + timedelta(days=9 + 2)
    at = datetime(quiet_day.year, quiet_day.month, quiet_day.day, 22, 30, tzinfo=UTC)
    assert alerts.sweep(db, settings, at, None, {}) == 0  # two silent days: no team alert yet
    # 23:30 UTC on the 5th silent day is already the 6th day in Amsterdam; the sweep follows
    # the patient's zone either way and opens the team alert once.
    silent = START + timedelta(days=9 + 5)
    at = datetime(silent.year, silent.month, silent.day, 20, 0, tzinfo=UTC)
    assert alerts.sweep(db, settings, at, None, {}) == 1
    assert alerts.sweep(db, settings, at + timedelta(days=1), None, {}) == 0
    rows = db.query("SELECT rule_id, category, opened_on FROM alerts")
    assert [(r["rule_id"], r["category"], r["opened_on"]) for r in rows] == [
        ("silence", "adherence", silent.isoformat())
    ]


def test_one_patient_with_broken_thresholds_does_not_stop_the_sweep(db, settings):
    def seed(conn):
        add_patient(conn, "p1", thresholds={"no_such_threshold": 1})
        add_patient(conn, "p2")

    db.write_sync(seed)
    at = datetime.combine(START + timedelta(days=10), datetime.min.time(), UTC) + timedelta(hours=20)
    assert alerts.sweep(db, settings, at, None, {}) == 1
    assert [r["patient_id"] for r in db.query("SELECT patient_id FROM alerts")] == ["p2"]


def test_unacknowledged_urgent_alerts_escalate_once(db, settings):
    opened = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)

    def run(conn):
        add_patient(conn)
        add_diary(conn, "p1", START, se_drowsiness=3)
        alerts.evaluate_patient(conn, "p1", START, None, {}, now=opened)

    db.write_sync(run)
    minutes = settings.escalate_after_minutes
    assert alerts.escalate(db, settings, opened + timedelta(minutes=minutes - 1)) == []
    ids = alerts.escalate(db, settings, opened + timedelta(minutes=minutes))
    assert len(ids) == 1
    assert alerts.escalate(db, settings, opened + timedelta(minutes=minutes + 5)) == []
    assert db.query_one("SELECT escalated_at FROM alerts")["escalated_at"]


def test_detection_reads_the_current_response_of_each_day_like_the_view(db):
    """Edits: the rules see, per questionnaire and day, exactly the response the
    current_responses view shows (the last written; same minute: the last stored)."""

    def job(conn):
        add_patient(conn)
        for i in range(20):
            add_diary(conn, "p1", START + timedelta(days=i), pain_avg=3)
        # Day 5 edited twice; the second edit in the same minute as the first.
        add_diary(conn, "p1", START + timedelta(days=5), pain_avg=8)
        add_diary(conn, "p1", START + timedelta(days=5), pain_avg=9)
        # An edit of day 7 written earlier than the original (clock wrong): the original wins.
        add_diary(conn, "p1", START + timedelta(days=7), at="2026-03-01T00:00:00Z", pain_avg=0)
        today = START + timedelta(days=19)
        entries = alerts.load_entries(conn, "p1", today, 57)
        view = conn.execute(
            "SELECT local_date, answers FROM current_responses WHERE patient_id = 'p1' ORDER BY local_date"
        ).fetchall()
        return entries, view

    entries, view = db.write_sync(job)
    assert [(e.local_date.isoformat(), e.answers) for e in entries] == [
        (r["local_date"], json.loads(r["answers"])) for r in view
    ]
    assert len(entries) == 20
    assert entries[5].answers["pain_avg"] == 9 and entries[7].answers["pain_avg"] == 3


def test_one_off_reads_do_not_push_the_writers_kept_reads_out(db, tmp_path, monkeypatch):
    """Other connections that read a patient once (keeping nothing) leave the writer's kept
    reads alone: its next evaluation after an edit reads only the day that changed."""
    today = START + timedelta(days=40)

    def seed(conn):
        add_patient(conn)
        for i in range(40):
            add_diary(conn, "p1", START + timedelta(days=i), pain_avg=3)

    db.write_sync(seed)
    db.write_sync(lambda conn: alerts.load_entries(conn, "p1", today, 57))
    others = [sqlite3.connect(tmp_path / "pijnwacht.db") for _ in range(2 * entries.KEPT_CONNECTIONS)]
    for conn in others:  # open at once (a closed connection's id is soon another's)
        alerts.load_entries(conn, "p1", today, 57, keep=False)
    for conn in others:
        conn.close()
    full_reads = []
    real = alerts.diary_store.detection_rows
    monkeypatch.setattr(alerts.diary_store, "detection_rows", lambda *a: full_reads.append(a) or real(*a))
    db.write_sync(lambda conn: add_diary(conn, "p1", today, pain_avg=5))
    assert db.write_sync(lambda conn: alerts.load_entries(conn, "p1", today, 57))[-1].answers["pain_avg"] == 5
    assert full_reads == []


def test_kept_reads_give_what_a_fresh_read_gives(db, tmp_path, monkeypatch):
    """The writer keeps what detection read of a patient and then reads only the days that
    changed (issue 17): after an edit, an edit rolled back, a late entry, another
    questionnaire, an operator's change and a write by another connection, the entries are
    those a new connection reads."""
    today = START + timedelta(days=40)

    def fresh() -> list:
        conn = sqlite3.connect(tmp_path / "pijnwacht.db")
        try:
            return alerts.load_entries(conn, "p1", today, 57, keep=False)  # read, keep nothing
        finally:
            conn.close()

    def kept() -> list:
        return db.write_sync(lambda conn: alerts.load_entries(conn, "p1", today, 57))

    def seed(conn):
        add_patient(conn)
        for i in range(40):
            add_diary(conn, "p1", START + timedelta(days=i), pain_avg=3 + i % 3)

    db.write_sync(seed)
    assert kept() == fresh() and len(fresh()) == 40
    full_reads = []
    real = alerts.diary_store.detection_rows
    monkeypatch.setattr(alerts.diary_store, "detection_rows", lambda *a: full_reads.append(a) or real(*a))
    # Today's diary, new (put last in place), then edited (replaced in place).
    db.write_sync(lambda conn: add_diary(conn, "p1", today, at=f"{today}T19:00:00Z", pain_avg=5))
    appended = kept()
    assert full_reads == []  # the new day only
    assert appended == fresh() and len(appended) == 41 and appended[-1].answers["pain_avg"] == 5
    full_reads.clear()
    db.write_sync(lambda conn: add_diary(conn, "p1", today, at=f"{today}T20:00:00Z", pain_avg=9))
    assert kept()[-1].answers["pain_avg"] == 9
    assert full_reads == []  # the changed day only
    assert kept() == fresh() and fresh()[-1].answers["pain_avg"] == 9
    # An edit authored before the current one (a phone that synced late) is not current; of
    # two edits stored together the later authored is, whatever the order they came in.
    full_reads.clear()
    db.write_sync(lambda conn: add_diary(conn, "p1", today, at=f"{today}T18:00:00Z", pain_avg=2))
    assert kept()[-1].answers["pain_avg"] == 9 and full_reads == []

    def two(conn):
        add_diary(conn, "p1", today, at=f"{today}T20:40:00Z", pain_avg=8)
        add_diary(conn, "p1", today, at=f"{today}T20:30:00Z", pain_avg=6)

    db.write_sync(two)
    assert kept()[-1].answers["pain_avg"] == 8 and full_reads == []
    assert kept() == fresh()

    def rolled_back(conn):
        conn.execute("SAVEPOINT edit")
        add_diary(conn, "p1", today, at=f"{today}T21:00:00Z", pain_avg=1)
        assert alerts.load_entries(conn, "p1", today, 57)[-1].answers["pain_avg"] == 1
        conn.execute("ROLLBACK TO edit")
        conn.execute("RELEASE edit")

    db.write_sync(rolled_back)
    assert kept() == fresh() and fresh()[-1].answers["pain_avg"] == 8
    kept()
    full_reads.clear()
    # An edit of an earlier day and a late entry for a day before all others: put where they
    # sort, the others not read again.
    db.write_sync(
        lambda conn: add_diary(conn, "p1", START + timedelta(days=30), at=f"{today}T08:00:00Z", pain_avg=7)
    )
    edited = kept()
    db.write_sync(lambda conn: add_diary(conn, "p1", START - timedelta(days=5), at=f"{today}T08:30:00Z"))
    late = kept()
    assert full_reads == []  # (fresh() reads in full: after these)
    assert edited[30].answers["pain_avg"] == 7 and late[0].local_date == START - timedelta(days=5)
    assert late == fresh()
    db.write_sync(
        lambda conn: store_response(conn, "p1", today, {}, questionnaire="pgic", scores={"pgic": 6})
    )
    assert kept() == fresh() and any(e.questionnaire == "pgic" for e in fresh())
    db.write_sync(lambda conn: conn.execute("DELETE FROM responses WHERE local_date = ?", (str(today),)))
    assert kept() == fresh() and fresh()[-1].local_date < today
    # An operator's change after an entry not yet read (its copy noted, then deleted or
    # corrected): neither the deleted entry nor the old answers come back later.
    late_day = today - timedelta(days=3)
    db.write_sync(lambda conn: add_diary(conn, "p1", late_day, at=f"{today}T09:00:00Z", pain_avg=9))
    db.write_sync(lambda conn: conn.execute("DELETE FROM responses WHERE local_date = ?", (str(late_day),)))
    db.write_sync(
        lambda conn: add_diary(conn, "p1", START + timedelta(days=38), at=f"{today}T09:05:00Z", pain_avg=8)
    )
    db.write_sync(
        lambda conn: conn.execute(
            'UPDATE responses SET answers = \'{"pain_avg": 3, "pain_worst": 4}\' WHERE local_date = ?',
            (str(START + timedelta(days=38)),),
        )
    )
    assert kept() == fresh()
    db.write_sync(lambda conn: add_diary(conn, "p1", today, at=f"{today}T23:00:00Z", pain_avg=2))
    assert kept() == fresh() and all(e.local_date != late_day for e in fresh())
    assert [e.answers["pain_avg"] for e in fresh() if e.local_date == START + timedelta(days=38)] == [3]
    other = sqlite3.connect(tmp_path / "pijnwacht.db", isolation_level=None)
    store_response(other, "p1", today, {"pain_avg": 2, "pain_worst": 3}, at=f"{today}T22:00:00Z")
    other.close()
    assert kept() == fresh() and fresh()[-1].answers["pain_avg"] == 2
    # The nightly sweep (every patient once) reads what is kept and keeps nothing new.
    assert db.write_sync(lambda conn: alerts.load_entries(conn, "p1", today, 57, keep=False)) == fresh()
