"""The cohort export for outcome registration: PROM scores per patient at the pathway's time
points (see `outcome_at`), and a summary per time point (completion rate, median pain) from
`cohort_summary`.

Two variants, as the consult and alerts CSVs: standard (the columns below, codes, a decimal
point) and `nl` for Dutch Excel (UTF-8 with BOM, `;`, decimal comma, the patient's name beside
the pseudonymous id, Dutch column names, time points and statuses: "6 weken", "gemist").
"""

from __future__ import annotations

import csv
import sqlite3
import statistics
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Literal

import msgspec

from backend.diary import store as responses
from backend.diary.questionnaires import Library
from backend.exports.files import Sink, read_transaction, spreadsheet_writer
from backend.exports.scope import ExportError
from backend.exports.spreadsheet import guard
from backend.exports.wide import cell, dutch_score_name, ordered_scores, questionnaire_title, score_column
from backend.patients import store as patients
from backend.platform.formatting import round_half_up
from backend.platform.formatting import today as clinic_today
from backend.platform.words import time_point, word


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


def cohort_patients(conn: sqlite3.Connection, pathway_id: str | None) -> list[tuple[str, str]]:
    """(id, anchor_date) of the pathway's patients; ExportError when there are none."""
    if not pathway_id:
        raise ExportError("a cohort export needs --pathway")
    found = patients.in_pathway(conn, pathway_id)
    if not found:
        raise ExportError(
            f"no patients in pathway {pathway_id!r} (unknown pathway or nobody enrolled)", nothing=True
        )
    return found


def cohort_outcomes(
    conn: sqlite3.Connection,
    pathway_id: str,
    *,
    time_points: Sequence[TimePoint] = DEFAULT_TIME_POINTS,
    today: date | None = None,
) -> Iterator[Outcome]:
    """Each patient's outcome at each time point, patient by patient (streams); by default as of
    the clinic's today, not the server's."""
    cohort_patients(conn, pathway_id)
    return _cohort_outcomes(conn, pathway_id, tuple(time_points), today or clinic_today())


def _cohort_outcomes(
    conn: sqlite3.Connection, pathway_id: str, points: tuple[TimePoint, ...], today: date
) -> Iterator[Outcome]:
    close = read_transaction(conn)
    try:
        decode = msgspec.json.decode
        for pid, anchor in patients.in_pathway(conn, pathway_id):
            proms: list[tuple[str, str, dict[str, float]]] = []
            pains: dict[str, float] = {}
            for day, qid, answers, scores in responses.current_of(conn, pid):
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
    ids = [pid for pid, _anchor in patients.in_pathway(conn, pathway_id)]
    return list(ordered_scores(library, responses.score_keys_of(conn, ids)).items())


def iter_cohort(
    conn: sqlite3.Connection,
    library: Library,
    pathway_id: str,
    *,
    time_points: Sequence[TimePoint] = DEFAULT_TIME_POINTS,
    today: date | None = None,
    dialect: Literal["standard", "nl"] = "standard",
) -> Iterator[str]:
    """The cohort CSV: one row per patient per time point, PROM scores and 7-day pain."""
    if dialect not in ("standard", "nl"):
        raise ExportError(f"unknown dialect {dialect!r} (standard or nl)")
    outcomes = cohort_outcomes(conn, pathway_id, time_points=time_points, today=today)
    columns = cohort_score_columns(conn, library, pathway_id)
    if dialect == "standard":
        return _cohort_chunks(outcomes, columns)
    names = patients.names(conn, [pid for pid, _anchor in patients.in_pathway(conn, pathway_id)])
    return _cohort_chunks(outcomes, columns, dutch=(library, names))


STANDARD_HEADER = (
    "patient_id",
    "anchor_date",
    "time_point",
    "at_days",
    "target_date",
    "status",
    "pain_avg_7d",
)


def _cohort_chunks(
    outcomes: Iterator[Outcome],
    columns: list[tuple[str, list[str]]],
    dutch: tuple[Library, Mapping[str, str]] | None = None,
) -> Iterator[str]:
    sink = Sink()
    writer = spreadsheet_writer(sink, dutch is not None)
    header = list(STANDARD_HEADER)
    for qid, keys in columns:
        header += [f"{qid}_date", *(score_column(qid, k) for k in keys)]
    if dutch is not None:
        library, names = dutch
        header = [word("column", c) for c in STANDARD_HEADER]
        header.insert(1, word("column", "display_name"))
        for qid, keys in columns:
            title = questionnaire_title(library, qid)
            header += [
                f"{title} {word('column', 'local_date')}",
                *(dutch_score_name(library, qid, k) for k in keys),
            ]
    writer.writerow(header)
    comma = dutch is not None
    for n, o in enumerate(outcomes, 1):
        row: list[Any] = [
            o.patient_id,
            o.anchor_date,
            o.point.label,
            o.point.at_days,
            o.target_date,
            o.status,
            cell(o.pain_avg_7d, comma),
        ]
        if dutch is not None:
            row[2], row[5] = time_point(o.point.label), word("cohort_status", o.status)
            row.insert(1, guard(dutch[1].get(o.patient_id) or ""))
        for qid, keys in columns:
            day, scores = o.proms.get(qid, ("", {}))
            row += [day, *(cell(scores.get(k), comma) for k in keys)]
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
    # Past the time point but still inside its window: not yet due, not yet missed.
    window_open: int = 0


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
    counts = {p.label: [0, 0, 0, 0] for p in points}
    pains: dict[str, list[float]] = {p.label: [] for p in points}
    for o in cohort_outcomes(conn, pathway_id, time_points=points, today=today):
        c = counts[o.point.label]
        c[0] += 1
        if o.status in ("completed", "missed"):
            c[1] += 1
        if o.status == "completed":
            c[2] += 1
        if o.status == "open":
            c[3] += 1
        if o.pain_avg_7d is not None:
            pains[o.point.label].append(o.pain_avg_7d)
    out = []
    for p in points:
        n, due, done, window_open = counts[p.label]
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
                window_open=window_open,
            )
        )
    return out


def iter_cohort_summary(summary: Sequence[PointSummary]) -> Iterator[str]:
    """The cohort summary as CSV text (one row per time point)."""
    sink = Sink()
    writer = csv.writer(sink, lineterminator="\r\n")
    fields = [f.name for f in msgspec.structs.fields(PointSummary)]
    writer.writerow(fields)
    for s in summary:
        writer.writerow([cell(getattr(s, f), False) for f in fields])
    yield sink.take()
