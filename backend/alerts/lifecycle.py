"""Alerts: the lifecycle of findings as alerts (pure `step`) and its SQLite persistence.

One open alert per patient and rule: a finding for a rule without an open alert opens one;
new evidence for an open alert updates it (never a second) - unless the evidence is news:
materially worse than the level the alert stood at when it opened or was last seen (the
finding's `material` rise above that level, or a higher severity), or a new episode of an
urgent alert nobody has seen. Then the alert resurfaces: a new alert, open and unseen, whose
reason says what changed, and the old one points to it. An alert whose condition has been
clear for the quiet period closes - except an urgent one nobody has seen, which waits for a
clinician. `step` is the only place this is decided, for the live system (new response,
nightly sweep) and for `pijnwacht replay` alike.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from backend.alerts import store as alerts_store
from backend.alerts.detection import (
    REMINDER_RULES,
    SEVERITY_RANK,
    Finding,
    Thresholds,
    evaluate,
    lookback_days,
    nl,
    overrides_in_force,
    thresholds_for,
)
from backend.alerts.entries import load_entries as load_entries  # re-exported: what detection reads
from backend.alerts.entries import read_patient
from backend.diary import store as diary_store
from backend.patients import store as patients_store
from backend.platform import formatting
from backend.platform.settings import Settings
from backend.platform.storage import Database, iso, utcnow
from backend.platform.words import word

log = logging.getLogger(__name__)

OUTCOMES = ("called_patient", "changed_medication", "appointment", "referred", "no_action")
# Statuses in which an alert still counts as "the open one" for its rule.
LIVE_STATUSES = ("open", "acknowledged")
# Alerts that close as soon as their condition clears, without the quiet period: a silent
# patient heard from again needs nothing more from the team.
CLOSE_WHEN_CLEAR = frozenset({"silence"})


class OpenAlert(msgspec.Struct):
    """An alert not yet closed or resolved, as the lifecycle needs it."""

    rule_id: str
    category: str
    severity: str
    opened_on: date
    last_evidence_on: date
    reason: str
    status: str = "open"
    id: int | None = None
    # The finding's level now, and the level (and its day) when it opened or a clinician last
    # saw it (acknowledged or resolved): news is measured against what the team knows.
    level: float | None = None
    seen_level: float | None = None
    seen_on: date | None = None
    # What made it resurface ("sinds 3 dec. gestegen van 5,1 naar 7,4"): kept in the reason
    # while new evidence updates the numbers.
    news: str = ""


class Update(msgspec.Struct):
    alert: OpenAlert
    finding: Finding
    news: str = ""

    @property
    def reason(self) -> str:
        """The reason as stored: the rule's line, and what changed if it resurfaced."""
        return with_news(self.finding.reason, self.news or self.alert.news)


def with_news(reason: str, news: str) -> str:
    return f"{reason}; {news}" if news else reason


class Changes(msgspec.Struct):
    """What one evaluation changes: alerts opened, updated with new evidence, resurfaced as
    new (the finding's reason says what changed), closed."""

    opened: list[Finding] = []
    updated: list[Update] = []
    resurfaced: list[Update] = []
    closed: list[OpenAlert] = []
    # Findings that are not for the team (e.g. silence_reminder): the scheduler reminds.
    reminders: list[Finding] = []
    # Filled in when stored: the ids of the alerts opened.
    opened_ids: list[int] = []


def step(
    open_alerts: Mapping[str, OpenAlert],
    findings: Sequence[Finding],
    today: date,
    quiet_days: int,
    hold_days: int = 0,
) -> Changes:
    """The lifecycle: which alerts open, update and close given today's findings.

    With `hold_days`, evidence too weak to open an alert (`Finding.opens` false) keeps an open
    one open only that many days after the last evidence that would open one: a noise-opened
    alert does not sit open for weeks on weak evidence and swallow the real rise that follows
    (that rise opens a new alert). An urgent alert nobody has seen still never closes."""
    by_rule: dict[str, Finding] = {}
    for f in findings:
        have = by_rule.get(f.rule_id)
        if have is None or (f.opens, SEVERITY_RANK[f.severity]) > (have.opens, SEVERITY_RANK[have.severity]):
            by_rule[f.rule_id] = f
    changes = Changes(opened=[], updated=[], resurfaced=[], closed=[], reminders=[], opened_ids=[])
    for rule_id, f in by_rule.items():
        if rule_id in REMINDER_RULES:
            changes.reminders.append(f)
        elif rule_id in open_alerts:
            alert = open_alerts[rule_id]
            news = what_changed(alert, f) if f.opens else ""
            if not f.opens and held_too_long(alert, today, hold_days):
                changes.closed.append(alert)
            elif (
                not news and (f.opens or not hold_days) and cleared(alert, today, max(quiet_days, hold_days))
            ):
                # Clear for the quiet period without an evaluation to close it (no response,
                # no sweep): a new episode.
                changes.closed.append(alert)
                if f.opens:
                    changes.opened.append(f)
            elif news:
                changes.resurfaced.append(Update(alert, f, news))
            else:
                changes.updated.append(Update(alert, f))
        elif f.opens:
            changes.opened.append(f)
    for rule_id, alert in open_alerts.items():
        clear = rule_id not in by_rule and (
            rule_id in CLOSE_WHEN_CLEAR or (today - alert.last_evidence_on).days >= quiet_days
        )
        if clear and not held_until_seen(alert):
            changes.closed.append(alert)
    return changes


def cleared(alert: OpenAlert, today: date, quiet_days: int) -> bool:
    """Evidence again today after the quiet period without any (days between, not counting
    today): a new episode rather than more of the same."""
    return (today - alert.last_evidence_on).days - 1 >= quiet_days


def held_too_long(alert: OpenAlert, today: date, hold_days: int) -> bool:
    """Weak evidence has kept the alert open `hold_days` past its last full evidence."""
    if not hold_days or held_until_seen(alert):
        return False
    return (today - alert.last_evidence_on).days >= hold_days


def refreshes(f: Finding, hold_days: int) -> bool:
    """Whether `f` moves an open alert's day of last evidence: weak evidence does not when
    it may hold the alert only `hold_days`."""
    return f.opens or not hold_days


def held_until_seen(alert: OpenAlert) -> bool:
    """An urgent alert no clinician has acknowledged stays in the inbox, however long clear."""
    return alert.severity == "urgent" and alert.status == "open"


def what_changed(alert: OpenAlert, f: Finding) -> str:
    """Why `f` is news against the alert it would update (one Dutch phrase), or ''."""
    since = short_dutch_date(alert.seen_on or alert.opened_on)
    # A higher severity of an alert nobody has seen yet is not hidden: it is raised in place
    # and sorts higher in the inbox. Once seen, it is news.
    seen = alert.status != "open"
    if (
        f.level is not None
        and f.material is not None
        and alert.seen_level is not None
        and f.level >= alert.seen_level + f.material
    ):
        return f"sinds {since} gestegen van {nl(alert.seen_level)} naar {nl(f.level)}"
    if seen and SEVERITY_RANK[f.severity] > SEVERITY_RANK.get(alert.severity, 0):
        return f"sinds {since} van {word('severity', alert.severity)} naar {word('severity', f.severity)}"
    if f.severity == "urgent" and f.evidence_on is not None and f.evidence_on > alert.last_evidence_on:
        # A new urgent report (severe drowsiness again, another day) never hides in the old one.
        unseen = (
            f"; de melding van {short_dutch_date(alert.opened_on)} is nog niet gezien" if not seen else ""
        )
        return f"opnieuw gemeld op {short_dutch_date(f.evidence_on)}{unseen}"
    return ""


def short_dutch_date(d: date) -> str:
    """'3 dec.': the day as a nurse says it in a sentence (the pages' own format, no year)."""
    return formatting.day(d, year=False)


def apply_in_memory(
    open_alerts: dict[str, OpenAlert], changes: Changes, today: date, hold_days: int = 0
) -> list[OpenAlert]:
    """Apply `changes` to an in-memory set of open alerts (replay, simulation); return new ones."""
    new: list[OpenAlert] = []
    for alert in changes.closed:
        open_alerts.pop(alert.rule_id, None)
    for f, news in [*((f, "") for f in changes.opened), *((u.finding, u.news) for u in changes.resurfaced)]:
        alert = new_alert(f, today, news)
        open_alerts[f.rule_id] = alert
        new.append(alert)
    for u in changes.updated:
        if refreshes(u.finding, hold_days):
            u.alert.last_evidence_on = today
        u.alert.reason = u.reason
        u.alert.level = u.finding.level
        if SEVERITY_RANK[u.finding.severity] > SEVERITY_RANK[u.alert.severity]:
            u.alert.severity = u.finding.severity
    return new


def new_alert(f: Finding, today: date, news: str = "") -> OpenAlert:
    return OpenAlert(
        f.rule_id,
        f.category,
        f.severity,
        today,
        today,
        with_news(f.reason, news),
        level=f.level,
        seen_level=f.level,
        seen_on=today,
        news=news,
    )


# -- persistence --------------------------------------------------------------------------------
def pathway_detection(pathways: Mapping[str, Any] | None, pathway_id: str) -> Mapping[str, Any]:
    """The `[detection]` table of a pathway (an object with `.detection`, or a plain dict)."""
    p = (pathways or {}).get(pathway_id)
    if p is None:
        return {}
    if isinstance(p, Mapping):
        return p.get("detection", {}) or {}
    return getattr(p, "detection", None) or {}


def patient_thresholds(
    pathways: Mapping[str, Any] | None, pathway_id: str, overrides_json: str | None, today: date
) -> Thresholds:
    """The pathway's thresholds with the patient's overrides in force on `today`."""
    return _patient_thresholds(tuple(pathway_detection(pathways, pathway_id).items()), overrides_json, today)


@functools.lru_cache(maxsize=4096)
def _patient_thresholds(
    pathway: tuple[tuple[str, Any], ...], overrides_json: str | None, today: date
) -> Thresholds:
    # Once per pathway table, stored overrides and day (every response of the day after the first).
    in_force = overrides_in_force(json.loads(overrides_json or "{}"), today)
    return _thresholds(pathway, json.dumps(in_force, sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _thresholds(pathway: tuple[tuple[str, Any], ...], overrides_json: str) -> Thresholds:
    # Checked once per distinct pathway table and patient overrides, not on every response
    # (Thresholds is frozen, so one instance serves every patient who shares them).
    return thresholds_for(dict(pathway), json.loads(overrides_json) or {})


def load_open_alerts(conn: sqlite3.Connection, patient_id: str) -> dict[str, OpenAlert]:
    """The patient's alerts whose episode is not over (open, acknowledged, or resolved by a
    clinician while the condition still holds), one per rule (the newest)."""
    out: dict[str, OpenAlert] = {}
    for r in alerts_store.episodes(conn, patient_id):
        out[r["rule_id"]] = OpenAlert(
            rule_id=r["rule_id"],
            category=r["category"],
            severity=r["severity"],
            opened_on=date.fromisoformat(r["opened_on"]),
            last_evidence_on=date.fromisoformat(r["last_evidence_on"]),
            reason=r["reason"],
            status=r["status"],
            id=r["id"],
            level=r["level"],
            seen_level=r["seen_level"],
            seen_on=date.fromisoformat(r["seen_on"]) if r["seen_on"] else None,
            news=r["news"] or "",
        )
    return out


def write_changes(
    conn: sqlite3.Connection,
    patient_id: str,
    changes: Changes,
    today: date,
    now: datetime,
    hold_days: int = 0,
) -> list[int]:
    """Store what `step` decided; return the ids of the alerts opened (resurfaced included)."""
    at = iso(now)
    day = today.isoformat()
    opened: list[int] = []
    for alert in changes.closed:
        alerts_store.close(conn, alert.id, at)  # compare-and-set: never closes twice
    for u in changes.updated:
        f, a = u.finding, u.alert
        severity = f.severity if SEVERITY_RANK[f.severity] > SEVERITY_RANK[a.severity] else None
        seen_day = day if refreshes(f, hold_days) else a.last_evidence_on.isoformat()
        alerts_store.add_evidence(
            conn, a.id, day=seen_day, reason=u.reason, reason_on=day, severity=severity, level=f.level, at=at
        )

    def insert(f: Finding, resurfaced_from: int | None = None, news: str = "") -> int | None:
        return alerts_store.open_alert(
            conn,
            patient_id,
            rule_id=f.rule_id,
            category=f.category,
            severity=f.severity,
            day=day,
            reason=with_news(f.reason, news),
            level=f.level,
            at=at,
            resurfaced_from=resurfaced_from,
            news=news or None,
        )

    for u in changes.resurfaced:
        # The old alert ends (compare-and-set: resurfaced once), the news opens as a new alert
        # at the top of the inbox, unacknowledged, and the old one points to it.
        ended = alerts_store.close(conn, u.alert.id, at)
        if ended and (new_id := insert(u.finding, u.alert.id, u.news)) is not None:
            alerts_store.supersede(conn, u.alert.id, new_id)
            opened.append(new_id)
    for f in changes.opened:
        if (new_id := insert(f)) is not None:
            opened.append(new_id)
    if opened:
        # The app must not tell the patient the team has seen their reports while news waits.
        patients_store.set_team_seen(conn, patient_id, None)
    return opened


def diary_heard_on(conn: sqlite3.Connection, patient_id: str, timezone: str) -> date | None:
    """The patient's local date when a diary last reached the server (its receipt time)."""
    received = diary_store.last_diary_received(conn, patient_id)
    return patients_store.local_day(received, timezone) if received is not None else None


def evaluate_patient(
    conn: sqlite3.Connection,
    patient_id: str,
    today: date,
    library: Any,
    pathways: Mapping[str, Any] | None,
    **options: Any,
) -> Changes:
    """Run every rule for one patient as of their local `today` and store the alert changes
    (`judge_patient`, with its `options`, then its writes).

    Runs inside the caller's write transaction (the writer connection): after a new response,
    so the alert exists before the HTTP answer returns, and in the nightly sweep.
    """
    changes, writes = judge_patient(conn, patient_id, today, library, pathways, **options)
    if writes is not None:
        writes(conn)
    return changes


def judge_patient(
    conn: sqlite3.Connection,
    patient_id: str,
    today: date,
    library: Any,
    pathways: Mapping[str, Any] | None,
    *,
    now: datetime | None = None,
    patient: patients_store.Patient | None = None,
    keep: bool = True,
    heard_now: bool = False,
) -> tuple[Changes, Callable[[sqlite3.Connection], None] | None]:
    """What every rule says of one patient as of their local `today` and what that changes,
    read in the caller's transaction; and the writes that store the changes (None: nothing
    changes, the commonest case), which fill in `changes.opened_ids`. `patient`: the
    patient's row as read in this transaction, if the caller has it (else it is read);
    `keep`: see `read_patient`; `heard_now`: a diary was received at `now` (intake: no read).
    """
    if patient is None or patient.id != patient_id:
        patient = patients_store.get(conn, patient_id)
    if patient is None:
        raise LookupError("no such patient")
    thresholds = patient_thresholds(pathways, patient.pathway_id, patient.thresholds, today)
    # The open alerts are read with the entries (kept alike: read again once one changed).
    entries, open_alerts = read_patient(
        conn, patient_id, today, lookback_days(thresholds), load_open_alerts, keep=keep
    )
    enrolled_on = patient.enrolled_on
    heard_on = today if heard_now else diary_heard_on(conn, patient_id, patient.timezone)
    paused = date.fromisoformat(patient.paused_until) if patient.paused_until else None
    findings = evaluate(
        entries, thresholds, today, enrolled_on, library, heard_on=heard_on, paused_until=paused
    )
    assert open_alerts is not None
    changes = step(open_alerts, findings, today, thresholds.quiet_days, thresholds.hold_days)
    if not (changes.opened or changes.updated or changes.resurfaced or changes.closed):
        return changes, None

    def writes(conn: sqlite3.Connection) -> None:
        changes.opened_ids = write_changes(
            conn, patient_id, changes, today, now or utcnow(), thresholds.hold_days
        )

    return changes, writes


SWEEP_CHUNK = 200


def sweep(
    db: Database,
    settings: Settings,
    now: datetime,
    library: Any,
    pathways: Mapping[str, Any] | None,
) -> int:
    """The nightly pass: every active patient evaluated as of their own local today (silence
    included); returns how many alerts opened."""
    patients = patients_store.active_zones(db.reader)
    opened = 0
    for start in range(0, len(patients), SWEEP_CHUNK):
        chunk = [
            (pid, now.astimezone(ZoneInfo(zone)).date())
            for pid, zone in patients[start : start + SWEEP_CHUNK]
        ]

        def run(conn: sqlite3.Connection, chunk: list[tuple[str, date]] = chunk) -> int:
            n = 0
            for patient_id, today in chunk:
                conn.execute("SAVEPOINT sweep_patient")
                try:
                    # Every patient once: keeping each one's read would only push the others out.
                    changes = evaluate_patient(
                        conn, patient_id, today, library, pathways, now=now, keep=False
                    )
                except Exception as exc:  # noqa: BLE001 - one patient must not stop the sweep
                    conn.execute("ROLLBACK TO sweep_patient")
                    log.error("sweep: patient %s failed with %s", patient_id, type(exc).__name__)
                else:
                    n += len(changes.opened_ids)
                conn.execute("RELEASE sweep_patient")
            return n

        opened += db.write_sync(run)
    return opened


def escalate(db: Database, settings: Settings, now: datetime) -> list[int]:
    """Urgent alerts still unacknowledged after `escalate_after_minutes`: mark them escalated
    (compare-and-set, so never twice); return their ids."""
    cutoff = iso(now - timedelta(minutes=settings.escalate_after_minutes))
    at = iso(now)
    return db.write_sync(lambda conn: alerts_store.escalate(conn, cutoff, at))


# -- what clinicians do (the inbox calls these inside a write transaction) ---------------------
def acknowledge(conn: sqlite3.Connection, alert_id: int, user_id: int, now: datetime) -> bool:
    """Open -> acknowledged; False when someone else was first (or it is no longer open)."""
    done = alerts_store.acknowledge(conn, alert_id, user_id, iso(now))
    if done:
        _team_saw(conn, alert_id, iso(now))
    return done


def _team_saw(conn: sqlite3.Connection, alert_id: int, at: str) -> None:
    """The patient's app may now say the team saw their alert (`team_seen_at`): set only when a
    clinician acknowledges or resolves one, never by merely opening the patient's page; a
    new or resurfacing alert clears it again."""
    patient_id = alerts_store.patient_of(conn, alert_id)
    if patient_id is not None:
        patients_store.set_team_seen(conn, patient_id, at)


def assign(conn: sqlite3.Connection, alert_id: int, user_id: int | None, now: datetime) -> bool:
    return alerts_store.assign(conn, alert_id, user_id, iso(now))


def add_note(conn: sqlite3.Connection, alert_id: int, user_id: int, text: str, now: datetime) -> int:
    return alerts_store.add_note(conn, alert_id, user_id, text, iso(now))


def resolve(conn: sqlite3.Connection, alert_id: int, user_id: int, outcome: str, now: datetime) -> bool:
    """A clinician closes the alert with an outcome. While the condition lasts, the rule
    keeps updating this alert instead of opening a new one (no re-alert the next morning)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    done = alerts_store.resolve(conn, alert_id, user_id, outcome, iso(now))
    if done:
        _team_saw(conn, alert_id, iso(now))
    return done
