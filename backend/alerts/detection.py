"""Detection: pure rules that turn a patient's recent responses into findings.

A rule reads the patient's current entries (oldest first), the thresholds of the patient's
pathway (with per-patient overrides) and the patient's local `today`, and says what it sees:
a Finding with a rule id, a category, a severity and a one-line Dutch reason with the numbers.
No SQL, no clock, no I/O: the same function runs on every new response, in the nightly sweep
and in `pijnwacht replay`, so a threshold tuned on history behaves the same live. The pain
rules are in `backend.alerts.pain`, what every rule reads and says in `backend.alerts.findings`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta

# Re-exported (`X as X`): the rules' callers import these from here.
from backend.alerts.findings import DIARY as DIARY
from backend.alerts.findings import NUMBER, Rule, Severity, dutch_date, signed
from backend.alerts.findings import REMINDER_RULES as REMINDER_RULES
from backend.alerts.findings import SEVERITY_RANK as SEVERITY_RANK
from backend.alerts.findings import SIDE_EFFECTS as SIDE_EFFECTS
from backend.alerts.findings import Context as Context
from backend.alerts.findings import Entry as Entry
from backend.alerts.findings import Finding as Finding
from backend.alerts.findings import nl as nl
from backend.alerts.pain import pain_rise
from backend.alerts.thresholds import Thresholds as Thresholds
from backend.alerts.thresholds import overrides_in_force as overrides_in_force
from backend.alerts.thresholds import thresholds_for as thresholds_for
from backend.diary.questionnaires import Library, Questionnaire, band_for, safety_items
from backend.platform import formatting
from backend.platform.words import word

log = logging.getLogger(__name__)


def side_effects(ctx: Context) -> list[Finding]:
    """Severe drowsiness (urgent, same day), other severe side effects, persisting ones."""
    t = ctx.thresholds
    findings: list[Finding] = []
    recent_from = ctx.today - timedelta(days=t.side_effect_days)
    # Newest first, only as far back as a persisting run can matter.
    oldest = ctx.today - timedelta(days=3 * t.side_effect_persist_days + t.side_effect_days)
    days: list[tuple[date, dict]] = []
    for d, e in reversed(ctx.diary.items()):  # the diary is by day, oldest first
        if d < oldest:
            break
        if d <= ctx.today:
            days.append((d, e.answers))
    for item in SIDE_EFFECTS:
        # A number (JSON's int or float; a bool is not a level): type(), as in daily_values.
        levels = [(d, float(v)) for d, answers in days if type(v := answers.get(item)) in NUMBER]
        if not levels:
            continue
        severe = [d for d, v in levels if v >= 3 and d >= recent_from]
        if severe:
            when = dutch_date(severe[0])
            if item == "se_drowsiness":
                reason = f"ernstige sufheid gemeld (3 van 3) op {when}"
                findings.append(
                    Finding(
                        "drowsiness_severe", "side_effect", "urgent", reason, ctx.today, evidence_on=severe[0]
                    )
                )
            else:
                reason = f"ernstige {word('side_effect', item)} gemeld (3 van 3) op {when}"
                findings.append(
                    Finding(f"side_effect_severe.{item}", "side_effect", "high", reason, ctx.today)
                )
        # Persisting: the latest entries, day after day without a gap, at or above the level.
        run: list[float] = []
        prev: date | None = None
        for d, v in levels:
            if prev is None and d < recent_from:
                break
            if v < t.side_effect_persist_level or (prev is not None and (prev - d).days > 1):
                break
            run.append(v)
            prev = d
        if len(run) >= t.side_effect_persist_days:
            severity: Severity = "high" if len(run) >= 2 * t.side_effect_persist_days else "routine"
            low = int(min(run))
            findings.append(
                Finding(
                    f"side_effect_persistent.{item}",
                    "side_effect",
                    severity,
                    f"{word('side_effect', item)} minstens {word('level', str(low))} ({low} van 3) "
                    f"al {len(run)} dagen achter elkaar",
                    ctx.today,
                )
            )
    return findings


def by_questionnaire(entries: Sequence[Entry], today: date) -> dict[str, list[Entry]]:
    """Per questionnaire other than the diary: its entries by day (last per day wins)."""
    by_q: dict[str, dict[date, Entry]] = {}
    for e in entries:
        if e.questionnaire != DIARY and e.local_date <= today:
            by_q.setdefault(e.questionnaire, {})[e.local_date] = e
    return {q: [days[d] for d in sorted(days)] for q, days in by_q.items()}


def _latest_by_questionnaire(ctx: Context) -> dict[str, list[Entry]]:
    out = dict(ctx.questionnaires)
    if ctx.last_diary is not None and ctx.last_diary in ctx.diary:
        out[DIARY] = [ctx.diary[ctx.last_diary]]
    return out


def safety(ctx: Context) -> list[Finding]:
    """A safety answer (e.g. PHQ-9 item 9 > 0) on a current questionnaire: urgent. Which
    answers are a safety signal is the questionnaire's own definition (its `safety` items)."""
    if ctx.library is None:
        return []
    t = ctx.thresholds
    findings: list[Finding] = []
    since = ctx.today - timedelta(days=t.questionnaire_days)
    for qid, entries in _latest_by_questionnaire(ctx).items():
        latest = entries[-1]
        q = ctx.library.get(qid)
        if latest.local_date < since or q is None:
            continue
        for item in safety_items(q, latest.answers):
            findings.append(
                Finding(
                    f"safety.{item}",
                    "safety",
                    "urgent",
                    f"{safety_reason(q, item, latest.answers[item])} op {dutch_date(latest.local_date)}",
                    ctx.today,
                    evidence_on=latest.local_date,
                )
            )
    return findings


def safety_reason(q: Questionnaire, item_id: str, value: float) -> str:
    """A safety answer in the clinic's words, from the questionnaire's own Dutch text:
    'gedachten dat u beter dood zou kunnen zijn …: meerdere dagen (PHQ-9 vraag 9)'."""
    number, item = next((n, i) for n, i in enumerate(q.items, start=1) if i.id == item_id)
    text = item.text.get("nl") or item_id
    answer = next((o.text.get("nl") for o in item.options or () if o.value == value), None)
    name = (q.short_title or {}).get("nl") or q.id
    return f"{text[:1].lower()}{text[1:]}: {answer or f'antwoord {nl(float(value))}'} ({name} vraag {number})"


def questionnaire_scores(ctx: Context) -> list[Finding]:
    """A PROM score into a worse band, or worse by its minimal important change."""
    if ctx.library is None:
        return []
    t = ctx.thresholds
    findings: list[Finding] = []
    since = ctx.today - timedelta(days=t.questionnaire_days)
    for qid, entries in _latest_by_questionnaire(ctx).items():
        q = ctx.library.get(qid)
        if q is None or q.kind == "diary":
            continue
        latest = entries[-1]
        if latest.local_date < since:
            continue
        previous = entries[-2] if len(entries) > 1 else None
        for score in q.scores:
            value = latest.scores.get(score.id)
            if not isinstance(value, int | float):
                continue
            sign = 1 if score.worse == "higher" else -1
            band = band_for(score, value)
            before = previous.scores.get(score.id) if previous is not None else None
            before_band = band_for(score, before) if isinstance(before, int | float) else None
            # "Serious" = the high level, or the worst band a score has if it stops below it
            # (PGIC's worst band, "much worse", is level 2; PHQ-9 >= 15 is level 3 of 4).
            top = max((b.level for b in score.bands), default=0)
            high_level = min(t.questionnaire_high_level, top) if top > 0 else t.questionnaire_high_level
            label = score.label.get("nl") or score.id
            reasons: list[str] = []
            severity: Severity = "routine"
            if band is not None and (
                (before_band is not None and band.level > before_band.level)
                or (before_band is None and band.level >= high_level)
            ):
                reasons.append(f"nu '{band.label.get('nl', '')}'")
                if band.level >= high_level:
                    severity = "high"
            if (
                score.mic is not None
                and isinstance(before, int | float)
                and sign * (value - before) >= score.mic
            ):
                reasons.append(f"{signed(value - before)} (MIC {nl(score.mic)})")
            if not reasons:
                continue
            was = f" (was {nl(before)})" if isinstance(before, int | float) else ""
            findings.append(
                Finding(
                    f"questionnaire.{qid}.{score.id}",
                    "questionnaire",
                    severity,
                    f"{label} {nl(value)}{was}: {', '.join(reasons)}, op {dutch_date(latest.local_date)}",
                    ctx.today,
                )
            )
    return findings


def silence(ctx: Context) -> list[Finding]:
    """A daily-diary patient gone quiet: a reminder first, then an alert for the team.

    Quiet means not heard from: counted from the later of the last diary day and the day a
    diary was last received, so a phone that syncs a backlog (old days, sent today) has not
    been quiet.
    """
    t = ctx.thresholds
    if t.diary_days and ctx.today >= ctx.enrolled_on + timedelta(days=t.diary_days):
        return []
    last = ctx.last_diary
    # Never started: count from the day before enrolment (the first diary day is enrolment day).
    since = last if last is not None else ctx.enrolled_on - timedelta(days=1)
    # What the count is from, said only when there is a finding (Babel's dates cost).
    said: list[tuple[str, date | None]] = [("laatste dagboek", last)]
    if ctx.heard_on is not None and ctx.heard_on > since:
        since = min(ctx.heard_on, ctx.today)
        said.append(("ontvangen", since))
    if ctx.paused_until is not None:
        # A patient on a pause is not silent; after it, silence counts from its last day.
        if ctx.today <= ctx.paused_until:
            return []
        if ctx.paused_until > since:
            since = ctx.paused_until
            said.append(("pauze tot", since))
    silent = (ctx.today - since).days
    if t.silence_alert_days and silent >= t.silence_alert_days:
        reason = f"{formatting.days(silent)} stil ({_since_what(said)})"
        return [Finding("silence", "adherence", "routine", reason, ctx.today)]
    if t.silence_reminder_days and silent >= t.silence_reminder_days:
        return [
            Finding(
                "silence_reminder",
                "adherence",
                "routine",
                f"{silent} dagen geen dagboek ({_since_what(said)})",
                ctx.today,
            )
        ]
    return []


def _since_what(said: list[tuple[str, date | None]]) -> str:
    """'laatste dagboek 2 dec. 2026, ontvangen 4 dec. 2026' ('nog geen dagboek': none yet)."""
    return ", ".join(
        f"{what} {dutch_date(day)}" if day is not None else "nog geen dagboek" for what, day in said
    )


RULES: tuple[Rule, ...] = (pain_rise, side_effects, safety, questionnaire_scores, silence)


def diary_by_day(entries: Sequence[Entry], today: date, since: date) -> dict[date, Entry]:
    """The diary entries from `since` to today by local date; two on one day: the later wins.

    Walks back from the newest entry and stops at `since`, so a year of history costs no more
    than the days the rules look at.
    """
    picked: list[Entry] = []
    for e in reversed(entries):
        if e.local_date < since:
            break
        if e.questionnaire == DIARY and e.local_date <= today:
            picked.append(e)
    out: dict[date, Entry] = {}
    for e in reversed(picked):
        out[e.local_date] = e
    return out


def _last_diary_day(entries: Sequence[Entry], today: date) -> date | None:
    """The latest diary day up to today (entries are oldest first)."""
    for e in reversed(entries):
        if e.questionnaire == DIARY and e.local_date <= today:
            return e.local_date
    return None


def lookback_days(t: Thresholds) -> int:
    """How many days of history the rules read (callers load at least this much)."""
    return (
        max(
            t.baseline_days + max(t.recent_days, t.window_days),
            3 * t.side_effect_persist_days + t.side_effect_days,
        )
        + 1
    )


def evaluate(
    entries: Sequence[Entry],
    thresholds: Thresholds,
    today: date,
    enrolled_on: date,
    library: Library | None = None,
    rules: Sequence[Rule] = RULES,
    *,
    heard_on: date | None = None,
    paused_until: date | None = None,
) -> list[Finding]:
    """Every rule over the patient's entries as of `today`; a failing rule never stops the rest.
    `heard_on`: the local date a diary was last received (see Context.heard_on)."""
    ctx = Context(
        entries=entries,
        diary=diary_by_day(entries, today, today - timedelta(days=lookback_days(thresholds))),
        last_diary=_last_diary_day(entries, today),
        questionnaires=by_questionnaire(entries, today),
        thresholds=thresholds,
        today=today,
        enrolled_on=enrolled_on,
        library=library,
        heard_on=heard_on,
        paused_until=paused_until,
    )
    findings: list[Finding] = []
    for rule in rules:
        try:
            findings.extend(rule(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken rule must not silence the others
            # Only the rule and the error type: the message could echo answers.
            log.error("detection rule %s failed: %s", rule.__name__, type(exc).__name__)
    return findings
