"""The consult summary: one patient's period on one A4 (pain against THE baseline, sleep,
activity and mood, side effects, questionnaire scores against their bands and the change since
intake, the trial summary of a pathway with a success rule). Pure: current responses in,
numbers out; the consult page draws and words them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec

from backend.diary import timeline
from backend.diary.questionnaires import Library
from backend.diary.scoring import band_for
from backend.patients.pathways import success_outcome, trial_days
from backend.platform.formatting import round_half_up

DEFAULT_PERIOD_DAYS = 28
SIDE_EFFECTS = ("se_drowsiness", "se_nausea", "se_constipation", "se_dizziness")
# One A4: the newest few notes; the rest stays in the timeline.
MAX_NOTES = 3
NOTE_CHARS = 110


class ScoreLine(msgspec.Struct):
    """A questionnaire score: latest value and band, the value at intake and the change."""

    questionnaire: str
    title: str
    score: str
    label: str
    latest: float
    latest_date: str
    band: str | None
    band_level: int
    intake: float | None
    intake_date: str | None
    change: float | None
    # "better" / "worse" when the change reaches the minimal important change, else None.
    verdict: str | None


@dataclass
class SideEffect:
    item: str
    days_moderate: int
    days_severe: int
    worst: int | None
    days: int


def _mean(values: list[float]) -> float | None:
    return round_half_up(sum(values) / len(values), 1) if values else None


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1].rstrip() + "…"


def summarise(
    rows: Iterable[tuple],
    library: Library,
    thresholds: Any,
    pathway: Any,
    anchor_date: str,
    start: date,
    end: date,
    enrolled_on: date | None = None,
) -> dict[str, Any]:
    """Everything the summary shows, from the patient's current responses up to `end`. The
    diary days are counted from enrolment (or the first diary day, if earlier), not before."""
    rows = list(rows)
    t = timeline.build([r for r in rows if r[1] == timeline.DIARY], start, end, library)
    proms = [
        (d, qid, version, msgspec.json.decode(scores))
        for d, qid, version, _answers, scores in rows
        if qid != timeline.DIARY and scores and scores != "{}"
    ]
    baseline = t.baseline(thresholds, end)
    first_diary = min((str(r[0])[:10] for r in rows if r[1] == timeline.DIARY), default=None)
    known = [d for d in (enrolled_on, date.fromisoformat(first_diary) if first_diary else None) if d]
    counted_from = max(start, min(known)) if known else start
    period = [counted_from + timedelta(days=i) for i in range((end - counted_from).days + 1)]
    stats = {
        "diary_days": sum(1 for d in period if d in t.diary),
        "period_days": len(period),
        # Set when the period starts before the patient was followed: counted from then.
        "counted_from": counted_from if counted_from > start else None,
        **{item: _mean(list(t.series(item).values())) for item in ("pain_avg", "pain_worst", "sleep_hours")},
        **{item: _mean(list(t.series(item).values())) for item in ("sleep_quality", "activity", "mood")},
    }
    rescue = list(t.series("rescue_doses").values())
    stats["rescue_per_day"] = _mean(rescue)
    stats["rescue_total"] = int(sum(rescue)) if rescue else None
    side_effects = []
    for item in SIDE_EFFECTS:
        levels = list(t.series(item).values())
        side_effects.append(
            SideEffect(
                item=item,
                days_moderate=sum(1 for v in levels if v >= 2),
                days_severe=sum(1 for v in levels if v >= 3),
                worst=int(max(levels)) if levels else None,
                days=len(levels),
            )
        )
    pain_change = (
        round_half_up(stats["pain_avg"] - baseline.value, 1)
        if stats["pain_avg"] is not None and baseline is not None
        else None
    )
    notes = sorted(t.notes())
    rule = getattr(pathway, "success", None)
    by_day = (
        timeline.by_anchor(t.series(rule.item, shown=False), date.fromisoformat(anchor_date)) if rule else {}
    )
    return {
        "timeline": t,
        "baseline": baseline,
        "pain_change": pain_change,
        "stats": stats,
        "side_effects": side_effects,
        "scores": score_lines(library, proms, end),
        "notes": [(d, short(text)) for d, text in notes[-MAX_NOTES:]],
        "more_notes": max(0, len(notes) - MAX_NOTES),
        "trial_rule": rule,
        "trial": trial_days(rule, by_day) if rule else None,
        # The rule's own verdict: mean pain after against the baseline week.
        "trial_outcome": success_outcome(rule, by_day) if rule else None,
    }


def score_lines(
    library: Library, proms: Sequence[tuple[str, str, int, dict[str, float]]], end: date
) -> list[ScoreLine]:
    """Per questionnaire score: the latest value (to `end`) in its band, against the first."""
    first: dict[tuple[str, str], tuple[str, float]] = {}
    latest: dict[tuple[str, str], tuple[str, int, float]] = {}
    for day, qid, version, scores in sorted(proms):
        if day > end.isoformat():
            continue
        for sid, value in scores.items():
            first.setdefault((qid, sid), (day, value))
            latest[(qid, sid)] = (day, version, value)
    out = []
    for (qid, sid), (day, version, value) in sorted(latest.items()):
        q = library.get(qid, version) or library.get(qid)
        score = next((s for s in q.scores if s.id == sid), None) if q else None
        band = band_for(score, value) if score else None
        d0, v0 = first[(qid, sid)]
        change = round_half_up(value - v0, 1) if d0 != day else None
        verdict = None
        if change is not None and score is not None and score.mic and abs(change) >= score.mic:
            worse = change > 0 if score.worse == "higher" else change < 0
            verdict = "worse" if worse else "better"
        out.append(
            ScoreLine(
                questionnaire=qid,
                title=(q.short_title or q.title).get("nl", qid) if q else qid,
                score=sid,
                label=score.label.get("nl", sid) if score else sid,
                latest=value,
                latest_date=day,
                band=band.label.get("nl") if band else None,
                band_level=band.level if band else 0,
                intake=v0 if d0 != day else None,
                intake_date=d0 if d0 != day else None,
                change=change,
                verdict=verdict,
            )
        )
    return out
