"""The scheduler shell on a real SQLite file: tasks, ticks, reminder claims, lease, pushes."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backend.diary.questionnaires import load_library
from backend.patients import store as patients_store
from backend.patients.pathways import load_pathways
from backend.platform.settings import Settings
from backend.platform.storage import Database, iso, open_database
from backend.push import queue as push_queue
from backend.push import sender as push
from backend.push import subscriptions
from backend.push.keys import ensure_vapid_keys
from backend.tasks import reminders, scheduler
from backend.tasks import store as tasks_store
from backend.tasks.tick import (
    TickScheduler,
    release_lease,
    run_tick,
    start_scheduler,
    take_lease,
)
from tests.conftest import make_patient, store_response
from tests.pushservice import PushService

AMS = ZoneInfo("Europe/Amsterdam")
QUESTIONNAIRES = Path(__file__).resolve().parent.parent / "questionnaires"


@pytest.fixture(scope="module")
def library():
    return load_library(QUESTIONNAIRES)


@pytest.fixture(scope="module")
def pathways(library):
    return load_pathways(QUESTIONNAIRES, library)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "pijnwacht.db"


@pytest.fixture
def db(db_path):
    database = open_database(db_path)
    yield database
    database.close()


@pytest.fixture
def settings(db_path) -> Settings:
    return Settings(db=str(db_path), push_timeout_seconds=2.0, push_allow_loopback=True)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), AMS).astimezone(UTC)


def add_patient(
    db, pid, *, pathway="chronic-pain", reminder="20:00", anchor="2026-03-20", enrolled=None, language="nl"
):
    enrolled = enrolled or iso(local(date.fromisoformat(anchor), 9))
    db.write_sync(
        lambda c: make_patient(
            c,
            pid,
            name=f"Patiënt {pid}",
            pathway=pathway,
            reminder_time=reminder,
            anchor=anchor,
            enrolled_at=enrolled,
            language=language,
        )
    )


def answer_diary(db, pid, day: date, now: datetime, rid: str | None = None) -> int | None:
    rid = rid or f"r-{pid}-{day}"

    def run(c):
        store_response(c, pid, day, {}, at=iso(now), response_id=rid)
        return tasks_store.complete_task(
            c,
            patient_id=pid,
            questionnaire_id="diary",
            task_id=None,
            local_date=day.isoformat(),
            response_id=rid,
        )

    return db.write_sync(run)


def diary_claims(db, pid):
    return db.query(
        "SELECT t.local_date, l.claimed_at FROM reminder_log l JOIN tasks t ON t.id = l.task_id"
        " WHERE l.patient_id = ? AND t.questionnaire_id = 'diary' ORDER BY l.id",
        (pid,),
    )


def tick(db, settings, pathways, now, library=None):
    return run_tick(db, settings, now, library, pathways)


# -- materialise, open tasks, completing ---------------------------------------------------
def test_enrolment_creates_the_horizon_of_diaries_and_every_prom_once(db, settings, pathways):
    add_patient(db, "p1", anchor="2026-03-20")
    now = local(date(2026, 3, 20), 10)
    made = db.write_sync(lambda c: scheduler.materialise(c, "p1", now, pathways))
    rows = db.query("SELECT questionnaire_id, label, local_date FROM tasks WHERE patient_id='p1'")
    diaries = [r for r in rows if r["questionnaire_id"] == "diary"]
    assert len(diaries) == scheduler.HORIZON_DAYS + 1
    assert sorted(r["label"] for r in rows if r["questionnaire_id"] == "bpi") == sorted(
        ["intake", "6w", "3m", "6m", "12m"]
    )
    assert made == len(rows)
    again = db.write_sync(lambda c: scheduler.materialise(c, "p1", now, pathways))
    assert again == 0
    assert len(db.query("SELECT id FROM tasks WHERE patient_id='p1'")) == len(rows)


def test_todays_diary_is_open_from_the_morning_and_gone_when_done(db, pathways):
    add_patient(db, "p1", anchor="2026-03-20")
    morning = local(date(2026, 3, 21), 7)
    db.write_sync(lambda c: scheduler.materialise(c, "p1", morning, pathways))
    tasks = tasks_store.open_tasks(db.reader, "p1", morning)
    diary = [t for t in tasks if t["questionnaire"] == "diary"]
    assert [t["local_date"] for t in diary] == ["2026-03-21"]
    assert diary[0]["due_at"] == iso(local(date(2026, 3, 21), 20))
    assert {t["questionnaire"] for t in tasks} >= {"bpi", "eq5d5l", "phq9", "gad7"}  # intake
    done = answer_diary(db, "p1", date(2026, 3, 21), morning)
    assert done == diary[0]["id"]
    assert not [t for t in tasks_store.open_tasks(db.reader, "p1", morning) if t["questionnaire"] == "diary"]


def test_a_task_id_of_another_patient_is_ignored(db, pathways):
    add_patient(db, "p1")
    add_patient(db, "p2")
    now = local(date(2026, 3, 21), 9)
    for pid in ("p1", "p2"):
        db.write_sync(lambda c, pid=pid: scheduler.materialise(c, pid, now, pathways))
    theirs = db.query_one(
        "SELECT id FROM tasks WHERE patient_id='p2' AND questionnaire_id='diary' AND local_date='2026-03-21'"
    )["id"]
    got = db.write_sync(
        lambda c: tasks_store.complete_task(
            c,
            patient_id="p1",
            questionnaire_id="diary",
            task_id=theirs,
            local_date="2026-03-21",
            response_id="r1",
        )
    )
    assert got != theirs
    assert db.query_one("SELECT status FROM tasks WHERE id=?", (theirs,))["status"] == "open"
    mine = db.query_one("SELECT patient_id, status FROM tasks WHERE id=?", (got,))
    assert tuple(mine) == ("p1", "done")


def test_past_window_tasks_expire_and_a_late_synced_diary_still_completes(db, settings, pathways):
    add_patient(db, "p1")
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day, 12))
    report = tick(db, settings, pathways, local(day + timedelta(days=1), 0, 5))
    assert report.expired >= 1
    row = db.query_one(
        "SELECT id, status FROM tasks WHERE patient_id='p1' AND questionnaire_id='diary' AND local_date=?",
        (day.isoformat(),),
    )
    assert row["status"] == "expired"
    assert not [
        t
        for t in tasks_store.open_tasks(db.reader, "p1", local(day + timedelta(1), 0, 5))
        if t["local_date"] == day.isoformat()
    ]
    # Written that evening on a phone without network, synced the next morning.
    assert answer_diary(db, "p1", day, local(day + timedelta(days=1), 8)) == row["id"]
    assert db.query_one("SELECT status FROM tasks WHERE id=?", (row["id"],))["status"] == "done"


# -- the reminder claims --------------------------------------------------------------------
def test_one_reminder_a_day_at_20_00_local_through_dst_concurrent_ticks_and_a_restart(
    db_path, settings, pathways
):
    """Ticks every 10 minutes, 26-31 March 2026 (DST on the 29th); two ticks at once on the
    evenings; the database reopened (a restart) on the 29th; the diary done early on the 30th."""
    db = open_database(db_path)
    add_patient(db, "p1", anchor="2026-03-26")
    first, last = date(2026, 3, 26), date(2026, 3, 31)
    now = local(first, 9)
    end = local(last + timedelta(days=1), 0)
    dbs = [db]
    try:
        while now < end:
            day = now.astimezone(AMS).date()
            if day == date(2026, 3, 30) and now.astimezone(AMS).hour == 12 and now.minute == 0:
                answer_diary(db, "p1", day, now)
            if now.astimezone(AMS).hour == 20 and now.minute == 0:
                if day == date(2026, 3, 29):
                    db.close()  # a restart: a new process with a new Database
                    db = open_database(db_path)
                    dbs.append(db)
                other = Database(db_path)
                dbs.append(other)
                results = []
                threads = [
                    threading.Thread(
                        target=lambda d=d, at=now, out=results: out.append(tick(d, settings, pathways, at))
                    )
                    for d in (db, other)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                # Whatever was due was claimed by one of the two, never by both.
                logged = db.query("SELECT task_id FROM reminder_log WHERE claimed_at = ?", (iso(now),))
                assert sum(r.reminders for r in results) == len(logged)
            else:
                tick(db, settings, pathways, now)
            now += timedelta(minutes=10)
        claims = diary_claims(db, "p1")
        twice = db.query("SELECT task_id, planned_at FROM reminder_log GROUP BY 1, 2 HAVING count(*) > 1")
        assert twice == []
        days = [r["local_date"] for r in claims]
        expected = [d.isoformat() for d in (first + timedelta(i) for i in range(6)) if d != date(2026, 3, 30)]
        assert days == expected
        for r in claims:
            at = datetime.fromisoformat(r["claimed_at"].replace("Z", "+00:00")).astimezone(AMS)
            assert at.date().isoformat() == r["local_date"] and at.time() == time(20, 0)
    finally:
        for d in dbs:
            d.close()


def test_no_reminder_when_the_diary_is_done(db, settings, pathways):
    add_patient(db, "p1")
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day, 9))
    answer_diary(db, "p1", day, local(day, 19))
    tick(db, settings, pathways, local(day, 20))
    assert not diary_claims(db, "p1")
    # The next day, not answered: reminded.
    tick(db, settings, pathways, local(day + timedelta(days=1), 20))
    assert [r["local_date"] for r in diary_claims(db, "p1")] == ["2026-03-22"]


def test_an_answer_not_linked_to_its_task_still_stops_the_reminder(db, settings, pathways):
    add_patient(db, "p1")
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day, 9))
    db.write_sync(lambda c: store_response(c, "p1", day, {}, at=iso(local(day, 18)), response_id="r"))
    report = tick(db, settings, pathways, local(day, 20))
    assert report.completed == 1 and not diary_claims(db, "p1")


def test_quiet_hours_hold_an_early_reminder_until_they_end(db, settings, pathways):
    add_patient(db, "p1", reminder="06:30")
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day - timedelta(days=1), 12))
    for hh, mm in ((6, 30), (7, 0), (7, 50)):
        assert tick(db, settings, pathways, local(day, hh, mm)).reminders == 0
    assert tick(db, settings, pathways, local(day, 8, 0)).reminders >= 1
    (claim,) = [r for r in diary_claims(db, "p1") if r["local_date"] == day.isoformat()]
    assert claim["claimed_at"] == iso(local(day, 8))


def test_a_reminder_found_hours_late_is_dropped_not_sent(db, settings, pathways):
    add_patient(db, "p1")
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day, 12))
    # The server was down from 19:00 to 21:30.
    report = tick(db, settings, pathways, local(day, 21, 30))
    assert report.reminders == 0 and report.late_skipped == 1
    assert tick(db, settings, pathways, local(day, 21, 31)).reminders == 0


def test_after_40_days_down_the_first_tick_at_20_03_sends_that_evenings_reminder(db, settings, pathways):
    add_patient(db, "p1", anchor="2026-03-20")
    db.write_sync(
        lambda c: c.execute(
            "INSERT INTO push_subscriptions (patient_id, endpoint, p256dh, auth, created_at)"
            " VALUES ('p1', 'https://push.example/p1', 'k', 'a', '2026-03-20T09:00:00Z')"
        )
    )
    tick(db, settings, pathways, local(date(2026, 3, 21), 12))  # planned a week ahead, then down
    back = date(2026, 3, 21) + timedelta(days=40)
    report = tick(db, settings, pathways, local(back, 20, 3))
    assert report.planned == 1  # today's diary exists only since this tick, after 20:00
    assert (report.reminders, report.pushes_queued, report.late_skipped) == (1, 1, 0)
    assert [r["local_date"] for r in diary_claims(db, "p1")][-1] == back.isoformat()
    queued = db.query("SELECT payload FROM push_queue")
    assert [json.loads(q["payload"])["body"] for q in queued] == ["Tijd voor uw dagboek"]
    # Planned past the grace (21:30): that evening is dropped, not sent at night.
    add_patient(db, "p2", anchor="2026-03-20")
    assert tick(db, settings, pathways, local(back, 21, 30)).reminders == 0


def test_reminders_of_a_prom_repeat_until_answered(db, settings, pathways):
    add_patient(db, "p1", anchor="2026-03-21")  # intake PROMs on the 21st, 3 reminders 48 h apart
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day, 12))
    tick(db, settings, pathways, local(day, 20))
    bpi = db.query_one(
        "SELECT id, reminders_sent, next_reminder_at FROM tasks WHERE patient_id='p1'"
        " AND questionnaire_id='bpi' AND label='intake'"
    )
    assert bpi["reminders_sent"] == 1
    assert bpi["next_reminder_at"] == iso(local(day, 20) + timedelta(hours=48))
    # Answered the next day: no second reminder.
    db.write_sync(
        lambda c: tasks_store.complete_task(
            c,
            patient_id="p1",
            questionnaire_id="bpi",
            task_id=bpi["id"],
            local_date="2026-03-22",
            response_id="rb",
        )
    )
    tick(db, settings, pathways, local(day + timedelta(days=2), 20))
    row = db.query_one("SELECT status, reminders_sent FROM tasks WHERE id=?", (bpi["id"],))
    assert tuple(row) == ("done", 1)


# -- the claim, row by row: hand-made tasks, no planning ------------------------------------
T20 = datetime(2026, 3, 21, 19, 0, 0, 250_000, tzinfo=UTC)  # 20:00 in Amsterdam, plus 0.25 s


def manual_patient(db, pid, *, language="nl", devices=1, gone=0):
    """A patient whose tasks the test writes itself: the scheduler never plans them."""
    add_patient(db, pid, language=language)

    def run(c):
        c.execute(
            "UPDATE patient_schedule SET next_roll_at = NULL, plan_key = 'manual' WHERE patient_id = ?",
            (pid,),
        )
        for n in range(devices + gone):
            c.execute(
                "INSERT INTO push_subscriptions (patient_id, endpoint, p256dh, auth, created_at,"
                " deactivated_at) VALUES (?, ?, 'k', 'a', ?, ?)",
                (
                    pid,
                    f"https://push.example/{pid}/{n}",
                    iso(T20 - timedelta(days=9)),
                    iso(T20 - timedelta(days=1)) if n >= devices else None,
                ),
            )

    db.write_sync(run)


def manual_task(db, pid, questionnaire, reminders, expires, *, local_date="2026-03-21"):
    times = [iso(r) for r in reminders]

    def run(c):
        return c.execute(
            "INSERT INTO tasks (patient_id, questionnaire_id, local_date, until_date, opens_at,"
            " due_at, expires_at, reminder_times, next_reminder_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pid,
                questionnaire,
                local_date,
                local_date,
                iso(T20 - timedelta(hours=20)),
                times[0],
                iso(expires),
                json.dumps(times),
                times[0],
                iso(T20 - timedelta(days=2)),
            ),
        ).lastrowid

    return db.write_sync(run)


# The quiet hours begin at 22:00 in Amsterdam (PIJNWACHT_QUIET_START's default): 21:00 UTC.
QUIET_22 = datetime(2026, 3, 21, 21, 0, tzinfo=UTC)


def expected_message(tasks, language, now):
    """What one patient's push says (the claim's rules, reminders.py, written out again here):
    tasks are (id, questionnaire, expires) in claim order (by reminder time, then id); it is
    kept until the first task expires or the quiet hours begin, whichever comes first."""
    texts = reminders.MESSAGES[language]
    diary = [t for t in tasks if t[1] == "diary"]
    first = (diary or tasks)[0]
    until = min(QUIET_22, *(t[2] for t in tasks))
    ttl = int(min(max((until - now).total_seconds(), 60), push_queue.MAX_TTL))
    message = push_queue.PushMessage(
        title=texts["title"],
        body=texts["diary"] if diary else texts["questionnaire"],
        url="/#/today" if diary or len(tasks) > 1 else f"/#/task/{first[0]}",
        tag=f"task-{first[0]}",
        ttl=ttl,
    )
    return push_queue.payload(message), ttl, message.tag


def test_the_20_00_claim_queues_one_message_per_patient_and_logs_every_task(db, settings, pathways):
    now = T20
    at19 = now.replace(microsecond=0)  # as stored: whole seconds
    soon, day, week = at19 + timedelta(seconds=30), at19 + timedelta(hours=4), at19 + timedelta(days=7)
    manual_patient(db, "pa")  # the diary: one device
    a = manual_task(db, "pa", "diary", [at19], day)
    manual_patient(db, "pb", language="en", devices=2, gone=1)  # a PROM only: two devices
    b = manual_task(db, "pb", "bpi", [at19, at19 + timedelta(hours=48)], week)
    manual_patient(db, "pc", devices=0)  # diary and PROM at once, no device: logged, no push
    c1 = manual_task(db, "pc", "diary", [at19], day)
    c2 = manual_task(db, "pc", "bpi", [at19], week)
    manual_patient(db, "pd", language="en")  # two PROMs; one nearly expired, one far off
    d1 = manual_task(db, "pd", "peg", [at19 - timedelta(minutes=1)], soon)
    d2 = manual_task(db, "pd", "bpi", [at19 - timedelta(minutes=30)], at19 + timedelta(days=40))
    manual_patient(db, "pe")  # answered before its task was linked: done, no reminder
    e = manual_task(db, "pe", "diary", [at19], day)
    manual_patient(db, "ph")  # the diary answered, a PROM not: the push is for the PROM
    h1 = manual_task(db, "ph", "diary", [at19], day)
    h2 = manual_task(db, "ph", "bpi", [at19], week)
    for rid, pid in (("re", "pe"), ("rh", "ph")):
        db.write_sync(
            lambda c, rid=rid, pid=pid: store_response(
                c, pid, date(2026, 3, 21), {}, at=iso(now - timedelta(hours=1)), response_id=rid
            )
        )
    manual_patient(db, "pf")  # 90 minutes late: dropped, the next reminder stays
    f = manual_task(db, "pf", "diary", [at19 - timedelta(minutes=90), at19 + timedelta(minutes=30)], day)
    manual_patient(db, "pg")  # a PROM due before the diary: the diary still names the push
    g1 = manual_task(db, "pg", "bpi", [at19 - timedelta(minutes=15)], week)
    g2 = manual_task(db, "pg", "diary", [at19], day)

    report = tick(db, settings, pathways, now)
    assert (report.reminders, report.pushes_queued, report.completed, report.late_skipped) == (9, 6, 2, 1)

    subs = {
        r["patient_id"]: [
            s["id"]
            for s in db.query(
                "SELECT id FROM push_subscriptions WHERE patient_id = ? AND deactivated_at IS NULL"
                " ORDER BY id",
                (r["patient_id"],),
            )
        ]
        for r in db.query("SELECT id AS patient_id FROM patients")
    }
    messages = {
        "pa": expected_message([(a, "diary", day)], "nl", now),
        "pb": expected_message([(b, "bpi", week)], "en", now),
        "pd": expected_message([(d2, "bpi", at19 + timedelta(days=40)), (d1, "peg", soon)], "en", now),
        "pg": expected_message([(g1, "bpi", week), (g2, "diary", day)], "nl", now),
        "ph": expected_message([(h2, "bpi", week)], "nl", now),
    }
    # Until 22:00, not the diary's midnight: the quiet hours begin then (whole seconds).
    assert messages["pa"][1] == 2 * 3600 - 1 and messages["pb"][1] == 2 * 3600 - 1
    assert messages["pd"][1] == 60 and f"task-{d2}" == messages["pd"][2]
    assert '"url":"/#/task/' in messages["pb"][0] and f'"tag":"task-{g2}"' in messages["pg"][0]
    expected_queue = sorted(
        (sub, payload, "normal", ttl, tag, iso(now), iso(now + timedelta(seconds=ttl)), iso(now), "queued")
        for pid, (payload, ttl, tag) in messages.items()
        for sub in subs[pid]
    )
    queue = db.query(
        "SELECT subscription_id, payload, urgency, ttl, topic, created_at, expires_at,"
        " next_attempt_at, status FROM push_queue ORDER BY subscription_id"
    )
    assert [tuple(r) for r in queue] == expected_queue

    log_rows = db.query("SELECT task_id, patient_id, planned_at, claimed_at, pushes FROM reminder_log")
    planned = {
        a: at19,
        b: at19,
        c1: at19,
        c2: at19,
        d1: at19 - timedelta(minutes=1),
        d2: at19 - timedelta(minutes=30),
        g1: at19 - timedelta(minutes=15),
        g2: at19,
        h2: at19,
    }
    devices = {"pa": 1, "pb": 2, "pc": 0, "pd": 1, "pg": 1, "ph": 1}
    owner = {a: "pa", b: "pb", c1: "pc", c2: "pc", d1: "pd", d2: "pd", g1: "pg", g2: "pg", h2: "ph"}
    assert sorted(tuple(r) for r in log_rows) == sorted(
        (t, owner[t], iso(p), iso(now), devices[owner[t]]) for t, p in planned.items()
    )

    tasks = {r["id"]: r for r in db.query("SELECT * FROM tasks")}
    assert tasks[b]["next_reminder_at"] == iso(at19 + timedelta(hours=48))
    assert all(tasks[t]["next_reminder_at"] is None for t in planned if t != b)
    assert all(
        tasks[t]["reminders_sent"] == 1 and tasks[t]["reminder_claimed_at"] == iso(now) for t in planned
    )
    assert (tasks[e]["status"], tasks[e]["response_id"], tasks[e]["reminders_sent"]) == ("done", "re", 0)
    assert (tasks[h1]["status"], tasks[h1]["response_id"], tasks[h1]["reminders_sent"]) == ("done", "rh", 0)
    assert tasks[f]["next_reminder_at"] == iso(at19 + timedelta(minutes=30))
    assert tasks[f]["reminders_sent"] == 0

    # The same minute again (a second server, cron): nothing left to claim.
    again = tick(db, settings, pathways, now)
    assert (again.reminders, again.pushes_queued, again.completed, again.late_skipped) == (0, 0, 0, 0)
    assert len(db.query("SELECT id FROM push_queue")) == len(expected_queue)


def test_a_patients_tasks_due_at_once_make_one_push_across_claim_chunks(db, settings, pathways, monkeypatch):
    monkeypatch.setattr(reminders, "CLAIM_CHUNK", 2)
    at19 = T20.replace(microsecond=0)
    far = T20 + timedelta(days=7)
    manual_patient(db, "px")
    manual_patient(db, "py")
    x1 = manual_task(db, "px", "bpi", [at19 - timedelta(minutes=2)], far)
    manual_task(db, "py", "diary", [at19 - timedelta(minutes=1)], far)
    x2 = manual_task(db, "px", "phq9", [at19], far)
    for n in range(5):  # and more patients than fit in one chunk
        manual_patient(db, f"pz{n}", language="en", devices=2)
        manual_task(db, f"pz{n}", "diary", [at19], far)
    report = tick(db, settings, pathways, T20)
    assert (report.reminders, report.pushes_queued) == (3 + 5, 2 + 5 * 2)
    per_patient = db.query(
        "SELECT s.patient_id, count(*) AS n, min(q.payload) AS payload FROM push_queue q"
        " JOIN push_subscriptions s ON s.id = q.subscription_id GROUP BY s.patient_id"
    )
    pushes = {r["patient_id"]: r["n"] for r in per_patient}
    assert pushes == {"px": 1, "py": 1, **{f"pz{n}": 2 for n in range(5)}}
    (px,) = [r["payload"] for r in per_patient if r["patient_id"] == "px"]
    assert json.loads(px) == {
        "title": "Pijnwacht",
        "body": "Er staat een vragenlijst voor u klaar",
        "url": "/#/today",
        "tag": f"task-{x1}",
    }
    logged = db.query("SELECT task_id, count(*) AS n FROM reminder_log GROUP BY task_id")
    assert len(logged) == 8 and {r["n"] for r in logged} == {1}
    assert x2 in {r["task_id"] for r in logged}
    assert tick(db, settings, pathways, T20).reminders == 0


def test_a_claim_that_lost_a_race_is_rolled_back_with_its_pushes_and_log(db, settings, pathways):
    at19 = T20.replace(microsecond=0)
    manual_patient(db, "pa")
    a = manual_task(db, "pa", "diary", [at19], at19 + timedelta(hours=4))
    manual_patient(db, "pb")
    b = manual_task(db, "pb", "diary", [at19], at19 + timedelta(hours=4))
    tick(db, settings, pathways, T20 - timedelta(hours=2))  # nothing due yet
    # Another pass claims pb's reminder between this pass's read and its claim (impossible
    # inside one BEGIN IMMEDIATE; a trigger on the writer's connection plays the other pass).
    db.write_sync(
        lambda c: c.execute(
            "CREATE TEMP TRIGGER other_pass AFTER INSERT ON scheduler_claim"
            f" WHEN new.id = {b} BEGIN"
            "  UPDATE tasks SET next_reminder_at = NULL, reminders_sent = 1 WHERE id = new.id;"
            " END"
        )
    )
    with pytest.raises(RuntimeError, match="raced"):
        tick(db, settings, pathways, T20)
    assert db.query("SELECT id FROM push_queue") == []
    assert db.query("SELECT id FROM reminder_log") == []
    row = db.query_one("SELECT next_reminder_at, reminders_sent FROM tasks WHERE id = ?", (a,))
    assert tuple(row) == (iso(at19), 0)
    db.write_sync(lambda c: c.execute("DROP TRIGGER temp.other_pass"))
    db.write_sync(lambda c: c.execute("UPDATE tasks SET next_reminder_at = NULL WHERE id = ?", (b,)))
    report = tick(db, settings, pathways, T20)
    assert (report.reminders, report.pushes_queued) == (1, 1)
    assert [r["task_id"] for r in db.query("SELECT task_id FROM reminder_log")] == [a]


def test_the_20_00_chunks_checkpoint_beside_the_writer_and_give_its_setting_back(
    db, db_path, settings, pathways, monkeypatch
):
    """A commit of the writer that crosses wal_autocheckpoint copies the WAL inside its job,
    and a phone's PUT queued behind that job waits for it: while the claim's chunks run, the
    writer does not checkpoint (the tick's own thread does, beside it), and afterwards it
    checkpoints as configured again - also when a chunk fails. Under Litestream (0) nothing
    changes."""
    monkeypatch.setattr(reminders, "CLAIM_CHUNK", 2)
    at19 = T20.replace(microsecond=0)
    ids = []
    for n in range(7):
        manual_patient(db, f"p{n}")
        ids.append(manual_task(db, f"p{n}", "diary", [at19], at19 + timedelta(hours=4)))
    setting = []  # the writer's wal_autocheckpoint as each write job of the tick starts
    submit = db.writer.submit

    def noted(fn):
        def job(conn):
            setting.append(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            return fn(conn)

        return submit(job)

    monkeypatch.setattr(db.writer, "submit", noted)
    report = tick(db, settings, pathways, T20)
    assert (report.reminders, report.pushes_queued) == (7, 7)
    # Four claim jobs (2 + 2 + 2 + 1): the first with the setting (most minutes have one job
    # only), the other three without; then the setting back, for every later job.
    assert 0 in setting and setting[-1] == 1000
    assert setting.count(0) == 3 + 1  # three chunks and the job that gives the setting back
    monkeypatch.setattr(db.writer, "submit", submit)
    assert db.write_sync(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 1000

    # A chunk that fails half-way (another pass took one of its tasks): rolled back, and
    # the writer checkpoints again.
    late = []
    for n in range(7, 12):
        manual_patient(db, f"p{n}")
        late.append(manual_task(db, f"p{n}", "diary", [at19], at19 + timedelta(hours=4)))
    db.write_sync(
        lambda c: c.execute(
            f"CREATE TEMP TRIGGER other_pass AFTER INSERT ON scheduler_claim WHEN new.id = {late[-1]}"
            " BEGIN UPDATE tasks SET next_reminder_at = NULL WHERE id = new.id; END"
        )
    )
    with pytest.raises(RuntimeError, match="raced"):
        tick(db, settings, pathways, T20)
    db.write_sync(lambda c: c.execute("DROP TRIGGER temp.other_pass"))
    assert db.write_sync(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 1000
    assert len(db.query("SELECT id FROM reminder_log")) == 7 + 4  # the chunks before it stay

    # Litestream's server (wal_autocheckpoint 0) never checkpoints, during the claim neither.
    db.close()
    litestream = open_database(db_path, wal_autocheckpoint=0)
    try:
        for n in range(12, 17):
            manual_patient(litestream, f"p{n}")
            manual_task(litestream, f"p{n}", "diary", [at19], at19 + timedelta(hours=4))
        # Five, and the one of the failed chunk (its job rolled back, the trigger's take too).
        assert tick(litestream, settings, pathways, T20).reminders == 5 + 1
        assert litestream.write_sync(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
    finally:
        litestream.close()


# -- changes by the clinician ---------------------------------------------------------------
def test_a_new_reminder_time_applies_from_today_and_the_past_stays(db, settings, pathways):
    add_patient(db, "p1")
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day - timedelta(days=1), 12))
    tick(db, settings, pathways, local(day - timedelta(days=1), 20))
    db.write_sync(lambda c: patients_store.update(c, "p1", {"reminder_time": "21:00"}))
    # No explicit materialise: the tick notices the change itself.
    assert tick(db, settings, pathways, local(day, 15)).planned == 1
    assert tick(db, settings, pathways, local(day, 20)).reminders == 0
    assert tick(db, settings, pathways, local(day, 21)).reminders == 1
    yesterday = db.query_one(
        "SELECT due_at FROM tasks WHERE patient_id='p1' AND questionnaire_id='diary' AND local_date=?",
        ((day - timedelta(days=1)).isoformat(),),
    )
    assert yesterday["due_at"] == iso(local(day - timedelta(days=1), 20))


def test_a_pathway_change_replaces_the_future_and_keeps_the_past(db, settings, pathways):
    add_patient(db, "p1", anchor="2026-03-01")
    start = date(2026, 3, 1)
    for i in range(5):
        tick(db, settings, pathways, local(start + timedelta(days=i), 21))
    answer_diary(db, "p1", start + timedelta(days=2), local(start + timedelta(days=2), 22))
    before = {
        tuple(r)
        for r in db.query(
            "SELECT id, questionnaire_id, local_date, status FROM tasks WHERE patient_id='p1'"
            " AND local_date < '2026-03-06'"
        )
    }
    now = local(date(2026, 3, 6), 10)

    def change(c):
        patients_store.update(c, "p1", {"pathway_id": "palliative"})
        return scheduler.materialise(c, "p1", now, pathways, settings=settings)

    db.write_sync(change)
    after = {
        tuple(r)
        for r in db.query(
            "SELECT id, questionnaire_id, local_date, status FROM tasks WHERE patient_id='p1'"
            " AND local_date < '2026-03-06'"
        )
    }
    assert after == before  # done, expired and the intake PROMs of the past: unchanged
    future = db.query(
        "SELECT questionnaire_id, status FROM tasks WHERE patient_id='p1' AND local_date >= '2026-03-06'"
    )
    open_now = {r["questionnaire_id"] for r in future if r["status"] == "open"}
    assert open_now == {"diary", "esas"}
    cancelled = {r["questionnaire_id"] for r in future if r["status"] == "cancelled"}
    assert {"bpi", "peg", "pgic"} <= cancelled
    assert tick(db, settings, pathways, local(date(2026, 3, 6), 20)).reminders == 2
    assert tick(db, settings, pathways, local(date(2026, 3, 6), 20)).reminders == 0


def test_a_patient_who_left_gets_no_more_reminders(db, settings, pathways):
    add_patient(db, "p1")
    day = date(2026, 3, 21)
    tick(db, settings, pathways, local(day, 12))
    db.write_sync(lambda c: patients_store.update(c, "p1", {"status": "left"}))
    assert tick(db, settings, pathways, local(day, 20)).reminders == 0
    assert not tasks_store.open_tasks(db.reader, "p1", local(day, 20))


def test_daily_tasks_roll_forward_without_planning_every_tick(db, settings, pathways):
    add_patient(db, "p1")
    now = local(date(2026, 3, 21), 12)
    assert tick(db, settings, pathways, now).planned == 1
    assert tick(db, settings, pathways, now + timedelta(minutes=1)).planned == 0
    later = now + timedelta(days=scheduler.HORIZON_DAYS - scheduler.ROLL_AHEAD_DAYS + 1)
    assert tick(db, settings, pathways, later).planned == 1
    last = db.query_one("SELECT max(local_date) AS d FROM tasks WHERE questionnaire_id='diary'")
    assert last["d"] == (later.astimezone(AMS).date() + timedelta(scheduler.HORIZON_DAYS)).isoformat()


def test_an_unknown_pathway_is_logged_and_retried_later_not_every_tick(db, settings, pathways):
    add_patient(db, "p1")  # enrolled in a pathway the server has since retired
    db.write_sync(lambda c: patients_store.update(c, "p1", {"pathway_id": "retired-pathway"}))
    add_patient(db, "p2")
    now = local(date(2026, 3, 21), 12)
    report = tick(db, settings, pathways, now)
    assert report.plan_errors == 1 and report.planned == 1
    assert tick(db, settings, pathways, now + timedelta(minutes=1)).plan_errors == 0


# -- lease and the in-process scheduler -----------------------------------------------------
def test_only_one_process_holds_the_lease(db):
    now = datetime(2026, 3, 21, 12, tzinfo=UTC)
    take = lambda holder, at: db.write_sync(lambda c: take_lease(c, holder, at))  # noqa: E731
    assert take("a", now)
    assert not take("b", now + timedelta(seconds=30))
    assert take("a", now + timedelta(minutes=1))  # renewed
    assert not take("b", now + timedelta(minutes=3))
    assert take("b", now + timedelta(minutes=4, seconds=1))  # a stopped renewing: expired
    assert not take("a", now + timedelta(minutes=5))
    assert db.write_sync(lambda c: release_lease(c, "b"))
    assert take("a", now + timedelta(minutes=5))


def test_the_scheduler_ticks_at_start_and_a_second_one_stands_by(db, settings, library, pathways):
    add_patient(db, "p1", anchor="2026-03-20")
    first = start_scheduler(db, settings, library, pathways, push=None)
    second = TickScheduler(db, settings, library, pathways, None)
    try:
        job = first.get_job("tick")
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time is None
        for _ in range(100):
            if first.last_report is not None:
                break
            threading.Event().wait(0.05)
        assert first.last_report is not None and first.last_report.planned == 1
        assert second.tick() is None  # the lease is taken
    finally:
        first.stop()
    assert second.tick() is not None  # handed back on stop


# -- end to end, with Web Push --------------------------------------------------------------
def test_one_encrypted_push_at_20_00_local_each_day(db, settings, tmp_path, pathways):
    add_patient(db, "p1", anchor="2026-03-27", language="nl")
    add_patient(db, "p2", anchor="2026-03-27", language="en")
    keys = ensure_vapid_keys(tmp_path)
    with PushService() as service:
        subs = {}
        for pid in ("p1", "p2"):
            subs[pid] = service.new_subscription()
            db.write_sync(
                lambda c, pid=pid: subscriptions.save_subscription(
                    c,
                    patient_id=pid,
                    subscription=subs[pid],
                    now=local(date(2026, 3, 27), 9),
                    allow_loopback=True,
                )
            )

        def run(now):
            return run_tick(
                db,
                settings,
                now,
                None,
                pathways,
                push=lambda at: push.flush_sync(db, settings, keys, at),
            )

        for day in (date(2026, 3, 28), date(2026, 3, 29)):  # the 29th: DST
            for hh, mm in ((12, 0), (19, 59), (20, 0), (20, 1), (23, 0)):
                run(local(day, hh, mm))
        assert service.errors == []
        got = service.received(subs["p1"]["endpoint"])
        assert len(got) == 2
        payloads = [m["payload"] for m in got]
        assert {p["body"] for p in payloads} == {"Tijd voor uw dagboek"}
        assert all(p["url"] == "/#/today" and p["tag"].startswith("task-") for p in payloads)
        # Only the fixed message fields travel: no scores, answers or names.
        assert all(set(p) == {"title", "body", "url", "tag"} for p in payloads)
        english = [m["payload"] for m in service.received(subs["p2"]["endpoint"])]
        assert [p["body"] for p in english] == ["Time for your diary"] * 2
    claimed = [r["claimed_at"] for r in diary_claims(db, "p1")]
    assert [
        datetime.fromisoformat(c.replace("Z", "+00:00")).astimezone(AMS).strftime("%d %H:%M")
        for c in claimed[-2:]
    ] == ["28 20:00", "29 20:00"]


def test_pijnwacht_tick_from_cron_claims_once(db, db_path, pathways, capsys):
    from backend import cli

    add_patient(db, "p1", anchor="2026-03-20")
    at = iso(local(date(2026, 3, 21), 20))
    assert cli.main(["--db", str(db_path), "tick", "--now", at]) == 0
    assert cli.main(["--db", str(db_path), "tick", "--now", at]) == 0
    first, second = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert '"reminders": 1' in first and '"reminders": 0' in second
    assert [r["local_date"] for r in diary_claims(db, "p1")] == ["2026-03-21"]


def test_old_reminder_history_is_pruned_once_a_day(db, settings, pathways):
    add_patient(db, "p1", anchor="2026-01-01")
    tick(db, settings, pathways, local(date(2026, 1, 1), 12))
    tick(db, settings, pathways, local(date(2026, 1, 1), 20))
    assert db.query_one("SELECT count(*) AS n FROM reminder_log")["n"] >= 1
    # Within the keeping time nothing goes; past it, the first tick of the day prunes.
    assert tick(db, settings, pathways, local(date(2026, 3, 1), 12)).pruned == 0
    later = local(date(2026, 1, 1), 12) + timedelta(days=scheduler.KEEP_REMINDER_LOG_DAYS + 2)
    assert tick(db, settings, pathways, later).pruned >= 1
    assert db.query_one("SELECT count(*) AS n FROM reminder_log")["n"] == 0
    assert tick(db, settings, pathways, later + timedelta(minutes=1)).pruned == 0


def test_the_reminder_log_prune_goes_a_chunk_at_a_time_along_the_log_and_keeps_the_recent(
    db, settings, pathways
):
    """Older rows first (logged at "now", ids grow with the claim time): chunk after chunk
    deletes the old, keeps the recent, and stops at the first chunk with nothing old; no
    index on claimed_at is needed (the 20:00 minute writes one entry less per reminder)."""
    add_patient(db, "p1", anchor="2026-01-01")
    tick(db, settings, pathways, local(date(2026, 1, 1), 12))  # plans the tasks
    task = db.query_one("SELECT id FROM tasks LIMIT 1")["id"]
    old = [f"2026-01-{1 + i // 100:02d}T20:00:{i % 60:02d}Z" for i in range(250)]
    recent = [f"2026-03-{1 + i // 10:02d}T20:00:00Z" for i in range(30)]

    def fill(conn):
        conn.executemany(
            "INSERT INTO reminder_log (task_id, patient_id, planned_at, claimed_at) VALUES (?, 'p1', ?, ?)",
            [(task, at, at) for at in old + recent],
        )

    db.write_sync(fill)
    before = "2026-02-01T00:00:00Z"
    steps, after = [], 0
    while after is not None:
        deleted, after = db.write_sync(lambda c, a=after: tasks_store.prune_reminder_log(c, before, a, 100))
        steps.append(deleted)
    assert steps == [100, 100, 50, 0]  # the third chunk: 50 old and 50 recent; then done
    left = db.query("SELECT claimed_at FROM reminder_log ORDER BY id")
    assert [r["claimed_at"] for r in left] == recent
    indexes = {r["name"] for r in db.query("SELECT name FROM sqlite_schema WHERE tbl_name = 'reminder_log'")}
    assert "reminder_log_claimed" not in indexes and "reminder_log_patient" in indexes


def test_a_failing_alert_pass_does_not_stop_the_reminders_or_the_other_pass(
    db, settings, pathways, monkeypatch
):
    from backend.alerts import lifecycle as alerts

    def broken(*args):
        raise RuntimeError("escalation broke")

    monkeypatch.setattr(alerts, "escalate", broken)
    add_patient(db, "p1", anchor="2026-03-20")
    report = tick(db, settings, pathways, local(date(2026, 3, 21), 20))
    assert report.passes == {"escalate": "error", "nightly": {"alerts_opened": 0}}
    assert [r["local_date"] for r in diary_claims(db, "p1")] == ["2026-03-21"]


def test_two_tick_processes_at_once_send_one_reminder(db, db_path, pathways):
    """Two `pijnwacht tick` processes at the same minute (two crons, or cron beside a server)."""
    import os
    import subprocess
    import sys

    for n in range(5):
        add_patient(db, f"p{n}", anchor="2026-03-20")
    at = iso(local(date(2026, 3, 21), 20))
    env = {**os.environ, "PIJNWACHT_DB": str(db_path)}
    cmd = [sys.executable, "-m", "backend.cli", "tick", "--now", at]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    total = sum(int(o.split('"reminders": ')[1].split(",")[0]) for o in outs)
    assert total == 5
    rows = db.query("SELECT task_id, count(*) AS n FROM reminder_log GROUP BY task_id")
    assert len(rows) == 5 and {r["n"] for r in rows} == {1}
