"""The pure schedule: due times in the patient's zone (DST), windows, offsets, quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backend.diary.questionnaires import load_library
from backend.patients.pathways import load_pathways
from backend.tasks.schedule import QuietHours, plan

AMS = ZoneInfo("Europe/Amsterdam")
QUIET = QuietHours(time(22, 0), time(8, 0))
QUESTIONNAIRES = Path(__file__).resolve().parent.parent / "questionnaires"


@pytest.fixture(scope="module")
def pathways():
    return load_pathways(QUESTIONNAIRES, load_library(QUESTIONNAIRES))


def diaries(pathway, *, start, end, at=time(20, 0), quiet=None, enrolled=None, anchor=None):
    tasks = plan(
        pathway,
        anchor_date=anchor or date(2026, 1, 5),
        enrolled_on=enrolled or date(2026, 1, 5),
        reminder_time=at,
        tz=AMS,
        start=start,
        end=end,
        quiet=quiet,
    )
    return [t for t in tasks if t.questionnaire == "diary"]


@pytest.mark.parametrize(
    "start, switch",
    [(date(2026, 3, 27), date(2026, 3, 29)), (date(2026, 10, 23), date(2026, 10, 25))],
)
def test_a_20_00_reminder_stays_20_00_local_through_the_dst_switch(pathways, start, switch):
    tasks = diaries(pathways["chronic-pain"], start=start, end=start + timedelta(days=4))
    assert [t.local_date for t in tasks] == [start + timedelta(days=i) for i in range(5)]
    for t in tasks:
        assert t.due_at.astimezone(AMS).time() == time(20, 0)
        assert t.reminders == (t.due_at,)
        assert t.opens_at.astimezone(AMS) == datetime.combine(t.local_date, time(0), AMS)
        assert t.expires_at.astimezone(AMS) == datetime.combine(
            t.local_date + timedelta(days=1), time(0), AMS
        )
    before = [t.due_at.hour for t in tasks if t.local_date < switch]
    after = [t.due_at.hour for t in tasks if t.local_date >= switch]
    # In UTC the reminder moves by an hour at the switch (CET 19:00Z, CEST 18:00Z).
    assert len(set(before)) == 1 and len(set(after)) == 1 and abs(before[0] - after[0]) == 1
    # The day of the switch is 23 or 25 hours long: the diary's window is too.
    day = next(t for t in tasks if t.local_date == switch)
    assert (day.expires_at - day.opens_at) in (timedelta(hours=23), timedelta(hours=25))


def test_a_reminder_in_the_spring_forward_gap_moves_an_hour_later(pathways):
    (task,) = diaries(
        pathways["chronic-pain"], start=date(2026, 3, 29), end=date(2026, 3, 29), at=time(2, 30)
    )
    assert task.due_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert task.due_at.astimezone(AMS).time() == time(3, 30)
    assert task.reminders == (task.due_at,)


def test_a_reminder_in_the_autumn_overlap_fires_once(pathways):
    tasks = diaries(
        pathways["chronic-pain"], start=date(2026, 10, 24), end=date(2026, 10, 26), at=time(2, 30)
    )
    day = [t for t in tasks if t.local_date == date(2026, 10, 25)]
    assert len(day) == 1
    # 02:30 happens twice (CEST, then CET): the first one, once.
    assert day[0].reminders == (datetime(2026, 10, 25, 0, 30, tzinfo=UTC),)


def test_quiet_hours_move_an_early_reminder_to_their_end(pathways):
    (task,) = diaries(
        pathways["chronic-pain"],
        start=date(2026, 5, 4),
        end=date(2026, 5, 4),
        at=time(6, 30),
        quiet=QUIET,
    )
    assert task.due_at.astimezone(AMS).time() == time(6, 30)  # the task is still due then
    assert [r.astimezone(AMS).time() for r in task.reminders] == [time(8, 0)]


def test_quiet_hours_drop_a_late_evening_diary_reminder_past_its_day(pathways):
    (task,) = diaries(
        pathways["chronic-pain"],
        start=date(2026, 5, 4),
        end=date(2026, 5, 4),
        at=time(22, 30),
        quiet=QUIET,
    )
    # 08:00 next morning is past the diary's day: no push at all rather than one at night.
    assert task.reminders == ()


def test_quiet_hours_move_a_prom_reminder_to_the_next_morning(pathways):
    tasks = plan(
        pathways["chronic-pain"],
        anchor_date=date(2026, 5, 4),
        enrolled_on=date(2026, 5, 4),
        reminder_time=time(23, 0),
        tz=AMS,
        start=date(2026, 5, 4),
        end=date(2026, 5, 4),
        quiet=QUIET,
    )
    bpi = next(t for t in tasks if t.questionnaire == "bpi")
    local = [r.astimezone(AMS) for r in bpi.reminders]
    assert [(r.date(), r.time()) for r in local] == [
        (date(2026, 5, 5), time(8, 0)),
        (date(2026, 5, 7), time(8, 0)),
        (date(2026, 5, 9), time(8, 0)),
    ]


def test_chronic_pain_proms_on_their_days_with_labels_and_a_window(pathways):
    tasks = plan(
        pathways["chronic-pain"],
        anchor_date=date(2026, 1, 5),
        enrolled_on=date(2026, 1, 5),
        reminder_time=time(20, 0),
        tz=AMS,
        start=date(2026, 1, 5),
        end=date(2026, 1, 11),
        one_offs_until=date(2027, 12, 31),
    )
    bpi = [t for t in tasks if t.questionnaire == "bpi"]
    assert [(t.local_date - date(2026, 1, 5)).days for t in bpi] == [0, 42, 91, 182, 365]
    assert [t.label for t in bpi] == ["intake", "6w", "3m", "6m", "12m"]
    assert all(t.until_date - t.local_date == timedelta(days=13) for t in bpi)
    # The daily diary only on the rolling horizon.
    assert len([t for t in tasks if t.questionnaire == "diary"]) == 7
    assert not any(t.questionnaire == "pgic" and t.label == "intake" for t in tasks)


def test_weekly_peg_from_day_7(pathways):
    tasks = plan(
        pathways["chronic-pain"],
        anchor_date=date(2026, 1, 5),
        enrolled_on=date(2026, 1, 5),
        reminder_time=time(20, 0),
        tz=AMS,
        start=date(2026, 1, 5),
        end=date(2026, 2, 5),
    )
    peg = [(t.local_date - date(2026, 1, 5)).days for t in tasks if t.questionnaire == "peg"]
    assert peg == [7, 14, 21, 28]


def test_treatment_followup_baseline_week_and_diary_until_day_28(pathways):
    treatment = date(2026, 6, 15)
    tasks = plan(
        pathways["treatment-followup"],
        anchor_date=treatment,
        enrolled_on=treatment - timedelta(days=3),  # joined half-way the baseline week
        reminder_time=time(19, 0),
        tz=AMS,
        start=treatment - timedelta(days=3),
        end=treatment + timedelta(days=60),
    )
    diary = [(t.local_date - treatment).days for t in tasks if t.questionnaire == "diary"]
    assert diary == list(range(-3, 29))  # not before enrolment, not after day 28
    baseline = [t for t in tasks if t.label == "baseline"]
    assert {t.questionnaire for t in baseline} == {"peg", "bpi"}
    for t in baseline:
        assert t.local_date == treatment - timedelta(days=7) and t.until_date == treatment
    pgic = [(t.local_date - treatment).days for t in tasks if t.questionnaire == "pgic"]
    assert pgic == [14, 42]


def test_tps_diary_for_14_days_after_surgery(pathways):
    surgery = date(2026, 9, 1)
    tasks = plan(
        pathways["tps"],
        anchor_date=surgery,
        enrolled_on=surgery - timedelta(days=20),
        reminder_time=time(20, 0),
        tz=AMS,
        start=surgery - timedelta(days=20),
        end=surgery + timedelta(days=100),
    )
    diary = [(t.local_date - surgery).days for t in tasks if t.questionnaire == "diary"]
    assert diary == list(range(0, 15))
    assert {(t.questionnaire, t.label) for t in tasks if t.questionnaire == "dn4"} == {
        ("dn4", "6w"),
        ("dn4", "3m"),
    }


def test_a_range_in_the_middle_gives_only_tasks_whose_window_touches_it(pathways):
    tasks = plan(
        pathways["chronic-pain"],
        anchor_date=date(2026, 1, 5),
        enrolled_on=date(2026, 1, 5),
        reminder_time=time(20, 0),
        tz=AMS,
        start=date(2026, 2, 20),  # day 46: the 6w window (days 42-55) is still open
        end=date(2026, 2, 20),
    )
    assert {(t.questionnaire, t.label) for t in tasks} >= {("bpi", "6w"), ("diary", None)}
    assert all(t.until_date >= date(2026, 2, 20) for t in tasks)


def test_the_next_quiet_hours_start_ends_a_reminders_lifetime() -> None:
    ams = ZoneInfo("Europe/Amsterdam")
    at = datetime(2026, 3, 21, 20, 0, tzinfo=ams)
    assert QUIET.next_start(at, ams) == datetime(2026, 3, 21, 22, 0, tzinfo=ams)
    # Past 22:00 the next start is tomorrow's, across the change to summer time (29 March).
    late = datetime(2026, 3, 28, 23, 0, tzinfo=ams)
    assert QUIET.next_start(late, ams) == datetime(2026, 3, 29, 20, 0, tzinfo=UTC)
    assert QuietHours(time(22, 0), time(22, 0)).next_start(at, ams) is None  # no quiet hours
