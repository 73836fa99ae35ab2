"""A patient's diary over a span of days, as the clinic reads it: the values of each item by
day, the patient's own notes, the questionnaire scores with their bands, and the pain baseline
(THE one, backend.diary.baseline) judged on a given day. Pure: rows in, plain values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import msgspec

from backend.diary.baseline import Baseline, pain_baseline
from backend.diary.scoring import band_for

DIARY = "diary"


def baseline_reach(t: Any) -> int:
    """How many days before a judged day the baseline looks back (rows to read)."""
    return t.baseline_days + max(t.recent_days, t.window_days)


def spans_to_read(since: date, last: date, also: tuple[date, date] | None) -> list[tuple[date, date]]:
    """The day spans to read, oldest first and not overlapping: `since`..`last` (the window
    shown and the baseline's reach) and the part of `also` (a trial's days around its anchor)
    before it, none after `last`. Bounded by both spans, whatever the length of the history."""
    spans = []
    if also is not None:
        lo, hi = also[0], min(also[1], last, since - timedelta(days=1))
        if lo <= hi:
            spans.append((lo, hi))
    return [*spans, (since, last)]


@dataclass
class Score:
    day: date
    questionnaire: str  # its short title ("PHQ-9")
    label: str  # the score's label ("totaalscore")
    value: float
    band: str
    level: int


@dataclass
class Timeline:
    first: date
    last: date
    # The diary's answers by day (every day read, also before `first`, for the baseline).
    diary: dict[date, dict[str, Any]] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)

    def series(self, item: str, *, shown: bool = True) -> dict[date, float]:
        """The numeric answers to `item` by day (within first..last when `shown`)."""
        out = {}
        for d, answers in self.diary.items():
            v = answers.get(item)
            if (
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and (not shown or self.first <= d <= self.last)
            ):
                out[d] = float(v)
        return out

    def notes(self) -> list[tuple[date, str]]:
        """The patient's own notes in the span, newest first."""
        return sorted(
            (
                (d, a["note"].strip())
                for d, a in self.diary.items()
                if self.first <= d <= self.last and isinstance(a.get("note"), str) and a["note"].strip()
            ),
            reverse=True,
        )

    def baseline(self, thresholds: Any, on: date) -> Baseline | None:
        """The pain baseline the pain rule judges day `on` against."""
        return pain_baseline(thresholds, sorted(self.series("pain_avg", shown=False).items()), on)


def build(rows: Iterable[tuple], first: date, last: date, library: Any) -> Timeline:
    """From current responses (local_date, questionnaire_id, version, answers, scores JSON)."""
    decode = msgspec.json.decode
    t = Timeline(first, last)
    for day_text, qid, version, answers, scores in rows:
        d = date.fromisoformat(day_text)
        if qid == DIARY:
            t.diary[d] = decode(answers)
            continue
        if not first <= d <= last or not scores:
            continue
        q = library.get(qid, version) or library.get(qid)
        for sid, value in decode(scores).items():
            score = next((s for s in (q.scores if q else []) if s.id == sid), None)
            band = band_for(score, value) if score else None
            t.scores.append(
                Score(
                    day=d,
                    questionnaire=(q.short_title or q.title).get("nl", qid) if q else qid,
                    label=score.label.get("nl", "") if score else "",
                    value=value,
                    band=band.label.get("nl", "") if band else "",
                    level=band.level if band else 0,
                )
            )
    t.scores.sort(key=lambda s: s.day, reverse=True)
    return t


def span(last: date, days: int) -> tuple[date, date]:
    return last - timedelta(days=days - 1), last


def by_anchor(values: Mapping[date, float], anchor: date) -> dict[int, float]:
    """Values keyed by day from the anchor date (day 0)."""
    return {(d - anchor).days: v for d, v in values.items()}
