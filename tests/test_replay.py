"""`pijnwacht replay`: the rules over a long responses CSV, as the live system would have run."""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from backend.alerts import lifecycle as alerts
from backend.platform.storage import open_database
from backend.tools.replay import LONG_HEADER, ReplayError, replay, run_replay
from tests.conftest import make_patient, store_response

ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 1, 5)


def diary_rows(pid: str, day: date, answers: dict, authored: str | None = None) -> list[dict]:
    rid = str(uuid.uuid4())
    at = authored or f"{day.isoformat()}T19:00:00Z"
    return [
        {
            "patient_id": pid,
            "response_id": rid,
            "questionnaire_id": "diary",
            "questionnaire_version": "1",
            "authored_at": at,
            "local_date": day.isoformat(),
            "item_id": k,
            "value": str(v),
        }
        for k, v in answers.items()
    ]


def history(pid: str, days: int, pain=lambda i: 4, skip=()) -> list[dict]:
    rows: list[dict] = []
    for i in range(days):
        if i not in skip:
            rows += diary_rows(pid, START + timedelta(days=i), {"pain_avg": pain(i), "se_drowsiness": 0})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=LONG_HEADER)
        w.writeheader()
        w.writerows(rows)
    return path


def test_replay_finds_a_rise_and_a_silence_once_each_on_the_right_day():
    pain = [4, 5, 3, 4, 4, 5, 3]
    rows = history("a", 70, pain=lambda i: pain[i % 7] if i < 60 else 7, skip=range(64, 70))
    found = list(replay(rows, None, START + timedelta(days=70), None, None))
    by_rule = {a.rule_id: a for a in found}
    assert sorted(by_rule) == ["pain_rise", "silence"]
    assert len(found) == 2  # one alert per rule, however many days it held
    assert START + timedelta(days=60) <= by_rule["pain_rise"].opened_on <= START + timedelta(days=63)
    # Last diary on day 63: five days later the silence alert opens.
    assert by_rule["silence"].opened_on == START + timedelta(days=68)


def test_an_alert_that_gets_materially_worse_is_a_new_row_on_the_day_it_resurfaced():
    base = [3, 4, 3, 3, 4]
    rows = history("a", 72, pain=lambda i: base[i % 5] if i < 60 else (6 if i < 64 else 10))
    pain = [a for a in replay(rows, None, None, None, None) if a.rule_id == "pain_rise"]
    first, *again = pain
    assert again and "gestegen" not in first.reason
    for row in again:  # each a new row, dated the day it resurfaced, saying what changed
        assert START + timedelta(days=64) <= row.opened_on <= START + timedelta(days=67)
        assert "sinds" in row.reason and "gestegen van" in row.reason
    assert len({row.opened_on for row in pain}) == len(pain)


def test_a_noisy_patient_seen_at_7_whose_pain_stays_at_10_is_news_again():
    # The noise test cannot ask more than the scale leaves: 7 -> 10 is a clinically important
    # change (30 % of 10) even for a patient whose days swing by 3 points.
    noisy = [1, 7, 2, 6, 4, 1, 7, 3, 6, 2]
    rows = history("a", 90, pain=lambda i: noisy[i % 10] if i < 60 else (7 if i < 68 else 10))
    pain = [a for a in replay(rows, None, None, None, None) if a.rule_id == "pain_rise"]
    assert len(pain) == 2 and pain[1].reason.endswith("naar 10"), [a.reason for a in pain]


def opioid_rows(pain, doses, days: int = 90) -> list[dict]:
    rows: list[dict] = []
    for i in range(days):
        answers = {"pain_avg": pain(i), "rescue_doses": doses(i), "se_drowsiness": 0}
        rows += diary_rows("a", START + timedelta(days=i), answers)
    return rows


def opioid_pain_rows(rows: list[dict]) -> list:
    from backend.diary.questionnaires import load_library
    from backend.patients.pathways import load_pathways

    library = load_library(ROOT / "questionnaires")
    pathways = load_pathways(ROOT / "questionnaires", library)
    return [a for a in replay(rows, "opioid", None, library, pathways) if a.category == "pain"]


def test_more_rescue_medication_then_more_pain_is_one_alert_row_on_the_opioid_pathway():
    usual = [4, 3, 4, 5, 4]
    # Rescue use goes from about 1 to 3 a day on day 60; pain follows on day 63 and lasts.
    rows = opioid_rows(
        lambda i: usual[i % 5] if i < 63 else 7, lambda i: (1, 1, 0, 2, 1)[i % 5] if i < 60 else 3
    )
    (row,) = opioid_pain_rows(rows)
    assert row.rule_id == "pain_rise" and row.reason.startswith("noodmedicatie gemiddeld")
    assert START + timedelta(days=62) <= row.opened_on <= START + timedelta(days=66)
    # Pain first (a week at 7, then 5), rescue use up all along: still one (the rescue use
    # keeps the pain alert open, no second alert for it).
    rows = opioid_rows(
        lambda i: usual[i % 5] if i < 60 else (7 if i < 68 else 5),
        lambda i: (1, 1, 0, 2, 1)[i % 5] if i < 60 else 3,
    )
    (row,) = opioid_pain_rows(rows)
    assert row.reason.startswith("gemiddelde pijn")


def test_a_real_rise_after_a_noise_alert_held_open_by_weak_evidence_is_a_new_row():
    # Four noisy days open an alert; weeks of pain just above the baseline (too weak to open
    # one) must not keep it open until the real rise, which would then show nothing new.
    base = [3, 4, 3, 3, 4]

    def pain(i: int) -> int:
        if i < 60:
            return base[i % 5]
        if i < 64:
            return 7
        return [4, 5, 4, 5][i % 4] if i < 84 else 7

    rows = history("a", 100, pain=pain)
    opened = [a.opened_on for a in replay(rows, None, None, None, None) if a.rule_id == "pain_rise"]
    assert len(opened) == 2
    assert START + timedelta(days=60) <= opened[0] <= START + timedelta(days=63)
    assert START + timedelta(days=84) <= opened[1] <= START + timedelta(days=90)


def test_an_edit_replaces_the_earlier_answer_of_that_day():
    rows = history("a", 3)
    rows += diary_rows(
        "a", START + timedelta(days=3), {"pain_avg": 4, "se_drowsiness": 3}, authored="2026-01-08T19:00:00Z"
    )
    rows += diary_rows(
        "a",
        START + timedelta(days=3),
        {"pain_avg": 4, "se_drowsiness": 0},
        authored="2026-01-08T19:05:00+00:00",
    )
    assert [a.rule_id for a in replay(rows, None, None, None, None)] == []
    # The other way round: the correction is what counts.
    rows = history("a", 3)
    rows += diary_rows(
        "a", START + timedelta(days=3), {"pain_avg": 4, "se_drowsiness": 0}, authored="2026-01-08T19:00:00Z"
    )
    rows += diary_rows(
        "a",
        START + timedelta(days=3),
        {"pain_avg": 4, "se_drowsiness": 3},
        authored="2026-01-08T21:05:00+02:00",
    )
    assert [a.rule_id for a in replay(rows, None, None, None, None)] == ["drowsiness_severe"]


def test_until_stops_the_replay_and_pathway_thresholds_apply():
    rows = history("a", 10, skip=range(5, 10))
    assert [a.rule_id for a in replay(rows, None, START + timedelta(days=8), None, None)] == []
    pathways = {"opioid": {"detection": {"silence_alert_days": 3}}}
    got = list(replay(rows, "opioid", START + timedelta(days=8), None, pathways))
    assert [(a.rule_id, a.opened_on) for a in got] == [("silence", START + timedelta(days=7))]
    with pytest.raises(ReplayError, match="unknown pathway"):
        list(replay(rows, "nope", None, None, pathways))


@pytest.mark.parametrize(
    ("broken", "where"),
    [
        ({"local_date": "5-1-2026"}, "line 3, column local_date"),
        ({"authored_at": "gisteren"}, "line 3, column authored_at"),
        ({"questionnaire_version": "een"}, "line 3, column questionnaire_version"),
        ({"patient_id": ""}, "line 3, column patient_id"),
    ],
)
def test_bad_csv_names_line_and_column(tmp_path, broken, where):
    rows = history("a", 3)
    rows[1] = {**rows[1], **broken}
    src = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "alerts.csv"
    out.write_text("keep me")
    with pytest.raises(ReplayError, match=where):
        run_replay(src, out, None, None, None, None)
    assert out.read_text() == "keep me"  # nothing half-written


def test_missing_header_column_is_named(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("patient_id,response_id,questionnaire_id\r\na,b,diary\r\n")
    with pytest.raises(ReplayError, match="line 1, column questionnaire_version"):
        run_replay(src, tmp_path / "out.csv", None, None, None, None)


def test_replay_of_an_export_matches_the_live_system(tmp_path):
    """Responses stored and evaluated day by day live give the same alerts as replaying
    their long CSV export through the command line."""
    db_path = tmp_path / "pijnwacht.db"
    db = open_database(db_path)
    pain = [4, 5, 3, 4, 4, 5, 3]

    def live(conn):
        make_patient(conn, "p1", name="T", anchor=START, enrolled_at=f"{START.isoformat()}T08:00:00Z")
        for i in range(75):
            day = START + timedelta(days=i)
            if not 66 <= i < 73:
                answers = {
                    "pain_avg": pain[i % 7] if i < 58 else 8,
                    "pain_worst": 9,
                    "se_drowsiness": 3 if i == 20 else 0,
                    "se_constipation": 0,
                }
                store_response(conn, "p1", day, answers)
            alerts.evaluate_patient(conn, "p1", day, None, {}, now=datetime(2026, 1, 1, tzinfo=UTC))
        return [
            (r["rule_id"], r["opened_on"])
            for r in conn.execute("SELECT rule_id, opened_on FROM alerts ORDER BY id")
        ]

    expected = db.write_sync(live)
    db.close()
    env = {"PIJNWACHT_DB": str(db_path), "PATH": str(Path(sys.executable).parent)}
    long_csv, out = tmp_path / "long.csv", tmp_path / "alerts.csv"
    pijnwacht = str(Path(sys.executable).parent / "pijnwacht")
    subprocess.run(
        [pijnwacht, "export", "--format", "long", "-o", str(long_csv)],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    r = subprocess.run(
        [
            pijnwacht,
            "replay",
            str(long_csv),
            "--until",
            (START + timedelta(days=74)).isoformat(),
            "-o",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["patient_id", "rule_id", "category", "severity", "opened_on", "reason"]
    got = sorted((row["rule_id"], row["opened_on"]) for row in rows)
    assert {rule for rule, _ in expected} >= {"pain_rise", "drowsiness_severe", "silence"}
    assert got == sorted(expected)


def test_replay_command_reports_bad_input_without_a_traceback(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(",".join(LONG_HEADER) + "\r\na,r1,diary,1,2026-01-05T19:00:00Z,gisteren,pain_avg,4\r\n")
    pijnwacht = str(Path(sys.executable).parent / "pijnwacht")
    r = subprocess.run(
        [pijnwacht, "replay", str(src), "-o", str(tmp_path / "o.csv")],
        env={"PIJNWACHT_DB": str(tmp_path / "x.db")},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2
    assert "line 2, column local_date" in r.stderr and "Traceback" not in r.stderr
