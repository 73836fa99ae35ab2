"""The yardstick of detection: score the alert rows the clinic would have seen.

A simulated cohort is written as the contract's long responses CSV, run through
`pijnwacht replay` (`run_replay`: the rules, the `alerts.step` lifecycle, the alerts CSV) and
the rows read back are scored against the labelled truth by the public definition of issue 12:

- a step is caught when a `pain` row opens within 7 days of its onset (onset .. onset + 7);
  a ramp when one opens within 14 days of its start (start .. start + 14);
- delay: the first catching row's date minus the onset (a ramp caught before its onset: 0);
- a `pain` row outside every pain event's window [onset, end + 7 days] is false (a row that
  catches a ramp before its onset is inside); rates are per patient-month of diary, a
  patient's diary running from their first to their last diary day;
- alerts per detected event = pain rows inside event windows / caught events;
- severe drowsiness is caught by a `side_effect` or `safety` row on the day or the day after;
  an urgent `side_effect` or `safety` row on no such day is false (other side-effect rows,
  e.g. constipation for days on end, are real alerts of their own and not counted here);
- a silence is caught by an `adherence` row after the last entry before it and within 5 days
  of its start (start .. start + 5).

Only what a clinic sees is counted: a rule that keeps firing under an alert that is already
open adds nothing.
"""

from __future__ import annotations

import csv
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import msgspec

from backend.exports.long import LONG_HEADER
from backend.tools.replay import AlertRow, Detector, run_replay
from backend.tools.simulate import Event, SimPatient

DAYS_PER_MONTH = 30.44
STEP_CATCH_DAYS = 7
RAMP_CATCH_DAYS = 14
AFTER_END_DAYS = 7
SILENCE_CATCH_DAYS = 5
PAIN_KINDS = ("step", "ramp")
# The pathway name under which a threshold override reaches `run_replay` as a [detection] table.
OVERRIDE_PATHWAY = "yardstick"


class Row(Protocol):
    """What the scorer reads of an alerts-CSV row."""

    patient_id: str
    rule_id: str
    category: str
    severity: str
    opened_on: date


class Scores(msgspec.Struct):
    """The clinic's measures of one rule set on one cohort (issue 12's definition)."""

    patients: int
    patient_months: float
    pain_events: int
    caught: int
    sensitivity: float
    steps: int
    steps_caught: int
    ramps: int
    ramps_caught: int
    false_pain_alerts: int
    false_pain_alerts_per_patient_month: float
    median_delay_days: float | None
    pain_alerts_in_windows: int
    alerts_per_detected_event: float | None
    drowsiness_days: int
    drowsiness_caught: int
    drowsiness_false: int
    silences: int
    silences_caught: int
    # Information only: every row that is not a pain row, per patient-month.
    other_alerts_per_patient_month: float


# name -> (the target as text, whether the scores meet it)
TARGETS: dict[str, tuple[str, Callable[[Scores], bool]]] = {
    "pain sensitivity": ("≥ 0.90", lambda s: s.sensitivity >= 0.90),
    "false pain alerts / patient-month": ("≤ 0.25", lambda s: s.false_pain_alerts_per_patient_month <= 0.25),
    "median delay (days)": ("≤ 4", lambda s: s.median_delay_days is not None and s.median_delay_days <= 4),
    "alerts per detected event": (
        "≤ 1.2",
        lambda s: s.alerts_per_detected_event is not None and s.alerts_per_detected_event <= 1.2,
    ),
    "severe drowsiness": (
        "100 %, 0 false",
        lambda s: s.drowsiness_caught == s.drowsiness_days and s.drowsiness_false == 0,
    ),
    "silences caught": ("≥ 0.90", lambda s: s.silences_caught >= 0.9 * s.silences),
}
PAIN_TARGETS = tuple(list(TARGETS)[:4])


def verdicts(s: Scores) -> dict[str, bool]:
    """Target name -> met."""
    return {name: check(s) for name, (_, check) in TARGETS.items()}


def _urgent_side_effect(row: Row) -> bool:
    return row.category in ("side_effect", "safety") and row.severity == "urgent"


def score_alerts(
    events: Mapping[str, Sequence[Event]],
    alerts: Iterable[Row],
    diary: Mapping[str, Iterable[date]],
) -> Scores:
    """Score alert rows against the truth: `events` and `diary` (the days with a diary entry)
    by patient id; every patient in `diary` counts, with or without events or alerts."""
    rows: dict[str, list[Row]] = defaultdict(list)
    for a in alerts:
        rows[a.patient_id].append(a)
    one = timedelta(days=1)
    n = dict.fromkeys(
        (
            "events",
            "caught",
            "steps",
            "steps_caught",
            "ramps",
            "ramps_caught",
            "false",
            "in_windows",
            "drowsy",
            "drowsy_caught",
            "drowsy_false",
            "silences",
            "silences_caught",
            "other",
        ),
        0,
    )
    delays: list[int] = []
    patient_days = 0
    for pid, days_iter in diary.items():
        days = sorted(set(days_iter))
        if days:
            patient_days += (days[-1] - days[0]).days + 1
        mine = rows.get(pid, [])
        truth = events.get(pid, ())
        pain = sorted(a.opened_on for a in mine if a.category == "pain")
        n["other"] += len(mine) - len(pain)
        inside: set[int] = set()
        for e in truth:
            if e.kind not in PAIN_KINDS:
                continue
            if e.kind == "step":
                catch_from, catch_to = e.onset, e.onset + STEP_CATCH_DAYS * one
            else:
                catch_from, catch_to = e.start, e.start + RAMP_CATCH_DAYS * one
            window_from, window_to = min(e.onset, catch_from), e.end + AFTER_END_DAYS * one
            inside.update(i for i, d in enumerate(pain) if window_from <= d <= window_to)
            hits = [d for d in pain if catch_from <= d <= catch_to]
            n["events"] += 1
            n[f"{e.kind}s"] += 1
            if hits:
                n["caught"] += 1
                n[f"{e.kind}s_caught"] += 1
                delays.append(max(0, (hits[0] - e.onset).days))
        n["in_windows"] += len(inside)
        n["false"] += len(pain) - len(inside)
        drowsy = [e.start for e in truth if e.kind == "drowsiness"]
        side = [a for a in mine if a.category in ("side_effect", "safety")]
        for d in drowsy:
            n["drowsy"] += 1
            n["drowsy_caught"] += any(d <= a.opened_on <= d + one for a in side)
        n["drowsy_false"] += sum(
            1 for a in side if _urgent_side_effect(a) and not any(d <= a.opened_on <= d + one for d in drowsy)
        )
        adherence = [a.opened_on for a in mine if a.category == "adherence"]
        for e in truth:
            if e.kind == "silence":
                n["silences"] += 1
                last_seen = max((d for d in days if d < e.start), default=None)
                n["silences_caught"] += any(
                    (last_seen is None or d > last_seen)
                    and e.start <= d <= e.start + SILENCE_CATCH_DAYS * one
                    for d in adherence
                )
    months = patient_days / DAYS_PER_MONTH

    def per_month(x: int) -> float:
        return round(x / months, 3) if months else 0.0

    return Scores(
        patients=len(diary),
        patient_months=round(months, 1),
        pain_events=n["events"],
        caught=n["caught"],
        sensitivity=round(n["caught"] / n["events"], 3) if n["events"] else 0.0,
        steps=n["steps"],
        steps_caught=n["steps_caught"],
        ramps=n["ramps"],
        ramps_caught=n["ramps_caught"],
        false_pain_alerts=n["false"],
        false_pain_alerts_per_patient_month=per_month(n["false"]),
        median_delay_days=statistics.median(delays) if delays else None,
        pain_alerts_in_windows=n["in_windows"],
        alerts_per_detected_event=round(n["in_windows"] / n["caught"], 2) if n["caught"] else None,
        drowsiness_days=n["drowsy"],
        drowsiness_caught=n["drowsy_caught"],
        drowsiness_false=n["drowsy_false"],
        silences=n["silences"],
        silences_caught=n["silences_caught"],
        other_alerts_per_patient_month=per_month(n["other"]),
    )


# -- the route the clinic's alerts take: long CSV -> pijnwacht replay -> alerts CSV ------------
_IDS = uuid.UUID("5f1d3a52-3c1e-4a59-9a55-7a1d6b1c0e01")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_long_csv(cohort: Sequence[SimPatient], path: Path) -> int:
    """The cohort's diaries as the contract's long responses CSV (as `pijnwacht export
    --format long` writes it); return the number of answer rows."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow(LONG_HEADER)
        for p in cohort:
            for k, e in enumerate(p.entries):
                rid = str(uuid.uuid5(_IDS, f"{p.id}/{k}"))
                day = e.local_date.isoformat()
                for item, value in e.answers.items():
                    out.writerow((p.id, rid, e.questionnaire, 1, e.authored_at, day, item, _text(value)))
                    n += 1
    return n


def read_alerts_csv(path: Path) -> list[AlertRow]:
    """The rows of an alerts CSV (contract.md), as `pijnwacht replay` wrote them."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [
            AlertRow(
                r["patient_id"],
                r["rule_id"],
                r["category"],
                r["severity"],
                date.fromisoformat(r["opened_on"]),
                r["reason"],
            )
            for r in csv.DictReader(fh)
        ]


def replay_cohort(
    cohort: Sequence[SimPatient],
    folder: Path,
    *,
    detection: Mapping[str, Any] | None = None,
    detector: Detector | None = None,
    library: Any = None,
    long_csv: Path | None = None,
) -> list[AlertRow]:
    """Write the cohort as a long CSV (or reuse `long_csv`), run `pijnwacht replay` over it
    and read back the alerts CSV. `detection`: a pathway [detection] table (threshold
    overrides); `detector`: other rules in place of Pijnwacht's (an anchor)."""
    folder = Path(folder)
    if long_csv is None:
        long_csv = folder / "responses.long.csv"
        write_long_csv(cohort, long_csv)
    out = folder / "alerts.csv"
    pathways = {OVERRIDE_PATHWAY: {"detection": dict(detection)}} if detection else None
    run_replay(
        long_csv, out, OVERRIDE_PATHWAY if detection else None, None, library, pathways, detector=detector
    )
    return read_alerts_csv(out)


def score_cohort(
    cohort: Sequence[SimPatient],
    folder: Path,
    *,
    detection: Mapping[str, Any] | None = None,
    detector: Detector | None = None,
    library: Any = None,
    long_csv: Path | None = None,
) -> Scores:
    """Replay the cohort (see `replay_cohort`) and score the alert rows against its truth."""
    rows = replay_cohort(
        cohort, folder, detection=detection, detector=detector, library=library, long_csv=long_csv
    )
    return score_alerts(
        {p.id: p.events for p in cohort},
        rows,
        {p.id: [e.local_date for e in p.entries if e.questionnaire == "diary"] for p in cohort},
    )
