"""The clinic's reads of a patient's answers: the current response of each questionnaire and day
(the last one written wins, as everywhere: the `current_responses` view)."""

from __future__ import annotations

import sqlite3


def current(conn: sqlite3.Connection, patient_id: str, since: str, until: str) -> list[tuple]:
    """(local_date, questionnaire_id, questionnaire_version, answers JSON, scores JSON) of the
    patient's current responses dated since..until (inclusive), by day."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur.execute(
        "SELECT local_date, questionnaire_id, questionnaire_version, answers, scores FROM current_responses"
        " WHERE patient_id = ? AND local_date >= ? AND local_date <= ? ORDER BY local_date, authored_at",
        (patient_id, since, until),
    ).fetchall()
