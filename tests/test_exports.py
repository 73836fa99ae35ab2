"""Exports: long CSV (replay input), wide consult CSV (also for Dutch Excel), cohort, FHIR, CLI."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend import cli
from backend.diary import responses
from backend.diary.questionnaires import load_library
from backend.exports.cohort import (
    TimePoint,
    cohort_outcomes,
    cohort_summary,
    cohort_time_points,
    iter_cohort,
    outcome_at,
)
from backend.exports.fhir_export import iter_fhir
from backend.exports.files import write_export
from backend.exports.long import LONG_HEADER, iter_long
from backend.exports.run import Actor, export_to_file
from backend.exports.scope import ExportError
from backend.exports.spreadsheet import unguard
from backend.exports.wide import iter_wide
from backend.patients.pathways import load_pathways
from backend.platform import migrations
from backend.platform.settings import PROJECT_ROOT
from backend.platform.storage import connect, open_database
from tests.conftest import make_patient

AMS = ZoneInfo("Europe/Amsterdam")
QDIR = PROJECT_ROOT / "questionnaires"
LIBRARY = load_library(QDIR)
PATHWAYS = load_pathways(QDIR, LIBRARY)
ADMIN = Actor(user_id=None, user_email="tester", role="admin", source="cli")


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "pijnwacht.db"
    conn = connect(path)
    migrations.apply(conn)
    yield path, conn
    conn.close()


def new_patient(conn, name="Mevr. Jansen", pathway="chronic-pain", anchor=date(2026, 1, 5)):
    return make_patient(conn, name=name, pathway=pathway, anchor=anchor)


def add(conn, patient, day: str, answers: dict, qid="diary", at="20:15", rid=None) -> str:
    """Store a response through the real ingestion path (check + store), written on `day`."""
    authored = datetime.fromisoformat(f"{day}T{at}:00").replace(tzinfo=AMS)
    r = responses.ResponseIn(
        questionnaire=qid, version=1, authored_at=authored.isoformat(), local_date=day, answers=answers
    )
    rid = rid or str(uuid.uuid4())
    checked = responses.check(rid, r, patient, LIBRARY, authored + timedelta(hours=1))
    conn.execute("BEGIN IMMEDIATE")
    assert responses.store(conn, patient, [checked], now=authored + timedelta(hours=1)) == ["created"]
    conn.execute("COMMIT")
    return rid


def diary(pain=5, **more) -> dict:
    return {"pain_avg": pain, "pain_worst": min(10, pain + 2), **more}


def phq9(total_items=1, item9=0) -> dict:
    answers = {f"phq9_{n}": total_items for n in range(1, 9)}
    answers["phq9_9"] = item9
    return answers


def read_csv(text: str, **kw) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), **kw))


# -- long CSV -----------------------------------------------------------------------------
def test_long_csv_has_the_contract_header_and_one_row_per_answered_item(db):
    _path, conn = db
    p = new_patient(conn)
    add(conn, p, "2026-01-05", diary(6, sleep_hours=6.5, note='Slecht, "echt" slecht\nvandaag'))
    add(conn, p, "2026-01-06", diary(4, sleep_hours=7.0))
    text = "".join(iter_long(conn))
    rows = read_csv(text)
    assert tuple(rows[0]) == LONG_HEADER
    body = rows[1:]
    assert len(body) == 4 + 3  # pain_avg, pain_worst, sleep_hours, note; then 3 the next day
    by_item = {(r[5], r[6]): r[7] for r in body}
    assert by_item[("2026-01-05", "sleep_hours")] == "6.5"
    assert by_item[("2026-01-06", "sleep_hours")] == "7"  # no trailing .0
    assert by_item[("2026-01-05", "note")] == 'Slecht, "echt" slecht\nvandaag'
    assert {r[0] for r in body} == {p.id}
    assert body[0][4] == "2026-01-05T19:15:00Z"  # stored UTC, so the order is exact
    assert text.endswith("\r\n") and "\r\n" in text.split(LONG_HEADER[-1], 1)[1][:2]


def test_long_csv_keeps_superseded_edits_for_replay(db):
    _path, conn = db
    p = new_patient(conn)
    first = add(conn, p, "2026-01-05", diary(8), at="09:00")
    edit = add(conn, p, "2026-01-05", diary(3), at="21:00")
    body = read_csv("".join(iter_long(conn)))[1:]
    pain = [(r[1], r[4], r[7]) for r in body if r[6] == "pain_avg"]
    assert pain == [(first, "2026-01-05T08:00:00Z", "8"), (edit, "2026-01-05T20:00:00Z", "3")]


def test_long_csv_lines_match_what_the_csv_module_writes(db):
    _path, conn = db
    p = new_patient(conn)
    tricky = ["a,b", 'say "hi"', "line\r\nbreak", " spaced ", "=1+1", "ünïcødé ✓", ""]
    for n, note in enumerate(tricky):
        add(conn, p, f"2026-01-{n + 5:02d}", diary(n, sleep_hours=n + 0.5, note=note))
    ours = "".join(iter_long(conn))
    parsed = read_csv(ours)
    expected = io.StringIO(newline="")
    csv.writer(expected, lineterminator="\r\n").writerows(parsed)
    assert ours == expected.getvalue()
    notes = [r[7] for r in parsed[1:] if r[6] == "note"]
    # The raw history, guarded only against spreadsheet formulas (replay takes the guard off).
    assert notes == [("'" + t if t == "=1+1" else t) for t in tricky]
    assert [unguard(n) for n in notes] == tricky


def test_long_csv_filters_by_patient_and_dates(db):
    _path, conn = db
    a, b = new_patient(conn), new_patient(conn, "Dhr. de Vries")
    for day in ("2026-01-05", "2026-01-06", "2026-01-07"):
        add(conn, a, day, diary(5))
        add(conn, b, day, diary(2))
    body = read_csv("".join(iter_long(conn, patient_id=b.id, date_from="2026-01-06", date_to="2026-01-06")))[
        1:
    ]
    assert {(r[0], r[5]) for r in body} == {(b.id, "2026-01-06")}


def test_long_csv_streams_in_chunks(db):
    _path, conn = db
    p = new_patient(conn)
    for n in range(5):
        add(conn, p, f"2026-01-{n + 5:02d}", diary(n))
    chunks = list(iter_long(conn, chunk_responses=2))
    assert len(chunks) == 1 + 3  # header, then 2 + 2 + 1 responses
    assert "".join(chunks) == "".join(iter_long(conn))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "omgekeerd"),
        ({"patient_id": "nobody"}, "unknown patient 'nobody'"),
        ({"date_from": "1-2-2026"}, "geen datum als JJJJ-MM-DD"),
        ({"date_from": "2027-01-01"}, "no responses to export"),
    ],
)
def test_bad_requests_raise_a_clear_error_before_any_output(db, kwargs, message):
    _path, conn = db
    p = new_patient(conn)
    add(conn, p, "2026-01-05", diary(9, note="persoonlijk"))
    for make in (
        lambda: iter_long(conn, **kwargs),
        lambda: iter_wide(conn, LIBRARY, **kwargs),
        lambda: iter_fhir(conn, LIBRARY, **kwargs),
    ):
        with pytest.raises(ExportError, match=message) as err:
            make()
        assert "persoonlijk" not in str(err.value) and "9" not in str(err.value).split("'")[0]


def test_a_patient_without_data_is_an_error(db):
    _path, conn = db
    p = new_patient(conn)
    with pytest.raises(ExportError, match=f"no responses to export for patient {p.id}"):
        iter_long(conn, patient_id=p.id)


def test_write_export_is_whole_or_absent(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous export\n")

    def failing():
        yield "patient_id,value\r\n"
        raise RuntimeError("disk trouble")

    with pytest.raises(RuntimeError):
        write_export(target, failing())
    assert target.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp file left
    write_export(target, iter(["a,b\r\n", "1,2\r\n"]))
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    assert target.stat().st_mode & 0o077 == 0  # health data: owner only


# -- wide consult CSV ---------------------------------------------------------------------
def test_wide_csv_one_row_per_day_with_current_answers_gaps_and_scores(db):
    _path, conn = db
    p = new_patient(conn)
    add(conn, p, "2026-01-05", diary(8, sleep_hours=5.5), at="09:00")
    add(conn, p, "2026-01-05", diary(6, sleep_hours=6.5), at="21:00")  # the edit wins
    add(conn, p, "2026-01-08", diary(4))
    add(conn, p, "2026-01-08", phq9(2), qid="phq9")
    rows = read_csv("".join(iter_wide(conn, LIBRARY)))
    header = rows[0]
    diary_ids = [i.id for i in LIBRARY.get("diary").items]
    assert header[: 2 + len(diary_ids)] == ["patient_id", "local_date", *diary_ids]
    assert header[2 + len(diary_ids) :] == ["phq9_total"]
    days = [r[1] for r in rows[1:]]
    assert days == ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]
    first = dict(zip(header, rows[1], strict=True))
    assert (first["pain_avg"], first["sleep_hours"], first["phq9_total"]) == ("6", "6.5", "")
    assert set(rows[2][2:]) == {""}  # a day without entries shows as an empty row
    last = dict(zip(header, rows[4], strict=True))
    assert (last["pain_avg"], last["phq9_total"]) == ("4", "16")


def test_wide_csv_for_dutch_excel_has_bom_semicolons_and_decimal_commas(db):
    _path, conn = db
    p = new_patient(conn)
    add(conn, p, "2026-01-05", diary(6, sleep_hours=6.5, note="moe; heel moe, echt", se_nausea=2))
    text = "".join(iter_wide(conn, LIBRARY, dialect="nl"))
    assert text.startswith("\ufeff")
    rows = read_csv(text.removeprefix("\ufeff"), delimiter=";")
    row = dict(zip(rows[0], rows[1], strict=True))
    # Dutch column names and answer words, not ids and codes.
    # The name beside the pseudonymous id (as in the alerts CSV for Excel); ISO dates, which
    # Dutch Excel reads as dates too (contract.md: dates as YYYY-MM-DD).
    assert rows[0][:5] == ["patiënt", "naam / pseudoniem", "datum", "pijn gemiddeld", "pijn ergst"]
    assert row["patiënt"] == p.id and row["naam / pseudoniem"] == "Mevr. Jansen"
    assert row["slaap (uren)"] == "6,5"
    assert row["misselijkheid"] == "matig"
    assert row["opmerking"] == "moe; heel moe, echt"
    assert row["datum"] == "2026-01-05"
    with pytest.raises(ExportError, match="unknown dialect"):
        iter_wide(conn, LIBRARY, dialect="fr")


def test_wide_csv_neutralises_formulas_in_free_text(db):
    _path, conn = db
    p = new_patient(conn)
    add(conn, p, "2026-01-05", diary(6, note='=HYPERLINK("http://x")'))
    rows = read_csv("".join(iter_wide(conn, LIBRARY)))
    assert dict(zip(rows[0], rows[1], strict=True))["note"] == '\'=HYPERLINK("http://x")'


# -- cohort -------------------------------------------------------------------------------
def test_outcome_at_takes_the_nearest_response_inside_the_window():
    anchor = date(2026, 1, 1)
    point = TimePoint("6w", 42, 14, 14)  # target 2026-02-12
    proms = [
        ("2026-02-20", "phq9", {"phq9_total": 9.0}),
        ("2026-02-10", "phq9", {"phq9_total": 12.0}),
        ("2026-03-10", "phq9", {"phq9_total": 3.0}),
    ]  # outside the window
    pains = {f"2026-02-{d:02d}": float(d % 3 + 4) for d in range(9, 16)}
    o = outcome_at("p1", anchor, point, proms, pains, today=date(2026, 6, 1))
    assert o.status == "completed" and o.target_date == "2026-02-12"
    assert o.proms == {"phq9": ("2026-02-10", {"phq9_total": 12.0})}
    assert o.pain_avg_7d == round(sum(pains.values()) / 7, 1)
    few = outcome_at("p1", anchor, point, [], {"2026-02-12": 5.0}, today=date(2026, 6, 1))
    assert (few.status, few.pain_avg_7d) == ("missed", None)
    assert outcome_at("p1", anchor, point, [], {}, today=date(2026, 2, 20)).status == "open"
    assert outcome_at("p1", anchor, point, [], {}, today=date(2026, 1, 20)).status == "not_due"


def test_cohort_time_points_come_from_the_pathway_file():
    points = cohort_time_points("chronic-pain", PATHWAYS)
    assert [(p.label, p.at_days) for p in points] == [
        ("intake", 0),
        ("6w", 42),
        ("3m", 91),
        ("6m", 182),
        ("12m", 365),
    ]
    assert [(p.before, p.after) for p in points][1:3] == [(14, 14), (30, 30)]
    with pytest.raises(ExportError, match="unknown pathway"):
        cohort_time_points("nope", PATHWAYS)


def test_cohort_export_and_summary(db):
    _path, conn = db
    anchor = date(2026, 1, 5)
    a = new_patient(conn, "A", anchor=anchor)
    b = new_patient(conn, "B", anchor=anchor)
    new_patient(conn, "C", pathway="opioid", anchor=anchor)  # another pathway: not in the cohort
    for pt, pain in ((a, 6), (b, 8)):
        for d in range(-2, 5):
            add(conn, pt, (anchor + timedelta(days=d)).isoformat(), diary(pain))
        add(conn, pt, anchor.isoformat(), phq9(1), qid="phq9")
    add(conn, a, (anchor + timedelta(days=45)).isoformat(), phq9(2), qid="phq9")  # 6w, 3 late
    points = [TimePoint("intake", 0, 14, 14), TimePoint("6w", 42, 14, 14)]
    today = anchor + timedelta(days=70)
    rows = read_csv("".join(iter_cohort(conn, LIBRARY, "chronic-pain", time_points=points, today=today)))
    header = rows[0]
    assert header == [
        "patient_id",
        "anchor_date",
        "time_point",
        "at_days",
        "target_date",
        "status",
        "pain_avg_7d",
        "phq9_date",
        "phq9_total",
    ]
    got = {(r[0], r[2]): dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert len(got) == 4
    assert got[(a.id, "6w")]["phq9_total"] == "16" and got[(a.id, "6w")]["phq9_date"] == "2026-02-19"
    assert got[(b.id, "6w")]["status"] == "missed"
    assert got[(b.id, "intake")]["pain_avg_7d"] == "8"
    summary = {s.label: s for s in cohort_summary(conn, "chronic-pain", time_points=points, today=today)}
    assert (summary["intake"].completed, summary["intake"].due) == (2, 2)
    assert summary["6w"].completion_rate == 0.5
    assert summary["intake"].median_pain == 7.0 and summary["6w"].median_pain is None
    # Ten days after the 6-week point, its window (14 days after) is still open for B: neither
    # due nor missed yet, and said so (the cohort page's "Nog open"), not silently left out.
    early = anchor + timedelta(days=52)
    summary = {s.label: s for s in cohort_summary(conn, "chronic-pain", time_points=points, today=early)}
    assert (summary["6w"].due, summary["6w"].completed, summary["6w"].window_open) == (1, 1, 1)
    assert summary["intake"].window_open == 0
    with pytest.raises(ExportError, match="no patients in pathway 'palliative'"):
        cohort_outcomes(conn, "palliative")
    # The Dutch Excel variant: the same rows in the clinic's words, a decimal comma.
    add(conn, a, (anchor + timedelta(days=1)).isoformat(), diary(7), rid=None)  # a: 6,1 at intake
    text = "".join(iter_cohort(conn, LIBRARY, "chronic-pain", time_points=points, today=today, dialect="nl"))
    nl = read_csv(text.removeprefix("\ufeff"), delimiter=";")
    assert text.startswith("\ufeff") and nl[0][-2] == "PHQ-9 datum" and nl[0][-1].endswith("totaalscore")
    dutch = {(r[0], r[3]): dict(zip(nl[0], r, strict=True)) for r in nl[1:]}
    b_6w = dutch[(b.id, "6 weken")]
    assert b_6w["status"] == "gemist" and b_6w["naam / pseudoniem"] == "B"
    assert dutch[(a.id, "intake")]["pijn gemiddeld (7 dagen)"] == "6,2"


# -- FHIR ---------------------------------------------------------------------------------
def test_fhir_bundle_is_valid_r4_with_loinc_observations(db):
    # fhir.resources 8 ships R4B (and R5, STU3), not plain R4; QuestionnaireResponse,
    # Observation and Bundle are the same in R4 and R4B.
    from fhir.resources.R4B.bundle import Bundle

    _path, conn = db
    p = new_patient(conn, "Mevr. Geheimnaam")
    add(conn, p, "2026-01-05", diary(7, sleep_hours=6.5, se_nausea=2, note="misselijk"))
    add(conn, p, "2026-01-05", phq9(2, item9=0), qid="phq9")
    text = "".join(iter_fhir(conn, LIBRARY, patient_id=p.id))
    assert "Geheimnaam" not in text
    bundle = Bundle.model_validate_json(text)
    assert bundle.type == "collection"
    by_type: dict[str, list] = {}
    for e in bundle.entry:
        by_type.setdefault(e.resource.get_resource_type(), []).append(e.resource)
    qrs = {qr.questionnaire.split("|")[0].rsplit("/", 1)[1]: qr for qr in by_type["QuestionnaireResponse"]}
    d = qrs["diary"]
    assert d.questionnaire == "https://pijnwacht.nl/fhir/Questionnaire/diary|1"
    patient = by_type["Patient"][0]
    patient_url = next(e.fullUrl for e in bundle.entry if e.resource is patient)
    assert patient.identifier[0].value == p.id and not patient.name
    assert d.status == "completed" and d.subject.reference == patient_url
    answers = {i.linkId: i.answer[0] for i in d.item}
    assert answers["pain_avg"].valueInteger == 7
    assert float(answers["sleep_hours"].valueDecimal) == 6.5
    assert answers["se_nausea"].valueCoding.code == "2"
    assert answers["note"].valueString == "misselijk"
    obs = {o.code.coding[0].code: o for o in by_type["Observation"]}
    assert obs["72514-3"].valueInteger == 7
    assert obs["44261-6"].valueInteger == 16
    diary_url = next(e.fullUrl for e in bundle.entry if e.resource is d)
    assert obs["72514-3"].derivedFrom[0].reference == diary_url
    assert all(o.subject.reference == patient_url for o in obs.values())


# -- files, audit, CLI --------------------------------------------------------------------
def test_export_to_file_audits_each_patient(db, tmp_path):
    _path, conn = db
    a, b = new_patient(conn, "A"), new_patient(conn, "B")
    add(conn, a, "2026-01-05", diary(5))
    add(conn, b, "2026-01-06", diary(5))
    database = open_database(_path)
    try:
        done = export_to_file(database, tmp_path / "long.csv", fmt="long", actor=ADMIN)
    finally:
        database.close()
    assert done.patients == 2
    log = conn.execute(
        "SELECT patient_id, action, role, source, user_email, object FROM audit_log ORDER BY patient_id"
    ).fetchall()
    assert [tuple(r)[:5] for r in log] == [
        (pid, "export", "admin", "cli", "tester") for pid in sorted([a.id, b.id])
    ]
    assert log[0]["object"].startswith("export long")


def test_cli_export_writes_files_and_exits_2_on_bad_input(db, tmp_path, capsys):
    path, conn = db
    p = new_patient(conn)
    add(conn, p, "2026-01-05", diary(5, sleep_hours=6.5))
    out = tmp_path / "wide.csv"
    code = cli.main(
        [
            "--db",
            str(path),
            "export",
            "--format",
            "wide",
            "--dialect",
            "nl",
            "--patient",
            p.id,
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf") and b"6,5" in out.read_bytes()
    fhir = tmp_path / "bundle.json"
    assert cli.main(["--db", str(path), "export", "--format", "fhir", "-o", str(fhir)]) == 0
    assert json.loads(fhir.read_text())["resourceType"] == "Bundle"
    cohort = tmp_path / "cohort.csv"
    assert (
        cli.main(
            [
                "--db",
                str(path),
                "export",
                "--format",
                "cohort",
                "--pathway",
                "chronic-pain",
                "-o",
                str(cohort),
            ]
        )
        == 0
    )
    summary = read_csv((tmp_path / "cohort-summary.csv").read_text())
    assert summary[0][:3] == ["label", "at_days", "patients"]
    assert [r[0] for r in summary[1:]] == ["intake", "6w", "3m", "6m", "12m"]
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    code = cli.main(
        [
            "--db",
            str(path),
            "export",
            "--format",
            "long",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
            "-o",
            str(bad),
        ]
    )
    assert code == 2
    assert "omgekeerd" in capsys.readouterr().err
    assert not bad.exists()
    assert (
        cli.main(["--db", str(path), "export", "--format", "long", "--patient", "nobody", "-o", str(bad)])
        == 2
    )
    assert not bad.exists()
    n = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'export'").fetchone()[0]
    assert n == 3  # wide, fhir, cohort (one patient each); the refused ones log nothing


def test_replay_input_round_trip_matches_current_view(db):
    """Resolving edits in the long CSV (latest authored_at per patient, questionnaire and
    local_date) gives exactly the live system's current responses."""
    _path, conn = db
    p = new_patient(conn)
    add(conn, p, "2026-01-05", diary(8), at="09:00")
    add(conn, p, "2026-01-05", diary(3), at="21:00")
    add(conn, p, "2026-01-06", diary(5), at="20:00")
    add(conn, p, "2026-01-06", phq9(1), qid="phq9")
    latest: dict[tuple, tuple[str, str]] = {}
    for r in read_csv("".join(iter_long(conn)))[1:]:
        key = (r[0], r[2], r[5])
        if key not in latest or r[4] >= latest[key][0]:
            latest[key] = (r[4], r[1])
    from_csv = sorted(rid for _at, rid in latest.values())
    live = sorted(r[0] for r in conn.execute("SELECT id FROM current_responses"))
    assert from_csv == live
