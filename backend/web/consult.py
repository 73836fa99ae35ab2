"""The consult: what a clinician takes into the outpatient visit.

- The printable summary (`/clinic/patients/{id}/consult`): one patient's period on one A4,
  from `backend.patients.consult_summary` (pain against THE baseline, sleep, activity and mood,
  side effects, scores, alerts with outcomes and notes, the trial summary), with a print
  button and the print date.
- The "CSV voor het consult" downloads (streamed wide CSV): Dutch Excel
  (`consult-mevr-de-boer-2026-12-02-excel.csv`, Dutch column names and answer words) and the
  standard one (`consult-mevr-de-boer-2026-12-02.csv`): no id in a file name.
- The cohort page with its CSV.
No SQL and no arithmetic here; charts come from `backend.web.charts`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter
from litestar.response import Stream, Template

from backend.alerts import store as alerts_store
from backend.alerts.lifecycle import patient_thresholds
from backend.alerts.names import rule_name, status_name
from backend.diary import store as diary_store
from backend.exports.cohort import cohort_summary, cohort_time_points, iter_cohort
from backend.exports.files import slug, stream_from
from backend.exports.scope import MAX_PERIOD_DAYS, REPORT_DATES, ExportError
from backend.exports.wide import iter_wide
from backend.patients import consult_summary
from backend.patients import store as patients
from backend.platform import formatting, messages
from backend.platform.dates import check_date
from backend.platform.messages import Problem
from backend.platform.storage import parse_iso, utcnow
from backend.platform.words import time_point, word
from backend.system import System
from backend.web import charts, clinic
from backend.web.inbox import baseline_level, baseline_text, day, markers
from backend.web.timeline import trial_text

# One A4: the newest few alerts; the rest stays in the timeline.
MAX_ALERTS = 4
# File names without ids: the pseudonymous name as a slug and the period's last day.
CSV_NAMES = {"nl": "consult-{name}{day}-excel.csv", "standard": "consult-{name}{day}.csv"}


def num(x: float | None, signed: bool = False) -> str:
    """A number as Dutch readers write it (6,5); – when absent; `signed`: +1,5 / −1,5."""
    if x is None:
        return "–"
    text = formatting.number(abs(x) if signed else x)
    return (("+" if x >= 0 else "−") + text) if signed else text


class PeriodError(Exception):
    """A consult period that cannot be shown; the message says why in Dutch, dates as read."""


def _period_date(text: str | None, label: str) -> date | None:
    if not text:
        return None
    day = check_date(label, text, REPORT_DATES)
    if isinstance(day, Problem):
        raise PeriodError(messages.text("consult.period_date", field=label, value=text[:40]))
    return day


def consult_period(date_from: str | None, date_to: str | None, today: date) -> tuple[date, date]:
    """The consult's period from its address (fields "van" and "tot en met"): by default the
    last four weeks; an end after today is today (there is nothing to show after it)."""
    start, end = _period_date(date_from, "van"), _period_date(date_to, "tot en met")
    if start is not None and end is not None and start > end:
        raise PeriodError(messages.text("consult.period_reversed", start=day(start), end=day(end)))
    end = min(end or today, today)
    start = start or end - timedelta(days=consult_summary.DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise PeriodError(messages.text("consult.period_future", start=day(start), today=day(today)))
    if (end - start).days > MAX_PERIOD_DAYS:
        raise PeriodError(
            messages.text(
                "consult.period_too_long", start=day(start), end=day(end), years=MAX_PERIOD_DAYS // 365
            )
        )
    return start, end


def _csv_response(body: Iterator[bytes], filename: str) -> Stream:
    return Stream(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def export_refused(request: Request, exc: ExportError) -> Template:
    """A CSV that cannot be made: a clinic page saying why in Dutch (never the export's own
    English line with the patient's id), with the way back."""
    detail = messages.text("clinic.export_nothing") if exc.nothing else str(exc)
    response = clinic.page(request, "clinic/error.html", status=400, detail=detail)
    response.status_code = 400
    return response


def _local_day(at: str | None, time_zone: str) -> date | None:
    return parse_iso(at).astimezone(formatting.zone(time_zone)).date() if at else None


def _alerts(rows: Any, notes: Any, library: Any) -> list[dict[str, Any]]:
    by_alert: dict[int, list[str]] = {}
    for n in notes:
        by_alert.setdefault(n["alert_id"], []).append(consult_summary.short(n["text"]))
    return [
        {
            "row": r,
            "opened": day(r["opened_on"]),
            # The patient's own day, as `opened` is (a UTC date is a day early after midnight).
            "closed": day(_local_day(r["closed_at"] or r["resolved_at"], r["timezone"])),
            "severity": word("severity", r["severity"]),
            "rule": rule_name(r["rule_id"], library),
            "status": status_name(r),
            "outcome": word("outcome", r["outcome"]) if r["outcome"] else "",
            "notes": by_alert.get(r["id"], []),
        }
        for r in rows
    ]


def _summary_context(system: System, found: tuple, now: datetime) -> dict[str, Any]:
    """The consult summary's sums, chart and texts from what `consult_page` read."""
    p, start, end, rows, alerts, notes = found
    pathway = system.pathways.get(p.pathway_id)
    thresholds = patient_thresholds(system.pathways, p.pathway_id, p.thresholds, end)
    enrolled_on = p.enrolled_on
    s = consult_summary.summarise(
        rows, system.library, thresholds, pathway, p.anchor_date, start, end, enrolled_on
    )
    b = s["baseline"]
    chart = charts.DayChart(
        title=f"Pijnscore per dag (0–10), {day(start)} tot en met {day(end)}",
        first=start,
        last=end,
        top=10,
        width=680,
        height=160,
        left=40,
        series=[
            charts.Series("gemiddelde pijn", s["timeline"].series("pain_avg"), "#1b1f24"),
            charts.Series("ergste pijn", s["timeline"].series("pain_worst"), "#a35f00", dash="2 3"),
        ],
        levels=[baseline_level(b, end)] if b else [],
        markers=markers(alerts, system.library),
    ).html()
    shown = _alerts(alerts, notes, system.library)
    return dict(
        p=p,
        s=s,
        start=start.isoformat(),
        end=end.isoformat(),
        period=f"{day(start)} t/m {day(end)}",
        anchor=day(p.anchor_date),
        pathway_title=pathway.title.get("nl", p.pathway_id) if pathway else p.pathway_id,
        baseline_text=baseline_text(b),
        chart=chart,
        alerts=shown[:MAX_ALERTS],
        more_alerts=max(0, len(shown) - MAX_ALERTS),
        trial=trial_text(s["trial_rule"], s["trial"]) if s["trial_rule"] else None,
        side_effect=lambda item: word("side_effect", item),
        level=lambda v: word("level", str(v)) if v is not None else "–",
        printed=formatting.moment(now),
        num=num,
        day=day,
    )


class ConsultController(Controller):
    """The consult CSV, the printable consult summary, and the cohort page."""

    path = "/clinic"
    include_in_schema = False

    guards = [clinic.requires_clinician]
    before_request = clinic.check_csrf

    @get("/patients/{patient_id:str}/consult.csv", name="clinic:consult-csv")
    async def consult_csv(
        self,
        request: Request,
        system: System,
        patient_id: str,
        dialect: str = "nl",
        date_from: Annotated[str | None, QueryParameter(name="from")] = None,
        date_to: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> Stream | Template:
        if dialect not in CSV_NAMES:
            raise ValidationException(messages.text("clinic.csv_dialect"))
        patient = await system.db.read(lambda conn: patients.get(conn, patient_id))
        if patient is None:
            raise NotFoundException(messages.text("clinic.no_patient"))

        def make(conn: sqlite3.Connection) -> Iterator[str]:
            return iter_wide(
                conn,
                system.library,
                patient_id=patient_id,
                date_from=date_from,
                date_to=date_to,
                dialect=dialect,
            )  # type: ignore[arg-type]

        try:
            # Off the loop: `make` runs the export's first queries (stream_from's own connection).
            body = await asyncio.to_thread(stream_from, system.settings.db, make)
        except ExportError as exc:
            return export_refused(request, exc)
        span = f"{date_from or 'start'}..{date_to or 'end'}"
        await system.db.write(
            lambda conn: clinic.audit_access(
                conn,
                request,
                patient_id=patient_id,
                action="export",
                object=f"wide csv dialect {dialect} {span}",
            )
        )
        last = date_to or patient.local_today().isoformat()
        name = slug(patient.display_name)
        return _csv_response(body, CSV_NAMES[dialect].format(name=f"{name}-" if name else "", day=last))

    @get("/patients/{patient_id:str}/consult", name="clinic:consult-summary")
    async def consult_page(
        self,
        request: Request,
        system: System,
        patient_id: str,
        date_from: Annotated[str | None, QueryParameter(name="from")] = None,
        date_to: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> Template:
        now = utcnow()

        def read(conn: sqlite3.Connection):
            p = patients.get(conn, patient_id)
            if p is None:
                return None
            try:
                start, end = consult_period(date_from, date_to, p.local_today(now))
            except PeriodError as exc:
                return p, str(exc)
            rows = diary_store.current_between(conn, patient_id, "0001-01-01", end.isoformat())
            alerts = alerts_store.in_period(conn, patient_id, start.isoformat(), end.isoformat())
            return p, start, end, rows, alerts, alerts_store.notes(conn, [a["id"] for a in alerts])

        found = await system.db.read(read)
        if found is None:
            raise NotFoundException(messages.text("clinic.no_patient"))
        if len(found) == 2:  # a period that cannot be shown: the period form again, with why
            response = clinic.page(
                request,
                "clinic/consult_period.html",
                p=found[0],
                error=found[1],
                start=(date_from or "")[:40],
                end=(date_to or "")[:40],
            )
            response.status_code = 400
            return response
        _p, start, end, *_ = found
        await system.db.write(
            lambda conn: clinic.audit_access(
                conn,
                request,
                patient_id=patient_id,
                action="view",
                object=f"consult summary {start.isoformat()}..{end.isoformat()}",
            )
        )
        # Summed, drawn and rendered on the reader pool, not on the event loop.
        return clinic.page(request, "clinic/consult.html", build=lambda: _summary_context(system, found, now))

    @get("/cohort/{pathway_id:str}", name="clinic:cohort")
    async def cohort_page(self, request: Request, system: System, pathway_id: str) -> Template:
        if pathway_id not in system.pathways:
            raise NotFoundException(messages.text("clinic.no_pathway"))
        points = cohort_time_points(pathway_id, system.pathways)

        def read(conn: sqlite3.Connection) -> list:
            try:
                return cohort_summary(conn, pathway_id, time_points=points)
            except ExportError:
                return []

        summary = await system.db.read(read)
        await system.db.write(
            lambda conn: clinic.audit_access(
                conn, request, patient_id=None, action="view", object=f"cohort summary {pathway_id}"
            )
        )
        pathway = system.pathways[pathway_id]
        chart = (
            charts.bar_chart(
                "Mediane pijn (0–10) per meetmoment", [(time_point(p.label), p.median_pain) for p in summary]
            )
            if summary
            else ""
        )
        return clinic.page(
            request,
            "clinic/cohort.html",
            pathway_id=pathway_id,
            pathway_title=pathway.title.get("nl", pathway_id),
            points=summary,
            chart=chart,
            pathways={pid: p.title.get("nl", pid) for pid, p in sorted(system.pathways.items())},
            number=formatting.number,
            percent=formatting.percent,
            time_point=time_point,
        )

    @get("/cohort/{pathway_id:str}/cohort.csv", name="clinic:cohort-csv")
    async def cohort_csv(
        self, request: Request, system: System, pathway_id: str, dialect: str = "standard"
    ) -> Stream | Template:
        if pathway_id not in system.pathways:
            raise NotFoundException(messages.text("clinic.no_pathway"))
        if dialect not in CSV_NAMES:
            raise ValidationException(messages.text("clinic.csv_dialect"))
        points = cohort_time_points(pathway_id, system.pathways)

        def make(conn: sqlite3.Connection) -> Iterator[str]:
            return iter_cohort(conn, system.library, pathway_id, time_points=points, dialect=dialect)  # type: ignore[arg-type]

        try:
            body = await asyncio.to_thread(stream_from, system.settings.db, make)
        except ExportError as exc:
            return export_refused(request, exc)
        ids = await system.db.read(lambda conn: [pid for pid, _ in patients.in_pathway(conn, pathway_id)])

        def log(conn: sqlite3.Connection) -> None:
            for pid in ids:
                clinic.audit_access(
                    conn,
                    request,
                    patient_id=pid,
                    action="export",
                    object=f"cohort csv {pathway_id}" + (" dialect nl" if dialect == "nl" else ""),
                )

        await system.db.write(log)
        return _csv_response(body, f"cohort-{pathway_id}{'-excel' if dialect == 'nl' else ''}.csv")
