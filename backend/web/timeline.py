"""The clinic's patient page (`/clinic/patients/{id}`): the last 90 days at a glance.

Pain (with THE baseline, an expected level a clinician set, the alerts as ▼), mood, activity
and sleep quality, hours of sleep, rescue medication, side effects, the patient's own notes,
questionnaire scores, alerts with who did what, the reminders' delivery, and for a pathway with
a success rule (treatment follow-up) its trial summary. No SQL and no arithmetic here: the
reads are the stores', the numbers the domain modules'.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from backend.alerts import store as alerts_store
from backend.alerts.lifecycle import patient_thresholds
from backend.alerts.overrides import EXPECTED, listing
from backend.diary import store as diary_store
from backend.diary import timeline as diary_timeline
from backend.patients import store as patients
from backend.patients.pathways import trial_days, trial_span
from backend.platform import formatting, messages
from backend.platform.storage import iso, parse_iso, utcnow
from backend.platform.words import word
from backend.system import System
from backend.tasks import delivery
from backend.tasks import store as task_store
from backend.web import charts
from backend.web.clinic import audit_access, check_csrf, page, requires_clinician
from backend.web.inbox import (
    baseline_level,
    baseline_text,
    day,
    markers,
    moment,
    note_marks,
    pain_series,
    present,
)

CHART_DAYS = 90
SIDE_EFFECTS = ("se_drowsiness", "se_nausea", "se_constipation", "se_dizziness")
LEVEL_WORDS = {n: word("level", str(n)) for n in range(4)}


def trial_text(rule: Any, found: Any) -> str:
    """ "≥ 50 % pijnvermindering op 9 van 14 dagen (baseline 6,5)": the pathway's success rule
    applied day by day."""
    if found is None:
        return f"{rule.label.get('nl', '')}: nog te weinig dagen in de nulmeting"
    return (
        f"≥ {formatting.number(found.min_reduction_percent, 0)} % pijnvermindering op {found.reached}"
        f" van {formatting.days(found.days)} (baseline {formatting.number(found.baseline)})"
    )


def trial_summary(pathway: Any, t: diary_timeline.Timeline, anchor: str) -> str | None:
    """The trial summary of a pathway with a success rule (treatment follow-up); else None."""
    rule = getattr(pathway, "success", None)
    if rule is None:
        return None
    values = diary_timeline.by_anchor(t.series(rule.item, shown=False), date.fromisoformat(anchor))
    return trial_text(rule, trial_days(rule, values))


def _delivery(reminders: Any, receipts: Any, zone: Any) -> dict[str, Any]:
    sent = [
        delivery.Reminder(
            task_id=r["task_id"],
            sent_at=parse_iso(r["claimed_at"]),
            sent_on=parse_iso(r["claimed_at"]).astimezone(zone).date(),
            devices=r["pushes"],
            answered=r["status"] == "done",
        )
        for r in reminders
    ]
    got = [delivery.Receipt(task_id=r["task_id"], event=r["event"], at=parse_iso(r["at"])) for r in receipts]
    return {"weeks": delivery.weekly(sent, got), "stopped": delivery.stopped_since(sent, got)}


class PatientPageController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False

    @get("/patients/{patient_id:str}", name="clinic:patient")
    async def patient(self, request: Request, system: System, patient_id: str) -> Template:
        now = utcnow()

        def read(conn):
            p = patients.get(conn, patient_id)
            if p is None:
                return None
            today = p.local_today(now)
            first = today - timedelta(days=CHART_DAYS - 1)
            thresholds = patient_thresholds(system.pathways, p.pathway_id, p.thresholds, today)
            # The window shown and the baseline's reach, plus a trial's days around its anchor:
            # bounded, however long the history.
            rule = getattr(system.pathways.get(p.pathway_id), "success", None)
            rows = [
                row
                for lo, hi in diary_timeline.spans_to_read(
                    first - timedelta(days=diary_timeline.baseline_reach(thresholds)),
                    today,
                    trial_span(rule, date.fromisoformat(p.anchor_date)) if rule else None,
                )
                for row in diary_store.current_between(conn, patient_id, lo.isoformat(), hi.isoformat())
            ]
            alerts = alerts_store.of_patient(conn, patient_id)
            eight_weeks = iso(datetime.combine(today - timedelta(weeks=8), datetime.min.time(), p.zone))
            return (
                p,
                today,
                first,
                thresholds,
                rows,
                alerts,
                alerts_store.notes(conn, [a["id"] for a in alerts]),
                listing(conn, patient_id, today),
                task_store.reminders_since(conn, patient_id, eight_weeks),
                task_store.receipts_since(conn, patient_id, eight_weeks),
            )

        found = await system.db.read(read)
        if found is None:
            raise NotFoundException(messages.text("clinic.no_patient"))
        await system.db.write(
            lambda conn: audit_access(
                conn, request, patient_id=patient_id, action="view_patient", object="timeline 90 days"
            )
        )
        # Built and rendered on the reader pool: the charts of a long history are the page's work.
        return page(request, "inbox/patient.html", build=lambda: _page_context(system, found, now))


def _page_context(system: System, found: tuple, now: datetime) -> dict[str, Any]:
    """The timeline page's charts, lists and sums from what `patient` read."""
    p, today, first, thresholds, rows, alerts, notes, overrides, reminders, receipts = found
    t = diary_timeline.build(rows, first, today, system.library)
    baseline = t.baseline(thresholds, today)
    expected = next((o for o in overrides if o.key == EXPECTED and o.in_force and o.until), None)
    levels = [baseline_level(baseline, today)] if baseline else []
    if expected is not None:
        levels.append(
            charts.Level(
                float(expected.value),
                f"verwacht pijnniveau {formatting.number(float(expected.value))}"
                f" t/m {day(expected.until, year=False)}",
                date.fromisoformat(expected.set_on) if expected.set_on else first,
                date.fromisoformat(expected.until),
                colour="#7a4a9d",
            )
        )
    alert_marks = markers(alerts, system.library)
    extra = note_marks(t)

    def chart(title: str, series: list[charts.Series], top: float, height: int = 130, **kw: Any):
        return charts.DayChart(
            title=f"{title}, {day(first)} tot en met {day(today)}",
            first=first,
            last=today,
            top=top,
            height=height,
            series=series,
            extra=extra,
            **kw,
        ).html()

    rescue = t.series("rescue_doses")
    pain_chart = chart("Pijn per dag", pain_series(t), 10, 190, levels=levels, markers=alert_marks)
    drawn = {
        "pain": pain_chart,
        "wellbeing": chart(
            "Stemming, activiteit en slaapkwaliteit (0–10)",
            [
                charts.Series("stemming", t.series("mood"), "#0b5cad"),
                charts.Series("activiteit", t.series("activity"), "#2f7d32", dash="5 3"),
                charts.Series("slaapkwaliteit", t.series("sleep_quality"), "#7a4a9d", dash="2 2"),
            ],
            10,
            150,
        ),
        "sleep": chart(
            "Slaap (uren)", [charts.Series("slaap", t.series("sleep_hours"), "#2f7d32", unit="uur")], 12
        ),
        "rescue": chart(
            "Noodmedicatie (keer per dag)",
            [charts.Series("noodmedicatie", rescue, "#7a4a9d", bars=True, unit="keer")],
            max([4.0, *rescue.values()]),
            110,
        ),
        "side_effects": charts.DayChart(
            title=f"Bijwerkingen, {day(first)} tot en met {day(today)}",
            first=first,
            last=today,
            top=3,
            height=16 + 4 * 18 + 24,
            strips=[(word("side_effect", k), t.series(k), LEVEL_WORDS) for k in SIDE_EFFECTS],
        ).html(),
    }
    pathway = system.pathways.get(p.pathway_id)
    names = {a["id"]: present(a, system, now) for a in alerts}
    return dict(
        p=p,
        pathway=pathway.title.get("nl", p.pathway_id) if pathway else p.pathway_id,
        enrolled_on=day(p.enrolled_on),
        paused_until=day(p.paused_until) if (p.paused_until or "") >= today.isoformat() else None,
        delivery=_delivery(reminders, receipts, p.zone),
        charts=drawn,
        alerts=list(names.values()),
        alert_notes=[
            {"alert": n["alert_id"], "name": n["name"], "at": moment(n["at"]), "text": n["text"]}
            for n in sorted(notes, key=lambda n: n["at"], reverse=True)[:50]
        ],
        patient_notes=[(day(d), text) for d, text in t.notes()],
        scores=t.scores,
        first=day(first),
        today=day(today),
        baseline=baseline,
        baseline_text=baseline_text(baseline),
        expected=expected,
        trial=trial_summary(pathway, t, p.anchor_date),
        day=day,
        number=formatting.number,
    )
