"""The long responses CSV: the raw history, every response (superseded edits too), one row per
answered item.

`replay` resolves edits itself (latest authored_at per patient, questionnaire and local_date
wins), so replaying an export gives the alerts the live system gave. authored_at is the
stored UTC value, so the order is exact. RFC 4180: comma, CRLF line ends, quotes as needed.
Free text that a spreadsheet would run as a formula gets a leading quote
(backend/exports/spreadsheet.py); replay takes it off.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import msgspec

from backend.diary import store as responses
from backend.exports import spreadsheet
from backend.exports.files import number_text, read_transaction
from backend.exports.scope import ExportError, check_has_data, check_range

LONG_HEADER = (
    "patient_id",
    "response_id",
    "questionnaire_id",
    "questionnaire_version",
    "authored_at",
    "local_date",
    "item_id",
    "value",
)
# The hot loop of the largest export (tens of millions of rows). csv.writer costs about 4 us a
# row here; formatting RFC 4180 lines directly, with the response's six leading fields joined
# once per response and each distinct answer value formatted once (a small cache), is about
# four times faster (tests/bench/export_long.py). Tests check the output against the csv
# module's reading of it.
_CACHE_MAX = 10_000


def csv_field(text: str) -> str:
    """One CSV field, quoted as RFC 4180 asks (only when it holds a comma, quote or line end)."""
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def format_value(value: Any) -> str:
    """An answer as the long CSV writes it: 6 not 6.0, 6.5 as 6.5, text as text (quoted, and
    guarded against spreadsheet formulas: replay takes the guard off again)."""
    if isinstance(value, str):
        return csv_field(spreadsheet.guard(value))
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, int):
        return str(value)
    # Not a valid answer (the API refuses these), but the history must still export.
    return csv_field(msgspec.json.encode(value).decode())


class _Formatted(dict):
    """value -> formatted text, remembering short values (answers repeat: 0..10 mostly).

    6 and 6.0 are equal dict keys, and both are written as 6, so sharing an entry is right.
    """

    def __missing__(self, value: Any) -> str:
        text = format_value(value)
        if len(self) < _CACHE_MAX and len(text) <= 32:
            self[value] = text
        return text


def iter_long(
    conn: sqlite3.Connection,
    *,
    patient_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    chunk_responses: int = 1000,
) -> Iterator[str]:
    """The long responses CSV (contract header) as text chunks, every response included."""
    date_from, date_to = check_range(date_from, date_to)
    check_has_data(conn, patient_id, date_from, date_to)
    return _long_chunks(conn, patient_id, date_from, date_to, chunk_responses)


def _long_chunks(
    conn: sqlite3.Connection,
    patient_id: str | None,
    date_from: str | None,
    date_to: str | None,
    chunk_responses: int,
) -> Iterator[str]:
    close = read_transaction(conn)
    try:
        yield ",".join(LONG_HEADER) + "\r\n"
        decode = msgspec.json.decode
        values = _Formatted()
        keys = _Formatted()
        q = csv_field
        cur = responses.history(conn, patient_id, date_from, date_to)
        while True:
            block = cur.fetchmany(chunk_responses)
            if not block:
                break
            lines: list[str] = []
            for pid, rid, qid, version, authored, day, answers in block:
                head = f"{q(pid)},{q(rid)},{q(qid)},{version},{q(authored)},{q(day)},"
                try:
                    lines += [
                        f"{head}{keys[k]},{values[v]}\r\n"
                        for k, v in decode(answers).items()
                        if v is not None
                    ]
                except TypeError:  # an unhashable (list) answer: format without the cache
                    lines += [
                        f"{head}{q(k)},{format_value(v)}\r\n"
                        for k, v in decode(answers).items()
                        if v is not None
                    ]
            yield "".join(lines)
    finally:
        close()


def patient_export(conn: sqlite3.Connection, patient_id: str) -> Iterator[str]:
    """A patient's own responses as the long CSV (their complete history, edits included);
    just the header when they have none yet. For `GET /api/v1/me/export` (text/csv)."""
    try:
        return iter_long(conn, patient_id=patient_id)
    except ExportError:
        return iter([",".join(LONG_HEADER) + "\r\n"])
