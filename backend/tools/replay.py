"""Replay: run the detection rules over a long responses CSV, day by day, into an alerts CSV.

`pijnwacht replay RESPONSES.csv [--pathway ID] [--until YYYY-MM-DD] -o ALERTS.csv` lets a
clinic tune thresholds on its own history: each patient is evaluated on every day from their
first diary day up to `--until` (default: the last date in the file), time-based rules
(silence) included, through the same `alerts.step` lifecycle as the live system. An edit (two
responses of one questionnaire on one local date) counts as the newer one (authored_at).
"""

from __future__ import annotations

import bisect
import csv
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from backend.alerts.detection import (
    Entry,
    Finding,
    Thresholds,
    evaluate,
    lookback_days,
    thresholds_for,
)
from backend.alerts.lifecycle import OpenAlert, apply_in_memory, pathway_detection, step
from backend.exports.alerts_csv import ALERTS_HEADER
from backend.exports.long import LONG_HEADER
from backend.exports.spreadsheet import guard, unguard
from backend.platform import messages
from backend.platform.dates import ANY_TIME, DateRange, check_date, check_datetime
from backend.platform.messages import Problem

Detector = Callable[[Sequence[Entry], date, date], list[Finding]]


# How far a patient's diary days may lie from the middle of their days in one file (the
# date rule's range for replay input, which has no enrolment date to go by).
SPAN_DAYS = 10 * 366


class ReplayError(ValueError):
    """The input cannot be replayed; the message names the line and the column."""


class AlertRow(msgspec.Struct):
    """One row of the alerts CSV: an alert as it opened."""

    patient_id: str
    rule_id: str
    category: str
    severity: str
    opened_on: date
    reason: str


class _Response(msgspec.Struct):
    questionnaire: str
    version: int
    authored: datetime
    authored_text: str
    local_date: date
    answers: dict[str, Any]
    line: int = 0


# -- reading --------------------------------------------------------------------------------
def _value(text: str) -> Any:
    """An answer as the long CSV wrote it: whole numbers as int, decimals as float, else text
    (without the export's guard against spreadsheet formulas)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return unguard(text)
    return number if math.isfinite(number) else unguard(text)


def read_responses(
    rows: Iterable[tuple[int, Mapping[str, str]]],
) -> dict[str, dict[str, _Response]]:
    """patient id -> response id -> response, from (line number, row) pairs of the long CSV."""
    patients: dict[str, dict[str, _Response]] = {}
    dates: dict[str, date] = {}
    times: dict[str, datetime] = {}
    for line, row in rows:

        def bad(column: str, why: str, line: int = line) -> ReplayError:
            return ReplayError(f"line {line}, column {column}: {why}")

        for column in LONG_HEADER:
            if row.get(column) is None:
                raise bad(column, "missing")
        pid, rid = row["patient_id"], row["response_id"]
        if not pid:
            raise bad("patient_id", "empty")
        if not rid:
            raise bad("response_id", "empty")
        if not row["item_id"]:
            raise bad("item_id", "empty")
        # Every line is checked (not only a response's first): the caches keep it cheap.
        day_text, at_text, version_text = (
            row["local_date"],
            row["authored_at"],
            row["questionnaire_version"],
        )
        day = dates.get(day_text)
        if day is None:
            day = check_date("local_date", day_text, ANY_TIME)
            if isinstance(day, Problem):
                raise bad("local_date", f"{day_text!r} {messages.text(day.key, 'en', **day.params)}")
            dates[day_text] = day
        at = times.get(at_text)
        if at is None:
            at = check_datetime("authored_at", at_text, ANY_TIME)
            if isinstance(at, Problem):
                raise bad("authored_at", f"{at_text!r} {messages.text(at.key, 'en', **at.params)}")
            times[at_text] = at
        if not version_text.isdigit():
            raise bad("questionnaire_version", f"{version_text!r} is not a whole number")
        if not row["questionnaire_id"]:
            raise bad("questionnaire_id", "empty")
        responses = patients.setdefault(pid, {})
        r = responses.get(rid)
        if r is None:
            r = responses[rid] = _Response(
                row["questionnaire_id"], int(version_text), at, at_text, day, {}, line
            )
        elif r.local_date != day or r.questionnaire != row["questionnaire_id"]:
            raise bad("response_id", f"{rid!r} appears with another date or questionnaire")
        r.answers[row["item_id"]] = _value(row["value"])
    for responses in patients.values():
        _check_span(responses.values())
    return patients


def _check_span(responses: Iterable[_Response]) -> None:
    """The date rule's range, taken from the file: a file has no enrolment or clock to
    measure against, so a patient's days must lie within SPAN_DAYS of the middle of that
    patient's own days (a stray 0001-01-01 or 9999-12-31 would otherwise make replay walk
    every day of 10 000 years, or hide the real diary behind a date the rules never reach)."""
    days = sorted((r.local_date, r.authored.date(), r.line) for r in responses)
    if not days:
        return
    middle = days[len(days) // 2][0]
    allowed = DateRange(middle - timedelta(days=SPAN_DAYS), middle + timedelta(days=SPAN_DAYS))
    for day, written, line in days:
        for column, value in (("local_date", day), ("authored_at", written)):
            if value not in allowed:
                raise ReplayError(
                    f"line {line}, column {column}: {value} lies more than {SPAN_DAYS // 365} years from"
                    f" the middle of this patient's diary ({middle})"
                )


def current_entries(responses: Iterable[_Response], library: Any = None) -> list[Entry]:
    """The responses as entries, oldest first, an edit replacing what it supersedes."""
    latest: dict[tuple[str, date], _Response] = {}
    for r in responses:
        key = (r.questionnaire, r.local_date)
        have = latest.get(key)
        if have is None or r.authored >= have.authored:
            latest[key] = r
    entries: list[Entry] = []
    for r in sorted(latest.values(), key=lambda r: (r.local_date, r.authored)):
        scores: dict[str, float] = {}
        if library is not None:
            q = library.get(r.questionnaire, r.version) or library.get(r.questionnaire)
            if q is not None:
                from backend.diary.scoring import compute_scores

                try:
                    scores = compute_scores(q, r.answers)
                except Exception:  # noqa: BLE001 - answers a definition cannot score: no scores
                    scores = {}
        entries.append(Entry(r.questionnaire, r.local_date, r.answers, scores, r.authored_text))
    return entries


def written_on(entries: Sequence[Entry]) -> date | None:
    """Replay has no receipt times: the day the latest diary entry was written (authored_at,
    in the writer's own offset) stands in for the day the live system heard from the patient."""
    for e in reversed(entries):
        if e.questionnaire == "diary":
            try:
                return datetime.fromisoformat(e.authored_at.replace("Z", "+00:00")).date()
            except ValueError:
                return None
    return None


# -- the day-by-day run ---------------------------------------------------------------------
class Timeline(msgspec.Struct):
    """One patient's run: the alerts as they opened."""

    opened: list[AlertRow]


def replay_patient(
    patient_id: str,
    entries: Sequence[Entry],
    first_day: date,
    until: date,
    detector: Detector,
    quiet_days: int,
    lookback: int | None = None,
    hold_days: int = 0,
) -> Timeline:
    """Evaluate one patient on every day from `first_day` to `until`, as the live system
    would have (each day sees only the entries up to that day), through `alerts.step`.
    `lookback`: how many days of diary the detector reads (None: all of it)."""
    # The diary only as far back as the rules read it (a year of history would otherwise make
    # every day cost as much as the whole year); other questionnaires in full (a PROM is
    # compared with the one before it, however long ago).
    diary = [e for e in entries if e.questionnaire == "diary"]
    other = [e for e in entries if e.questionnaire != "diary"]
    diary_dates = [e.local_date for e in diary]
    other_dates = [e.local_date for e in other]
    open_alerts: dict[str, OpenAlert] = {}
    opened: list[AlertRow] = []
    today = first_day
    one = timedelta(days=1)
    while today <= until:
        k = bisect.bisect_right(diary_dates, today)
        lo = 0
        if lookback is not None:
            lo = min(bisect.bisect_left(diary_dates, today - timedelta(days=lookback)), max(k - 1, 0))
        seen = other[: bisect.bisect_right(other_dates, today)] + diary[lo:k]
        findings = detector(seen, today, first_day)
        changes = step(open_alerts, findings, today, quiet_days, hold_days)
        for a in apply_in_memory(open_alerts, changes, today, hold_days):
            opened.append(AlertRow(patient_id, a.rule_id, a.category, a.severity, today, a.reason))
        today += one
    return Timeline(opened)


def replay(
    rows: Iterable[Mapping[str, str]],
    pathway: str | None,
    until: date | None,
    library: Any,
    pathways: Mapping[str, Any] | None,
    detector: Detector | None = None,
) -> Iterator[AlertRow]:
    """The alerts the rules would have opened over these long-CSV rows (dicts by header).
    `detector`: another set of rules in place of `evaluate` (an anchor to compare with)."""
    return _replay(enumerate(rows, start=2), pathway, until, library, pathways, detector)


def _replay(
    numbered: Iterable[tuple[int, Mapping[str, str]]],
    pathway: str | None,
    until: date | None,
    library: Any,
    pathways: Mapping[str, Any] | None,
    detector: Detector | None = None,
) -> Iterator[AlertRow]:
    if pathway is not None and pathways is not None and pathway not in pathways:
        raise ReplayError(f"unknown pathway {pathway!r} (known: {', '.join(sorted(pathways))})")
    thresholds = thresholds_for(pathway_detection(pathways, pathway), {}) if pathway else Thresholds()
    patients = read_responses(numbered)
    per_patient = {pid: current_entries(responses.values(), library) for pid, responses in patients.items()}
    last = max((e[-1].local_date for e in per_patient.values() if e), default=None)
    end = until or last

    def detect(entries: Sequence[Entry], today: date, first: date) -> list[Finding]:
        return evaluate(entries, thresholds, today, first, library, heard_on=written_on(entries))

    if detector is not None:
        detect = detector

    for pid in sorted(per_patient):
        entries = per_patient[pid]
        if not entries or end is None or entries[0].local_date > end:
            continue
        timeline = replay_patient(
            pid,
            entries,
            entries[0].local_date,
            end,
            detect,
            thresholds.quiet_days,
            lookback_days(thresholds),
            thresholds.hold_days,
        )
        yield from timeline.opened


def run_replay(
    csv_in: Path,
    csv_out: Path,
    pathway: str | None,
    until: date | None,
    library: Any,
    pathways: Mapping[str, Any] | None,
    detector: Detector | None = None,
) -> int:
    """Replay a long responses CSV file into an alerts CSV file (written atomically);
    return the number of alerts. `detector`: as for `replay`."""
    csv_in, csv_out = Path(csv_in), Path(csv_out)
    with open(csv_in, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ReplayError("line 1: the file is empty (expected the long CSV header)") from None
        missing = [c for c in LONG_HEADER if c not in header]
        if missing:
            raise ReplayError(f"line 1, column {missing[0]}: missing from the header")
        index = {c: header.index(c) for c in LONG_HEADER}
        width = len(header)

        def numbered() -> Iterator[tuple[int, dict[str, str]]]:
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    raise ReplayError(f"line {line}: {len(row)} columns, the header has {width}")
                yield line, {c: row[i] for c, i in index.items()}

        try:
            rows = list(_replay(numbered(), pathway, until, library, pathways, detector))
        except csv.Error as exc:
            raise ReplayError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    fd, tmp = tempfile.mkstemp(prefix=".replay-", suffix=".csv", dir=csv_out.parent or ".")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(ALERTS_HEADER)
            for a in rows:
                writer.writerow(
                    [
                        a.patient_id,
                        a.rule_id,
                        a.category,
                        a.severity,
                        a.opened_on.isoformat(),
                        guard(a.reason),
                    ]
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, csv_out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(rows)


# -- the command --------------------------------------------------------------------------------
def add_replay_command(subparsers: Any) -> Any:
    """Add `replay` to the `pijnwacht` command's argparse subparsers."""
    p = subparsers.add_parser(
        "replay",
        help="run the detection rules over a long responses CSV into an alerts CSV",
        description="Evaluate the rules day by day over a long responses CSV (as exported by"
        " `pijnwacht export --format long`), as the live system would have, and write the"
        " alerts that would have opened.",
    )
    p.add_argument("responses", metavar="RESPONSES.csv")
    p.add_argument("--pathway", help="use this pathway's detection thresholds")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="last day (default: last in the file)")
    p.add_argument("-o", "--output", required=True, metavar="ALERTS.csv")
    p.set_defaults(func=replay_command)
    return p


def replay_command(args: Any, settings: Any = None) -> int:
    """Run `pijnwacht replay`: 0 done, 2 a problem with the input (message on stderr)."""
    from backend.diary.questionnaires import load_library
    from backend.patients.pathways import load_pathways
    from backend.platform.settings import load_settings

    if settings is None:
        settings = load_settings(db=getattr(args, "db", None))
    until = None
    if args.until:
        try:
            until = date.fromisoformat(args.until)
        except ValueError:
            print(f"pijnwacht replay: --until {args.until!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
            return 2
    from backend.platform.storage import open_database

    open_database(settings.db).close()  # every command makes the database when absent
    library = load_library(settings.questionnaires_dir)
    pathways = load_pathways(settings.questionnaires_dir, library)
    try:
        n = run_replay(Path(args.responses), Path(args.output), args.pathway, until, library, pathways)
    except FileNotFoundError as exc:
        print(f"pijnwacht replay: {exc.filename}: no such file", file=sys.stderr)
        return 2
    except (ReplayError, ValueError) as exc:
        print(f"pijnwacht replay: {args.responses}: {exc}", file=sys.stderr)
        return 2
    print(f"{n} alerts written to {args.output}")
    return 0
