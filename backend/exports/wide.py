"""The wide consult CSV: current responses only, one row per patient per day from the patient's
first to last day with data (inside --from/--to), empty days kept so gaps show; diary items in
definition order, then `<questionnaire>_<score>` columns.

`dialect="nl"` is for Dutch Excel: UTF-8 with BOM, `;`, decimal comma, Dutch column names and
answer words, and the patient's name beside the pseudonymous id (as in the inbox's alerts
CSV); dates stay YYYY-MM-DD in both (contract.md; Excel reads them as dates, the alerts CSV
writes them so too). Free text that a spreadsheet would run as a formula gets a leading quote
(backend/exports/spreadsheet.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any, Literal

import msgspec

from backend.diary import store as responses
from backend.diary.questionnaires import Library
from backend.exports import spreadsheet
from backend.exports.files import Sink, number_text, read_transaction, spreadsheet_writer
from backend.exports.scope import ExportError, check_has_data, check_range
from backend.patients import store as patients_store
from backend.platform.words import WORDS, word

Dialect = Literal["standard", "nl"]


def cell(value: Any, decimal_comma: bool) -> str:
    """A value as a spreadsheet cell: empty for none, 6 not 6.0, a decimal comma if asked,
    text guarded against formulas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        text = number_text(value)
        return text.replace(".", ",") if decimal_comma else text
    if isinstance(value, int):
        return str(value)
    return spreadsheet.guard(str(value))


def score_column(qid: str, score_id: str) -> str:
    """A score's column name: `<questionnaire>_<score>`, without doubling a prefix the score
    id already has (phq9_total, not phq9_phq9_total)."""
    return score_id if score_id.startswith(f"{qid}_") else f"{qid}_{score_id}"


def ordered_scores(library: Library, present: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """questionnaire -> its score ids among `present` (questionnaire, score id) pairs: in the
    definition's order, unknown ones (an older version's) after, sorted."""
    found: dict[str, set[str]] = {}
    for qid, key in present:
        found.setdefault(qid, set()).add(key)
    out: dict[str, list[str]] = {}
    for qid in sorted(found):
        q = library.get(qid)
        order = [s.id for s in q.scores] if q else []
        out[qid] = [k for k in order if k in found[qid]] + sorted(found[qid] - set(order))
    return out


def diary_columns(library: Library) -> list[str]:
    """The diary's item ids in definition order (latest version first, older extras after)."""
    latest = library.get("diary")
    assert latest is not None
    columns = [item.id for item in latest.items]
    for (qid, _v), q in sorted(library.by_version.items()):
        if qid == "diary":
            columns += [i.id for i in q.items if i.id not in columns]
    return columns


def score_columns(
    conn: sqlite3.Connection,
    library: Library,
    patient_id: str | None,
    date_from: str | None,
    date_to: str | None,
) -> list[tuple[str, str]]:
    """The (questionnaire, score) pairs present in the range, the diary's first, then by
    questionnaire and definition."""
    present = responses.current_score_keys(conn, patient_id, date_from, date_to)
    by_questionnaire = ordered_scores(library, present)
    return [
        (qid, key)
        for qid in sorted(by_questionnaire, key=lambda q: (q != "diary", q))
        for key in by_questionnaire[qid]
    ]


def iter_wide(
    conn: sqlite3.Connection,
    library: Library,
    *,
    patient_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    dialect: Dialect = "standard",
) -> Iterator[str]:
    """The wide consult CSV as text chunks: one row per patient per day, current responses."""
    if dialect not in ("standard", "nl"):
        raise ExportError(f"unknown dialect {dialect!r} (standard or nl)")
    date_from, date_to = check_range(date_from, date_to)
    check_has_data(conn, patient_id, date_from, date_to)
    items = diary_columns(library)
    scores = score_columns(conn, library, patient_id, date_from, date_to)
    header = ["patient_id", "local_date", *items, *(score_column(q, s) for q, s in scores)]
    if dialect == "nl":
        header = dutch_header(library, items, scores)
    words = choice_words(library) if dialect == "nl" else {}
    names = DisplayNames(conn) if dialect == "nl" else None
    return _in_snapshot(conn, (patient_id, date_from, date_to), header, items, scores, dialect, words, names)


class DisplayNames(dict):
    """The patients' names (or pseudonyms) by id, for the Dutch variant's name column: read
    as each patient's rows begin (an export of all patients reads no name list up front)."""

    def __init__(self, conn: sqlite3.Connection):
        super().__init__()
        self.conn = conn

    def __missing__(self, pid: str) -> str:
        self[pid] = name = patients_store.names(self.conn, [pid]).get(pid) or ""
        return name


def dutch_header(library: Library, items: list[str], scores: list[tuple[str, str]]) -> list[str]:
    """The Dutch Excel variant's column names, in the clinic's words ("pijn gemiddeld",
    "PHQ-9 totaalscore"), not ids."""
    out = [word("column", "patient_id"), word("column", "display_name"), word("column", "local_date")]
    out += [word("column", item) if item in WORDS["column"] else item for item in items]
    return out + [dutch_score_name(library, qid, sid) for qid, sid in scores]


def dutch_score_name(library: Library, qid: str, sid: str) -> str:
    """A score's Dutch column name ("PHQ-9 totaalscore"); unknown: `<questionnaire>_<score>`."""
    q = library.get(qid)
    score = next((x for x in q.scores if x.id == sid), None) if q else None
    title = questionnaire_title(library, qid)
    return f"{title} {score.label.get('nl', sid)}" if score else score_column(qid, sid)


def questionnaire_title(library: Library, qid: str) -> str:
    """A questionnaire's short Dutch title ("PHQ-9"); unknown: its id."""
    q = library.get(qid)
    return (q.short_title or q.title).get("nl", qid) if q else qid


def choice_words(library: Library) -> dict[str, dict[int, str]]:
    """Diary choice items (side effects) by value -> their Dutch answer ("matig", not 2)."""
    q = library.get("diary")
    return {
        i.id: {o.value: o.text.get("nl", str(o.value)) for o in i.options}
        for i in (q.items if q else [])
        if i.type == "choice" and i.options
    }


def _in_snapshot(
    conn: sqlite3.Connection, scope: tuple[str | None, str | None, str | None], *layout: Any
) -> Iterator[str]:
    """The chunks of `_wide_chunks(rows, *layout)` over the current responses of `scope`
    (patient, from, to), read in one snapshot."""
    close = read_transaction(conn)
    try:
        yield from _wide_chunks(responses.current_days(conn, *scope), *layout)
    finally:
        close()


def _wide_chunks(
    rows_in: sqlite3.Cursor,
    header: list[str],
    items: list[str],
    scores: list[tuple[str, str]],
    dialect: Dialect,
    words: dict[str, dict[int, str]] | None = None,
    names: dict[str, str] | None = None,
) -> Iterator[str]:
    nl = dialect == "nl"
    words = words or {}
    sink = Sink()
    writer = spreadsheet_writer(sink, nl)
    writer.writerow(header)
    item_index = {item: 2 + n for n, item in enumerate(items)}
    score_index = {qs: 2 + len(items) + n for n, qs in enumerate(scores)}
    width = len(header) - (names is not None)
    decode = msgspec.json.decode
    rows: list[list[str]] = []

    def day_row(pid: str, day: str) -> list[Any]:
        return [pid, day] + [None] * (width - 2)

    def emit(row: list[Any]) -> None:
        values = [cell(v, nl) for v in row[2:]]
        if names is None:
            rows.append([row[0], row[1], *values])
        else:
            rows.append([row[0], spreadsheet.guard(names[row[0]]), row[1], *values])

    pid: str | None = None
    day: date | None = None
    row: list[Any] | None = None
    for r_pid, r_day, qid, answers, r_scores in rows_in:
        this_day = date.fromisoformat(r_day)
        if r_pid != pid:
            if row is not None:
                emit(row)
            pid, day, row = r_pid, this_day, day_row(r_pid, r_day)
        elif this_day != day:
            assert row is not None and day is not None
            emit(row)
            # Days without any response get an empty row, so gaps show in the consult.
            gap = day + timedelta(days=1)
            while gap < this_day:
                emit(day_row(r_pid, gap.isoformat()))
                gap += timedelta(days=1)
            day, row = this_day, day_row(r_pid, r_day)
        assert row is not None
        if qid == "diary":
            for key, value in decode(answers).items():
                at = item_index.get(key)
                if at is not None:
                    row[at] = words[key].get(value, value) if key in words else value
        for key, value in decode(r_scores).items():
            at = score_index.get((qid, key))
            if at is not None:
                row[at] = value
        if len(rows) >= 1000:
            writer.writerows(rows)
            rows.clear()
            yield sink.take()
    if row is not None:
        emit(row)
    writer.writerows(rows)
    yield sink.take()
