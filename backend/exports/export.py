"""Exports: the long responses CSV, the wide consult CSV, the cohort outcome export and FHIR.

Every export reads SQLite row by row (cursor iteration, never a list of all rows) and comes in
two shapes: a generator of text chunks (`iter_long`, `iter_wide`, `iter_fhir`, ...) that the
clinic's download endpoints stream, and `write_export`, which writes such chunks to a
temporary file beside the target and renames it when complete, so a file is whole or absent.

Validation happens before the first chunk: the `iter_*` functions check their arguments
eagerly and raise `ExportError` (message with ids and dates only, never health data), then
return the generator.

- Long CSV: the raw history, every response (superseded edits too), one row per answered item.
  `replay` resolves edits itself (latest authored_at per patient, questionnaire and local_date
  wins), so replaying an export gives the alerts the live system gave. authored_at is the
  stored UTC value, so the order is exact. RFC 4180: comma, CRLF line ends, quotes as needed.
- Wide CSV: current responses only, one row per patient per day from the patient's first to
  last day with data (inside --from/--to), empty days kept so gaps show; diary items in
  definition order, then `<questionnaire>_<score>` columns. `dialect="nl"` is for Dutch Excel:
  UTF-8 with BOM, `;`, decimal comma. Free text that a spreadsheet would run as a formula
  gets a leading quote (backend/exports/spreadsheet.py), in the long CSV too; replay takes it off.
- Cohort: PROM scores per patient at the pathway's time points (see `outcome_at`), and a
  summary per time point (completion rate, median pain) from `cohort_summary`.
- FHIR: see backend/exports/fhir_export.py.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
import statistics
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from backend.diary.questionnaires import Library, round_half_up
from backend.exports import spreadsheet
from backend.platform import audit, messages
from backend.platform.dates import DateRange, check_date
from backend.platform.messages import Problem

if TYPE_CHECKING:
    from backend.exports.fhir_export import FhirOptions

Dialect = Literal["standard", "nl"]
Format = Literal["long", "wide", "fhir", "cohort"]

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
BOM = "\ufeff"


# Dates a report may be asked for, and how long its period may be (review L10).
REPORT_DATES = DateRange(date(1900, 1, 1), date(2999, 12, 31))
MAX_PERIOD_DAYS = 10 * 366


class ExportError(Exception):
    """An export cannot be made as asked; the message names the problem (ids and dates only)."""


class Actor(msgspec.Struct, frozen=True):
    """Who exports, for the audit log (NEN 7513)."""

    user_id: int | None
    user_email: str | None
    role: str
    source: str


# -- arguments ----------------------------------------------------------------------------
def parse_date(text: str | None, name: str) -> str | None:
    """A YYYY-MM-DD argument by the one date rule (backend/platform/dates.py); None stays None."""
    if text is None or text == "":
        return None
    day = check_date(name, text, REPORT_DATES)
    if isinstance(day, Problem):
        raise ExportError(messages.text("period.date", field=name, value=repr(text[:40])))
    return day.isoformat()


def _check_range(date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    date_from = parse_date(date_from, "--from")
    date_to = parse_date(date_to, "--to")
    if date_from and date_to:
        check_period(date.fromisoformat(date_from), date.fromisoformat(date_to))
    return date_from, date_to


def check_period(start: date, end: date) -> None:
    """A period to report on: the right way round and at most MAX_PERIOD_DAYS long (a page or
    CSV of 700 000 days would hold the server for seconds)."""
    if start > end:
        raise ExportError(messages.text("period.reversed", start=start, end=end))
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ExportError(
            messages.text("period.too_long", start=start, end=end, years=MAX_PERIOD_DAYS // 365)
        )


def _where(
    patient_id: str | None, date_from: str | None, date_to: str | None, alias: str = "r"
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if patient_id is not None:
        clauses.append(f"{alias}.patient_id = ?")
        params.append(patient_id)
    if date_from:
        clauses.append(f"{alias}.local_date >= ?")
        params.append(date_from)
    if date_to:
        clauses.append(f"{alias}.local_date <= ?")
        params.append(date_to)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _span(date_from: str | None, date_to: str | None) -> str:
    if not date_from and not date_to:
        return "all dates"
    return f"{date_from or 'start'} to {date_to or 'end'}"


def _check_patient_has_data(
    conn: sqlite3.Connection,
    patient_id: str | None,
    date_from: str | None,
    date_to: str | None,
    table: str = "responses",
) -> None:
    if (
        patient_id is not None
        and conn.execute("SELECT 1 FROM patients WHERE id = ?", (patient_id,)).fetchone() is None
    ):
        raise ExportError(f"unknown patient {patient_id!r}")
    where, params = _where(patient_id, date_from, date_to)
    if conn.execute(f"SELECT 1 FROM {table} r{where} LIMIT 1", params).fetchone() is None:
        who = f"patient {patient_id}" if patient_id else "any patient"
        raise ExportError(f"no responses to export for {who} ({_span(date_from, date_to)})")


def exported_patients(
    conn: sqlite3.Connection,
    patient_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> list[str]:
    """The ids of the patients whose responses an export with these arguments contains."""
    if patient_id is not None:
        return [patient_id]
    where, params = _where(None, date_from, date_to)
    sql = f"SELECT DISTINCT r.patient_id FROM responses r{where} ORDER BY 1"
    return [row[0] for row in conn.execute(sql, params)]


# -- writing ------------------------------------------------------------------------------
class _Sink:
    """A write-only text buffer for csv.writer that hands out what was written."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.write = self.parts.append

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def write_export(path: str | Path, chunks: Iterable[str]) -> int:
    """Write text chunks to `path` atomically (temporary file, fsync, rename); return bytes.

    On any error the temporary file is removed and an existing file at `path` is untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    written = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for chunk in chunks:
                fh.write(chunk)
                written += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # health data: readable by the exporting user only
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return written


def stream_from(db_path: str | Path, make: Callable[[sqlite3.Connection], Iterator[str]]) -> Iterator[bytes]:
    """An export for an HTTP stream, over a read-only connection of its own, as UTF-8 bytes.

    `make(conn)` runs now, so a bad request raises ExportError before any byte is sent.
    Its own connection because a stream is read in worker threads and holds a read
    transaction, while the shared per-thread readers serve other requests meanwhile.
    The connection closes when the stream ends or is abandoned.
    """
    from backend.platform.storage import connect

    conn = connect(db_path, readonly=True)
    try:
        chunks = make(conn)
    except BaseException:
        conn.close()
        raise

    def gen() -> Iterator[bytes]:
        try:
            for chunk in chunks:
                yield chunk.encode("utf-8")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # ends the export's read transaction before the connection
            conn.close()

    return gen()


def _read_transaction(conn: sqlite3.Connection) -> Callable[[], None]:
    """Open a read transaction (one consistent snapshot) if none is open; return its closer."""
    if conn.in_transaction:
        return lambda: None
    conn.execute("BEGIN")

    def close() -> None:
        if conn.in_transaction:
            conn.execute("COMMIT")

    return close


# -- long CSV -----------------------------------------------------------------------------
# The hot loop of the largest export (tens of millions of rows). csv.writer costs about 4 us a
# row here; formatting RFC 4180 lines directly, with the response's six leading fields joined
# once per response and each distinct answer value formatted once (a small cache), is about
# four times faster. Tests check the output against the csv module's reading of it.
_LONG_SQL = """
SELECT r.patient_id, r.id, r.questionnaire_id, r.questionnaire_version, r.authored_at,
       r.local_date, r.answers
FROM responses r{where}
ORDER BY r.patient_id, r.local_date, r.authored_at, r.rowid
"""
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
        return str(int(value)) if value.is_integer() else repr(value)
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
    date_from, date_to = _check_range(date_from, date_to)
    _check_patient_has_data(conn, patient_id, date_from, date_to)
    where, params = _where(patient_id, date_from, date_to)
    return _long_chunks(conn, _LONG_SQL.format(where=where), params, chunk_responses)


def _long_chunks(
    conn: sqlite3.Connection, sql: str, params: list[Any], chunk_responses: int
) -> Iterator[str]:
    close = _read_transaction(conn)
    try:
        yield ",".join(LONG_HEADER) + "\r\n"
        decode = msgspec.json.decode
        values = _Formatted()
        keys = _Formatted()
        q = csv_field
        cur = conn.cursor()
        cur.row_factory = None  # plain tuples: no Row object per response
        cur.execute(sql, params)
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


# -- wide consult CSV ---------------------------------------------------------------------
def _cell(value: Any, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
        return text.replace(".", ",") if decimal_comma else text
    if isinstance(value, int):
        return str(value)
    return spreadsheet.guard(str(value))


def score_column(qid: str, score_id: str) -> str:
    """A score's column name: `<questionnaire>_<score>`, without doubling a prefix the score
    id already has (phq9_total, not phq9_phq9_total)."""
    return score_id if score_id.startswith(f"{qid}_") else f"{qid}_{score_id}"


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
    """The (questionnaire, score) pairs present in the range, by questionnaire then definition."""
    where, params = _where(patient_id, date_from, date_to)
    sql = f"SELECT DISTINCT r.questionnaire_id, j.key FROM current_responses r, json_each(r.scores) j{where}"
    present: dict[str, set[str]] = {}
    for qid, key in conn.execute(sql, params):
        present.setdefault(qid, set()).add(key)
    out: list[tuple[str, str]] = []
    for qid in sorted(present, key=lambda q: (q != "diary", q)):
        q = library.get(qid)
        order = [s.id for s in q.scores] if q else []
        keys = [k for k in order if k in present[qid]] + sorted(present[qid] - set(order))
        out += [(qid, k) for k in keys]
    return out


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
    date_from, date_to = _check_range(date_from, date_to)
    _check_patient_has_data(conn, patient_id, date_from, date_to)
    items = diary_columns(library)
    scores = score_columns(conn, library, patient_id, date_from, date_to)
    header = ["patient_id", "local_date", *items, *(score_column(q, s) for q, s in scores)]
    where, params = _where(patient_id, date_from, date_to)
    sql = (
        "SELECT r.patient_id, r.local_date, r.questionnaire_id, r.answers, r.scores"
        f" FROM current_responses r{where} ORDER BY r.patient_id, r.local_date"
    )
    return _wide_chunks(conn, sql, params, header, items, scores, dialect)


def _wide_chunks(
    conn: sqlite3.Connection,
    sql: str,
    params: list[Any],
    header: list[str],
    items: list[str],
    scores: list[tuple[str, str]],
    dialect: Dialect,
) -> Iterator[str]:
    close = _read_transaction(conn)
    try:
        nl = dialect == "nl"
        sink = _Sink()
        if nl:
            sink.write(BOM)
        writer = csv.writer(sink, delimiter=";" if nl else ",", lineterminator="\r\n")
        writer.writerow(header)
        item_index = {item: 2 + n for n, item in enumerate(items)}
        score_index = {qs: 2 + len(items) + n for n, qs in enumerate(scores)}
        width = len(header)
        decode = msgspec.json.decode
        rows: list[list[str]] = []

        def day_row(pid: str, day: str) -> list[Any]:
            return [pid, day] + [None] * (width - 2)

        def emit(row: list[Any]) -> None:
            rows.append([row[0], row[1], *(_cell(v, nl) for v in row[2:])])

        cur = conn.cursor()
        cur.row_factory = None
        cur.execute(sql, params)
        pid: str | None = None
        day: date | None = None
        row: list[Any] | None = None
        for r_pid, r_day, qid, answers, r_scores in cur:
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
                        row[at] = value
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
    finally:
        close()


# -- cohort export for outcome registration -----------------------------------------------
class TimePoint(msgspec.Struct, frozen=True):
    """A pathway's outcome time point: `at_days` after the anchor date, with its window."""

    label: str
    at_days: int
    before: int
    after: int


# Outcome registration defaults (product.md: intake, 6 weeks, 3, 6 and 12 months). The window
# is where a PROM still counts for the point: +-14 days around intake and 6 weeks, +-30 later.
DEFAULT_TIME_POINTS: tuple[TimePoint, ...] = (
    TimePoint("intake", 0, 14, 14),
    TimePoint("6w", 42, 14, 14),
    TimePoint("3m", 91, 30, 30),
    TimePoint("6m", 182, 30, 30),
    TimePoint("12m", 365, 30, 30),
)
# Pain around a time point: the mean of diary pain_avg over the 7 days centred on it, given
# at least 4 of those days (a single day means little: day-to-day SD of NRS is about 1.6).
PAIN_DAYS_EACH_SIDE = 3
PAIN_MIN_DAYS = 4


def window_for(at_days: int) -> int:
    """The default half-width of a time point's window, in days."""
    return 14 if at_days <= 42 else 30


def cohort_time_points(pathway_id: str, pathways: Mapping[str, Any]) -> tuple[TimePoint, ...]:
    """The pathway's outcome time points: the days of its `at_days` schedule entries, named by
    their labels (first label wins for a day), with default windows; none: the defaults."""
    pathway = pathways.get(pathway_id)
    if pathway is None:
        raise ExportError(f"unknown pathway {pathway_id!r}")
    found: dict[int, str] = {}
    for entry in pathway.schedule:
        for n, day in enumerate(entry.at_days):
            label = entry.labels[n] if n < len(entry.labels) else f"day {day}"
            found.setdefault(day, label)
    points = tuple(TimePoint(found[day], day, window_for(day), window_for(day)) for day in sorted(found))
    return points or DEFAULT_TIME_POINTS


class Outcome(msgspec.Struct):
    """One patient's outcome at one time point (a row of the cohort CSV)."""

    patient_id: str
    anchor_date: str
    point: TimePoint
    target_date: str
    status: Literal["completed", "missed", "open", "not_due"]
    pain_avg_7d: float | None
    # questionnaire id -> (local_date, scores) of the response nearest the target date
    proms: dict[str, tuple[str, dict[str, float]]]


def outcome_at(
    patient_id: str,
    anchor: date,
    point: TimePoint,
    proms: list[tuple[str, str, dict[str, float]]],
    pains: dict[str, float],
    today: date,
) -> Outcome:
    """The outcome at one time point from a patient's PROMs (local_date, questionnaire, scores)
    and diary pain by local_date: pure, so the rule is easy to test and to explain."""
    target = anchor + timedelta(days=point.at_days)
    lo = (target - timedelta(days=point.before)).isoformat()
    hi = (target + timedelta(days=point.after)).isoformat()
    nearest: dict[str, tuple[int, str, dict[str, float]]] = {}
    for day, qid, scores in proms:
        if not lo <= day <= hi:
            continue
        distance = abs((date.fromisoformat(day) - target).days)
        best = nearest.get(qid)
        # Nearest wins; between equally near ones, the earlier (before treatment effects).
        if best is None or (distance, day) < (best[0], best[1]):
            nearest[qid] = (distance, day, scores)
    values = [
        pains[d]
        for offset in range(-PAIN_DAYS_EACH_SIDE, PAIN_DAYS_EACH_SIDE + 1)
        if (d := (target + timedelta(days=offset)).isoformat()) in pains
    ]
    pain = round_half_up(sum(values) / len(values), 1) if len(values) >= PAIN_MIN_DAYS else None
    if nearest:
        status: Any = "completed"
    elif target > today:
        status = "not_due"
    elif hi >= today.isoformat():
        status = "open"
    else:
        status = "missed"
    return Outcome(
        patient_id=patient_id,
        anchor_date=anchor.isoformat(),
        point=point,
        target_date=target.isoformat(),
        status=status,
        pain_avg_7d=pain,
        proms={qid: (day, scores) for qid, (_d, day, scores) in nearest.items()},
    )


def _check_pathway(conn: sqlite3.Connection, pathway_id: str) -> None:
    if not pathway_id:
        raise ExportError("a cohort export needs --pathway")
    if conn.execute("SELECT 1 FROM patients WHERE pathway_id = ? LIMIT 1", (pathway_id,)).fetchone() is None:
        raise ExportError(f"no patients in pathway {pathway_id!r} (unknown pathway or nobody enrolled)")


def cohort_outcomes(
    conn: sqlite3.Connection,
    pathway_id: str,
    *,
    time_points: Sequence[TimePoint] = DEFAULT_TIME_POINTS,
    today: date | None = None,
) -> Iterator[Outcome]:
    """Each patient's outcome at each time point, patient by patient (streams)."""
    _check_pathway(conn, pathway_id)
    return _cohort_outcomes(conn, pathway_id, tuple(time_points), today or date.today())


def _cohort_outcomes(
    conn: sqlite3.Connection, pathway_id: str, points: tuple[TimePoint, ...], today: date
) -> Iterator[Outcome]:
    close = _read_transaction(conn)
    try:
        decode = msgspec.json.decode
        patients = conn.cursor()
        patients.row_factory = None
        patients.execute(
            "SELECT id, anchor_date FROM patients WHERE pathway_id = ? ORDER BY id", (pathway_id,)
        )
        for pid, anchor in patients:
            proms: list[tuple[str, str, dict[str, float]]] = []
            pains: dict[str, float] = {}
            for day, qid, answers, scores in conn.execute(
                "SELECT local_date, questionnaire_id, answers, scores FROM current_responses"
                " WHERE patient_id = ?",
                (pid,),
            ):
                if qid == "diary":
                    pain = decode(answers).get("pain_avg")
                    if isinstance(pain, int | float) and not isinstance(pain, bool):
                        pains[day] = pain
                else:
                    values = decode(scores)
                    if values:
                        proms.append((day, qid, values))
            for point in points:
                yield outcome_at(pid, date.fromisoformat(anchor), point, proms, pains, today)
    finally:
        close()


def cohort_score_columns(
    conn: sqlite3.Connection, library: Library, pathway_id: str
) -> list[tuple[str, list[str]]]:
    """The questionnaires (not the diary) answered in the pathway, each with its score ids."""
    present: dict[str, set[str]] = {}
    for qid, key in conn.execute(
        "SELECT DISTINCT r.questionnaire_id, j.key FROM responses r"
        " JOIN patients p ON p.id = r.patient_id, json_each(r.scores) j"
        " WHERE p.pathway_id = ? AND r.questionnaire_id != 'diary'",
        (pathway_id,),
    ):
        present.setdefault(qid, set()).add(key)
    out = []
    for qid in sorted(present):
        q = library.get(qid)
        order = [s.id for s in q.scores] if q else []
        out.append((qid, [k for k in order if k in present[qid]] + sorted(present[qid] - set(order))))
    return out


def iter_cohort(
    conn: sqlite3.Connection,
    library: Library,
    pathway_id: str,
    *,
    time_points: Sequence[TimePoint] = DEFAULT_TIME_POINTS,
    today: date | None = None,
) -> Iterator[str]:
    """The cohort CSV: one row per patient per time point, PROM scores and 7-day pain."""
    outcomes = cohort_outcomes(conn, pathway_id, time_points=time_points, today=today)
    columns = cohort_score_columns(conn, library, pathway_id)
    return _cohort_chunks(outcomes, columns)


def _cohort_chunks(outcomes: Iterator[Outcome], columns: list[tuple[str, list[str]]]) -> Iterator[str]:
    sink = _Sink()
    writer = csv.writer(sink, lineterminator="\r\n")
    header = ["patient_id", "anchor_date", "time_point", "at_days", "target_date", "status", "pain_avg_7d"]
    for qid, keys in columns:
        header += [f"{qid}_date", *(score_column(qid, k) for k in keys)]
    writer.writerow(header)
    for n, o in enumerate(outcomes, 1):
        row: list[Any] = [
            o.patient_id,
            o.anchor_date,
            o.point.label,
            o.point.at_days,
            o.target_date,
            o.status,
            _cell(o.pain_avg_7d, False),
        ]
        for qid, keys in columns:
            day, scores = o.proms.get(qid, ("", {}))
            row += [day, *(_cell(scores.get(k), False) for k in keys)]
        writer.writerow(row)
        if n % 1000 == 0:
            yield sink.take()
    yield sink.take()


class PointSummary(msgspec.Struct):
    """A time point across the cohort: completion and the cohort's median pain."""

    label: str
    at_days: int
    patients: int
    due: int
    completed: int
    completion_rate: float | None
    median_pain: float | None
    pain_patients: int


def cohort_summary(
    conn: sqlite3.Connection,
    pathway_id: str,
    *,
    time_points: Sequence[TimePoint] = DEFAULT_TIME_POINTS,
    today: date | None = None,
) -> list[PointSummary]:
    """Per time point: patients, how many were due (window closed, or answered), how many
    completed, the completion rate, and the median of the patients' 7-day mean pain."""
    points = tuple(time_points)
    counts = {p.label: [0, 0, 0] for p in points}
    pains: dict[str, list[float]] = {p.label: [] for p in points}
    for o in cohort_outcomes(conn, pathway_id, time_points=points, today=today):
        c = counts[o.point.label]
        c[0] += 1
        if o.status in ("completed", "missed"):
            c[1] += 1
        if o.status == "completed":
            c[2] += 1
        if o.pain_avg_7d is not None:
            pains[o.point.label].append(o.pain_avg_7d)
    out = []
    for p in points:
        n, due, done = counts[p.label]
        values = pains[p.label]
        out.append(
            PointSummary(
                label=p.label,
                at_days=p.at_days,
                patients=n,
                due=due,
                completed=done,
                completion_rate=round(done / due, 3) if due else None,
                median_pain=round_half_up(statistics.median(values), 1) if values else None,
                pain_patients=len(values),
            )
        )
    return out


def iter_cohort_summary(summary: Sequence[PointSummary]) -> Iterator[str]:
    """The cohort summary as CSV text (one row per time point)."""
    sink = _Sink()
    writer = csv.writer(sink, lineterminator="\r\n")
    fields = [f.name for f in msgspec.structs.fields(PointSummary)]
    writer.writerow(fields)
    for s in summary:
        writer.writerow([_cell(getattr(s, f), False) for f in fields])
    yield sink.take()


# -- one call per export: file, audit log -------------------------------------------------
def audit_export(
    conn: sqlite3.Connection,
    actor: Actor,
    patient_ids: Iterable[str],
    fmt: str,
    detail: str = "",
) -> int:
    """One audit-log row per exported patient (NEN 7513), in one write transaction."""
    obj = f"export {fmt}" + (f" {detail}" if detail else "")
    n = 0
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        for pid in patient_ids:
            audit.record(
                conn,
                user_id=actor.user_id,
                user_email=actor.user_email,
                role=actor.role,
                patient_id=pid,
                action="export",
                object=obj,
                source=actor.source,
            )
            n += 1
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own:
            conn.execute("ROLLBACK")
        raise
    return n


class ExportDone(msgspec.Struct):
    """What an export wrote: the files and how many patients are in them."""

    paths: list[str]
    patients: int


def summary_path(path: str | Path) -> Path:
    """Where the cohort summary goes beside the cohort file: `<name>-summary.csv`."""
    path = Path(path)
    return path.with_name(f"{path.stem}-summary{path.suffix or '.csv'}")


def export_to_file(
    conn: sqlite3.Connection,
    path: str | Path,
    *,
    fmt: Format,
    actor: Actor,
    library: Library | None = None,
    patient_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    dialect: Dialect = "standard",
    pathway_id: str | None = None,
    time_points: Sequence[TimePoint] = DEFAULT_TIME_POINTS,
    today: date | None = None,
    fhir: FhirOptions | None = None,
) -> ExportDone:
    """Make one export as a file (atomically) and audit-log it per patient once it is whole.

    `fhir`: the FhirOptions of a FHIR export (bundle type, canonical base, identifier system).

    `conn` must be writable (the audit rows); reading happens in one snapshot.
    """
    if fmt in ("wide", "fhir", "cohort") and library is None:
        raise ExportError(f"the {fmt} export needs the questionnaire library")
    detail = _span(*_check_range(date_from, date_to))
    paths = [str(path)]
    if fmt == "long":
        write_export(path, iter_long(conn, patient_id=patient_id, date_from=date_from, date_to=date_to))
    elif fmt == "wide":
        assert library is not None
        chunks = iter_wide(
            conn, library, patient_id=patient_id, date_from=date_from, date_to=date_to, dialect=dialect
        )
        write_export(path, chunks)
        detail += f" dialect {dialect}"
    elif fmt == "fhir":
        from backend.exports.fhir_export import FhirOptions, iter_fhir

        assert library is not None
        fhir = fhir or FhirOptions()
        write_export(
            path,
            iter_fhir(
                conn, library, patient_id=patient_id, date_from=date_from, date_to=date_to, options=fhir
            ),
        )
        detail += f" bundle {fhir.bundle}" + (" with names" if fhir.with_names else "")
    elif fmt == "cohort":
        assert library is not None
        if not pathway_id:
            raise ExportError("a cohort export needs --pathway")
        write_export(path, iter_cohort(conn, library, pathway_id, time_points=time_points, today=today))
        summary = cohort_summary(conn, pathway_id, time_points=time_points, today=today)
        second = summary_path(path)
        write_export(second, iter_cohort_summary(summary))
        paths.append(str(second))
        detail = f"pathway {pathway_id}"
    else:
        raise ExportError(f"unknown export format {fmt!r} (long, wide, fhir, cohort)")
    if fmt == "cohort":
        assert pathway_id is not None
        ids = [
            r[0]
            for r in conn.execute("SELECT id FROM patients WHERE pathway_id = ? ORDER BY id", (pathway_id,))
        ]
    else:
        ids = exported_patients(conn, patient_id, *_check_range(date_from, date_to))
    audit_export(conn, actor, ids, fmt, detail)
    return ExportDone(paths=paths, patients=len(ids))


# -- the `pijnwacht export` command -------------------------------------------------------
def add_export_command(subparsers: Any) -> Any:
    """Add `export` to the `pijnwacht` command's argparse subparsers."""
    p = subparsers.add_parser(
        "export",
        help="export responses as CSV (long, wide, cohort) or FHIR",
        description="Export responses. Long CSV: the raw history (replay input). Wide: one row"
        " per patient per day for the consult. Cohort: PROMs per time point of a pathway (and a"
        " -summary file). FHIR: an R4 Bundle.",
    )
    p.add_argument("--format", required=True, choices=["long", "wide", "fhir", "cohort"])
    p.add_argument("--patient", help="one patient id (default: every patient)")
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first local date")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last local date")
    p.add_argument(
        "--dialect",
        choices=["standard", "nl"],
        default="standard",
        help="wide CSV: standard (comma) or nl (Dutch Excel: BOM, ';', decimal comma)",
    )
    p.add_argument("--pathway", help="cohort export: the pathway id")
    p.add_argument(
        "--bundle",
        choices=["collection", "transaction"],
        default="collection",
        help="FHIR: collection (a file to read) or transaction (conditional PUTs a FHIR server imports)",
    )
    p.add_argument(
        "--with-names",
        action="store_true",
        help="FHIR: put the patients' display names in Patient.name (default: pseudonymous)",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    p.set_defaults(func=export_command)
    return p


def export_command(args: Any, settings: Any = None) -> int:
    """Run `pijnwacht export`: 0 done, 2 a problem with the request (message on stderr)."""
    import getpass
    import sys

    from backend.diary.questionnaires import load_library
    from backend.platform.settings import load_settings
    from backend.platform.storage import open_database

    if args.format != "fhir" and (args.bundle != "collection" or args.with_names):
        print("pijnwacht export: --bundle and --with-names are for --format fhir", file=sys.stderr)
        return 2
    if settings is None:
        settings = load_settings(db=getattr(args, "db", None))
    db = open_database(settings.db)  # makes and migrates the file when absent (contract)
    db.close()
    from backend.platform.storage import connect

    conn = connect(settings.db)
    try:
        library = load_library(settings.questionnaires_dir) if args.format != "long" else None
        points = DEFAULT_TIME_POINTS
        if args.format == "cohort" and args.pathway and library is not None:
            from backend.patients.pathways import load_pathways

            pathways = load_pathways(settings.questionnaires_dir, library)
            points = cohort_time_points(args.pathway, pathways)
        actor = Actor(user_id=None, user_email=getpass.getuser(), role="admin", source="cli")
        from backend.exports.fhir_export import FhirOptions

        fhir = FhirOptions(
            bundle=args.bundle,
            base=settings.fhir_base,
            patient_system=settings.fhir_patient_system,
            with_names=args.with_names,
        )
        done = export_to_file(
            conn,
            args.output,
            fmt=args.format,
            actor=actor,
            library=library,
            patient_id=args.patient,
            date_from=args.date_from,
            date_to=args.date_to,
            dialect=args.dialect,
            pathway_id=args.pathway,
            time_points=points,
            fhir=fhir,
        )
    except ExportError as exc:
        print(f"pijnwacht export: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    print(f"wrote {', '.join(done.paths)} ({done.patients} patients)")
    return 0
