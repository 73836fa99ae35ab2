"""Detection: pure rules that turn a patient's recent responses into findings.

A rule reads the patient's current entries (oldest first), the thresholds of the patient's
pathway (with per-patient overrides) and the patient's local `today`, and says what it sees:
a Finding with a rule id, a category, a severity and a one-line Dutch reason with the numbers.
No SQL, no clock, no I/O: the same function runs on every new response, in the nightly sweep
and in `pijnwacht replay`, so a threshold tuned on history behaves the same live.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Literal

import msgspec

# Re-exported: the rules' callers import the thresholds from here.
from backend.alerts.thresholds import Thresholds as Thresholds
from backend.alerts.thresholds import overrides_in_force as overrides_in_force
from backend.alerts.thresholds import thresholds_for as thresholds_for
from backend.diary.baseline import Baseline, Noise, important_change, pain_baseline, trimmed_mean
from backend.diary.questionnaires import Library, Questionnaire, band_for, safety_items
from backend.platform import formatting
from backend.platform.words import word

log = logging.getLogger(__name__)

Category = Literal["pain", "side_effect", "safety", "questionnaire", "adherence"]
Severity = Literal["urgent", "high", "routine"]
SEVERITY_RANK = {"routine": 0, "high": 1, "urgent": 2}

DIARY = "diary"
SIDE_EFFECTS = ("se_drowsiness", "se_nausea", "se_constipation", "se_dizziness")
# Findings that are not alerts for the team: the scheduler turns them into a patient reminder.
REMINDER_RULES = frozenset({"silence_reminder"})


class Entry(msgspec.Struct, frozen=True):
    """One current response of the patient (edits already resolved), as the rules see it."""

    questionnaire: str
    local_date: date
    answers: dict[str, Any]
    scores: dict[str, float] = {}
    authored_at: str = ""


class Finding(msgspec.Struct):
    """What a rule saw: which rule, how serious, why (one line with the numbers), on which day."""

    rule_id: str
    category: Category
    severity: Severity
    reason: str
    local_date: date
    # A measured level (e.g. recent pain) and the rise above the level a clinician last saw
    # that is news again (alerts.step resurfaces the alert); None for rules without a level.
    level: float | None = None
    material: float | None = None
    # False: evidence that the condition lasts, too weak to open an alert but enough to keep an
    # open one from closing (hysteresis: a rise that dips for a day is one alert, not three).
    opens: bool = True
    # The day of the answer behind an urgent finding (a report): a later report is a new one.
    evidence_on: date | None = None


# -- formatting: 6,4 (decimal comma, whole numbers without decimals), "2 dec. 2026" (Babel) ----
nl = formatting.number
dutch_date = formatting.day


def signed(x: float, decimals: int = 1) -> str:
    return ("+" if x >= 0 else "−") + nl(abs(x), decimals)


# -- the rules ----------------------------------------------------------------------------------
class Context(msgspec.Struct):
    """What every rule needs, computed once per evaluation."""

    entries: Sequence[Entry]
    diary: dict[date, Entry]
    last_diary: date | None
    questionnaires: dict[str, list[Entry]]
    thresholds: Thresholds
    today: date
    enrolled_on: date
    library: Library | None
    # The patient's local date when a diary was last received (live: the server's receipt
    # time; replay: when the latest entry was written). None: its diary date stands in.
    heard_on: date | None = None
    # The last day of the patient's own pause of reminders (a holiday), if any.
    paused_until: date | None = None


Rule = Callable[[Context], list[Finding]]
_NUMBER = (int, float)
NRS_TOP = 10.0


def daily_values(diary: Mapping[date, Entry], item: str) -> dict[date, float]:
    # type(), not isinstance: a bool is not a pain score (and this runs 57 times a rule).
    return {
        day: float(value)
        for day, entry in diary.items()
        if type(value := entry.answers.get(item)) in _NUMBER and math.isfinite(value)
    }


def pain_rise(ctx: Context) -> list[Finding]:
    """Sustained pain rise: the recent days well above the patient's own baseline.

    Baseline = the trimmed mean of the daily pain over `baseline_days` ending `recent_days`
    ago (the rise itself does not drag it up; flares and odd days are cut off); in the first
    weeks a warm-up baseline, after an episode the settled level since (baseline.py), both
    judged more strictly (`warmup_noise_z`, the noise SD at an upper bound). Each window of
    the last `min_window_days` to `window_days` days is judged; a rise counts when in one of
    them (1) the mean is a clinically important rise (2 points or 30 % of the baseline,
    whichever is smaller, but at least `min_change_points`), (2) at least `persistence_days`
    days (and `persistence_share` of the days) are each raised, so a flare of a day or two
    does not alert, and (3) the rise is beyond what this patient's own day-to-day variability
    explains: `noise_z` standard errors, from the SD of the baseline days (their flares and heavy
    tails included) and their carry-over from day to day (AR(1)). Short windows catch big rises
    fast, long ones smaller rises. The finding carries the pain level now (mean of the last
    entries) so that the lifecycle can tell a materially worse rise; when the full rule does
    not hold but the window is still `hold_share` of the important change up, a finding that
    only keeps an open alert open.
    """
    t = ctx.thresholds
    pain = sorted(daily_values(ctx.diary, "pain_avg").items())
    if not pain:
        return []
    today = ctx.today
    recent_start = today - timedelta(days=t.window_days - 1)
    recent = [(d, v) for d, v in pain if recent_start <= d <= today]
    kept = _baseline(t, today, tuple(pain[: bisect.bisect_left(pain, (recent_start,))]))
    found = kept.baseline
    if found is None or len(recent) < 2:
        return []
    base, baseline = found.values, found.value
    important = important_change(t, baseline)
    raised = t.raised_day_share * important
    limit = t.warmup_noise_z if found.kind != "full" else t.noise_z
    best: tuple[float, int, float, int] | None = None  # z, days, mean, elevated
    for w in range(t.min_window_days, t.window_days + 1):
        start = today - timedelta(days=w - 1)
        values = [v for d, v in recent if d >= start]
        n = len(values)
        if n < t.min_window_days:
            continue
        mean = sum(values) / n
        rise = mean - baseline
        if rise < important:
            continue
        elevated = sum(1 for v in values if v - baseline >= raised)
        if elevated < t.persistence_days or elevated < t.persistence_share * n:
            continue
        z = rise / kept.noise_model().standard_error(n, len(base))
        if z >= limit and (best is None or z > best[0]):
            best = (z, n, mean, elevated)
    if best is None:
        return _pain_holds(t, recent, baseline, important, today, kept)
    _, n, mean, elevated = best
    severity: Severity = "high" if mean - baseline >= t.high_rise_points else "routine"
    reason = f"{_pain_reason(mean, n, baseline)}; {elevated} van {n} dagen ≥ {nl(baseline + raised)}"
    level, material = _pain_level(t, recent, kept.noise_model())
    return [Finding("pain_rise", "pain", severity, reason, today, level, material)]


def rescue_rise(ctx: Context) -> list[Finding]:
    """Escalating rescue medication (a pathway sets `rescue_rise_doses`; the opioid pathway
    does): the rescue doses per day over the pain rule's recent window against their trimmed
    mean on the pain baseline's own days, up by `rescue_rise_doses` and `rescue_rise_factor`
    times it, on `persistence_share` of the window's days each (a bad weekend is no
    escalation), `noise_z` standard errors up by the patient's own variation. The question
    left empty counts as none (the app shows no 0); its alert is the pain one (one_pain_alert)."""
    if not (t := ctx.thresholds).rescue_rise_doses:
        return []
    today = ctx.today
    start = today - timedelta(days=t.window_days - 1)
    pain = sorted(daily_values(ctx.diary, "pain_avg").items())
    found = _baseline(t, today, tuple(pain[: bisect.bisect_left(pain, (start,))])).baseline
    doses = {d: 0.0 for d in ctx.diary} | daily_values(ctx.diary, "rescue_doses")
    before = [(d, doses[d]) for d, _ in found.days if d in doses] if found else []
    recent = [v for d, v in doses.items() if start <= d <= today]
    if len(before) < max(3, t.min_window_days) or len(recent) < t.min_window_days:
        return []
    usual, up = trimmed_mean([v for _, v in before], t.baseline_trim), t.rescue_rise_doses
    mean = sum(recent) / len(recent)
    raised = sum(1 for v in recent if v >= usual + up)
    if mean < usual + up or mean < t.rescue_rise_factor * usual or raised < t.persistence_share * len(recent):
        return []
    noise = Noise.of(before, drop_highest=math.ceil(len(before) * t.baseline_trim))  # as trimmed
    if mean - usual < t.noise_z * noise.standard_error(len(recent), len(before)):
        return []
    reason = (
        f"noodmedicatie gemiddeld {nl(mean)} keer per dag over {len(recent)} dagen tegenover "
        f"baseline {nl(usual)}; {raised} van {len(recent)} dagen ≥ {nl(usual + up)}"
    )
    severity: Severity = "high" if mean - usual >= 3 * up else "routine"
    return [Finding("rescue_rise", "pain", severity, reason, today)]


def one_pain_alert(findings: list[Finding]) -> list[Finding]:
    """More pain and more rescue medication are one deterioration, so one alert: the rescue
    finding is the pain alert's (`pain_rise`), whichever comes first or lasts longer; with the
    pain rule's finding it is one finding, the stronger first in its reason."""
    rescue = next((f for f in findings if f.rule_id == "rescue_rise"), None)
    if rescue is None:
        return findings
    pain = next((f for f in findings if f.rule_id == "pain_rise"), None)
    rest = [f for f in findings if f is not rescue and f is not pain]
    if pain is None:
        return [msgspec.structs.replace(rescue, rule_id="pain_rise"), *rest]
    first, then = (pain, rescue) if pain.opens else (rescue, pain)
    severity = max(pain.severity, rescue.severity, key=SEVERITY_RANK.__getitem__)
    return [
        msgspec.structs.replace(pain, reason=f"{first.reason}; {then.reason}", severity=severity, opens=True),
        *rest,
    ]


class _KeptBaseline:
    __slots__ = ("baseline", "noise")

    def __init__(self, baseline: Baseline | None):
        self.baseline = baseline
        self.noise: Noise | None = None

    def noise_model(self) -> Noise:
        """The patient's noise, from the baseline days (computed once, when first needed)."""
        if self.noise is None:
            found = self.baseline
            assert found is not None
            if found.kind == "full":
                self.noise = Noise.of(found.days)
            else:
                # A short baseline (warm-up, re-armed): one flare among ten days weighs too
                # much, so its highest day is left out, and the SD taken at its upper bound.
                self.noise = Noise.of(found.days, drop_highest=1).widened(len(found.days))
        return self.noise


@functools.lru_cache(maxsize=4096)
def _baseline(t: Thresholds, today: date, before: tuple[tuple[date, float], ...]) -> _KeptBaseline:
    """The baseline (and its noise, once needed) from the pain days before the recent window:
    all that `pain_baseline` reads (its periods end by `today - window_days + 1`). Kept by
    value: a patient who edits today's diary, or another with the same days, is not
    computed again."""
    return _KeptBaseline(pain_baseline(t, before, today))


def _pain_level(t: Thresholds, recent: list[tuple[date, float]], noise: Noise) -> tuple[float, float]:
    """The pain level now (mean of the last `min_window_days` entries), and the rise above a
    level seen before that is news again: a clinically important change (2 points, or 30 %
    of the level if more) that also stands out from the patient's own day-to-day variability
    (`noise_z` standard errors of the difference of two such levels). A level of four noisy
    days swings by more than 2 points in a patient whose days swing by 2; a resurfacing for
    that is not news, and buries the news that is. No more than the scale leaves: at 10 only
    the clinical change counts (a noisy patient seen at 7, now at 10 day after day, is news)."""
    last = [v for _, v in recent[-t.min_window_days :]]
    level = sum(last) / len(last)
    clinical = max(t.change_points, t.change_percent / 100 * level)
    beyond_noise = min(t.noise_z * noise.level_difference(len(last)), NRS_TOP - level + clinical)
    return level, max(clinical, beyond_noise)


def _pain_holds(
    t: Thresholds,
    recent: list[tuple[date, float]],
    baseline: float,
    important: float,
    today: date,
    kept: _KeptBaseline,
) -> list[Finding]:
    """The recent days still raised by `hold_share` of the important change: an open pain
    alert stays open (the rise goes on), though this would not open one."""
    values = [v for _, v in recent]
    # Two entries suffice: a patient who skips bad days (more often than good ones) is still
    # in the rise.
    if len(values) < 2 or not t.hold_share:
        return []
    mean = sum(values) / len(values)
    if mean - baseline < t.hold_share * important:
        return []
    level, material = _pain_level(t, recent, kept.noise_model())
    reason = _pain_reason(mean, len(values), baseline)
    return [Finding("pain_rise", "pain", "routine", reason, today, level, material, opens=False)]


def _pain_reason(mean: float, n: int, baseline: float) -> str:
    rise = mean - baseline
    pct = f"; {signed(100 * rise / baseline, 0)} %" if baseline > 0 else ""
    return (
        f"gemiddelde pijn {nl(mean)} over {n} dagen tegenover baseline {nl(baseline)} ({signed(rise)}{pct})"
    )


def side_effects(ctx: Context) -> list[Finding]:
    """Severe drowsiness (urgent, same day), other severe side effects, persisting ones."""
    t = ctx.thresholds
    findings: list[Finding] = []
    recent_from = ctx.today - timedelta(days=t.side_effect_days)
    # Newest first, only as far back as a persisting run can matter.
    oldest = ctx.today - timedelta(days=3 * t.side_effect_persist_days + t.side_effect_days)
    days = sorted(((d, e.answers) for d, e in ctx.diary.items() if oldest <= d <= ctx.today), reverse=True)
    for item in SIDE_EFFECTS:
        # A number (JSON's int or float; a bool is not a level): type(), as in daily_values.
        levels = [(d, float(v)) for d, answers in days if type(v := answers.get(item)) in _NUMBER]
        if not levels:
            continue
        name = word("side_effect", item)
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
                reason = f"ernstige {name} gemeld (3 van 3) op {when}"
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
                    f"{name} minstens {word('level', str(low))} ({low} van 3) "
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
    what = f"laatste dagboek {dutch_date(last)}" if last is not None else "nog geen dagboek"
    if ctx.heard_on is not None and ctx.heard_on > since:
        since = min(ctx.heard_on, ctx.today)
        what += f", ontvangen {dutch_date(since)}"
    if ctx.paused_until is not None:
        # A patient on a pause is not silent; after it, silence counts from its last day.
        if ctx.today <= ctx.paused_until:
            return []
        if ctx.paused_until > since:
            since = ctx.paused_until
            what += f", pauze tot {dutch_date(since)}"
    silent = (ctx.today - since).days
    if t.silence_alert_days and silent >= t.silence_alert_days:
        reason = f"{formatting.days(silent)} stil ({what})"
        return [Finding("silence", "adherence", "routine", reason, ctx.today)]
    if t.silence_reminder_days and silent >= t.silence_reminder_days:
        return [
            Finding(
                "silence_reminder",
                "adherence",
                "routine",
                f"{silent} dagen geen dagboek ({what})",
                ctx.today,
            )
        ]
    return []


RULES: tuple[Rule, ...] = (pain_rise, rescue_rise, side_effects, safety, questionnaire_scores, silence)

# The recent pain level held against a clinician's expected level: the mean pain of the last
# few diary days of the past week (a nurse's "up to 6 is expected" reads the last days).
EXPECTED_LEVEL_DAYS = 3


def within_expected_level(findings: list[Finding], ctx: Context) -> list[Finding]:
    """Drop the pain rule's findings while the recent pain is at or below the expected level
    (more rescue medication is still news: the level expected is of pain)."""
    expected = ctx.thresholds.expected_pain_level
    if expected <= 0 or not any(f.rule_id == "pain_rise" for f in findings):
        return findings
    week = ctx.today - timedelta(days=6)
    pain = [v for d, v in sorted(daily_values(ctx.diary, "pain_avg").items()) if d >= week]
    recent = pain[-EXPECTED_LEVEL_DAYS:]
    if not recent or sum(recent) / len(recent) > expected:
        return findings
    return [f for f in findings if f.rule_id != "pain_rise"]


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
    return one_pain_alert(within_expected_level(findings, ctx))
