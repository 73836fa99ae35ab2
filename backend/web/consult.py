"""The consult: what a clinician takes into the outpatient visit.

- `consult_summary`: one patient's period on one A4 page (pain trend against the baseline,
  sleep and activity, side effects, questionnaire scores against their bands and the change
  since intake, alerts with outcomes and notes), rendered by the printable summary page.
- `pain_chart_svg`, `cohort_chart_svg`: charts drawn on the server as SVG (no script, no
  inline style: presentation attributes only, so the strict CSP holds and printing is exact).
- `ConsultController`: the clinic's "CSV voor het consult" download (streamed wide CSV),
  the printable summary, and the cohort page with its CSV.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from html import escape
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter
from litestar.response import Stream, Template

from backend.diary.questionnaires import Library
from backend.diary.scoring import band_for, round_half_up
from backend.exports.cohort import PointSummary, cohort_summary, cohort_time_points, iter_cohort
from backend.exports.files import stream_from
from backend.exports.scope import ExportError, check_period, parse_date
from backend.exports.wide import iter_wide
from backend.web import clinic

DEFAULT_PERIOD_DAYS = 28
# Baseline as the detection rules define it: the median daily pain over the 28 days before
# the period; with fewer than 10 such days, the median of the diary's first 7 days (intake).
BASELINE_DAYS = 28
MIN_BASELINE_DAYS = 10
SIDE_EFFECTS = {
    "se_drowsiness": "Sufheid",
    "se_nausea": "Misselijkheid",
    "se_constipation": "Verstopping",
    "se_dizziness": "Duizeligheid",
}
LEVELS = {0: "geen", 1: "licht", 2: "matig", 3: "ernstig"}
SEVERITY_NL = {"urgent": "urgent", "high": "hoog", "routine": "routine"}
STATUS_NL = {
    "open": "open",
    "acknowledged": "in behandeling",
    "resolved": "afgehandeld",
    "closed": "gesloten",
}
OUTCOME_NL = {
    "called_patient": "patiënt gebeld",
    "changed_medication": "medicatie aangepast",
    "appointment": "afspraak gemaakt",
    "no_action": "geen actie nodig",
}
# One A4: the newest few notes and alerts; the rest stays in the timeline.
MAX_NOTES = 3
NOTE_CHARS = 110
MAX_ALERTS = 4


def num(x: float | None, signed: bool = False) -> str:
    """A number as Dutch readers write it: 6,5 and 6 (not 6.0); – when absent."""
    if x is None:
        return "–"
    text = f"{x:+.1f}" if signed else f"{x:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace(".", ",")


# -- charts -------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def pain_chart_svg(
    days: Sequence[tuple[date, float | None, float | None]],
    baseline: float | None,
    *,
    width: int = 680,
    height: int = 150,
) -> str:
    """Daily pain (average and worst, NRS 0-10) over the period with the baseline, as SVG.

    `days` is every day of the period in order: (day, pain_avg, pain_worst), None when absent.
    """
    left, right, top, bottom = 34, 10, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(days), 1)
    step = plot_w / max(n - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + plot_h * (1 - v / 10)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="pain-chart-title">',
        '<title id="pain-chart-title">Pijnscore per dag (NRS 0-10): gemiddeld en ergst'
        + (f"; baseline {_fmt(baseline)}" if baseline is not None else "")
        + "</title>",
    ]
    for v in (0, 2, 4, 6, 8, 10):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#e1e4e8" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#555d66">{v}</text>'
        )
    # Date labels: the first, the last and about five between.
    every = max(1, round(n / 6))
    for i, (day, _a, _w) in enumerate(days):
        # A regular label too close to the last one would overlap it.
        if (i % every == 0 and n - 1 - i >= every / 2) or i == n - 1:
            anchor = "end" if i == n - 1 and n > 1 else ("start" if i == 0 else "middle")
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" font-size="11" text-anchor="{anchor}" '
                f'fill="#555d66">{day.day}-{day.month}</text>'
            )
    if baseline is not None:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(baseline):.1f}" '
            f'y2="{y(baseline):.1f}" stroke="#0b5cad" stroke-width="1.5" '
            'stroke-dasharray="6 4"/>'
            f'<text x="{width - right}" y="{y(baseline) - 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#0b5cad">baseline {_fmt(baseline)}</text>'
        )
    for index, colour, dash in ((2, "#a35f00", ' stroke-dasharray="2 3"'), (1, "#1b1f24", "")):
        # A gap in the diary is a gap in the line: segments only join adjacent days.
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, row in enumerate(days):
            v = row[index]
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(float(v)):.1f}")
            if index == 1:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(float(v)):.1f}" r="2.5" fill="{colour}"/>')
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                parts.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" '
                    f'stroke="{colour}" stroke-width="1.8"{dash}/>'
                )
    parts.append("</svg>")
    return "".join(parts)


def cohort_chart_svg(points: Sequence[PointSummary], *, width: int = 560, height: int = 200) -> str:
    """The cohort's median pain (NRS 0-10) at each time point, as an SVG bar chart."""
    left, right, top, bottom = 34, 10, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    slot = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        'width="100%" role="img" aria-labelledby="cohort-chart-title">'
        '<title id="cohort-chart-title">Mediane pijn (NRS 0-10) per meetmoment</title>'
    ]
    for v in (0, 5, 10):
        yy = top + plot_h * (1 - v / 10)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
            'stroke="#e1e4e8"/>'
            f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#555d66">{v}</text>'
        )
    for i, p in enumerate(points):
        cx = left + slot * (i + 0.5)
        parts.append(
            f'<text x="{cx:.1f}" y="{height - 10}" font-size="11" '
            f'text-anchor="middle" fill="#555d66">{escape(p.label)}</text>'
        )
        if p.median_pain is None:
            parts.append(
                f'<text x="{cx:.1f}" y="{top + plot_h - 4}" font-size="11" '
                'text-anchor="middle" fill="#555d66">–</text>'
            )
            continue
        h = plot_h * p.median_pain / 10
        parts.append(
            f'<rect x="{cx - slot * 0.3:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{slot * 0.6:.1f}" height="{h:.1f}" fill="#0b5cad"/>'
            f'<text x="{cx:.1f}" y="{top + plot_h - h - 4:.1f}" font-size="11" '
            f'text-anchor="middle" fill="#1b1f24">{_fmt(p.median_pain)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- the consult summary ------------------------------------------------------------------
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


def _mean(values: list[float]) -> float | None:
    return round_half_up(sum(values) / len(values), 1) if values else None


def consult_summary(
    conn: sqlite3.Connection,
    library: Library,
    pathways: dict[str, Any],
    patient_id: str,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Everything the printable consult summary shows, for one patient and period
    (default: the last 28 days up to today)."""
    patient = conn.execute("SELECT * FROM patients WHERE id = ?", (patient_id,)).fetchone()
    if patient is None:
        raise ExportError(f"unknown patient {patient_id!r}")
    end = date_to or today or date.today()
    start = date_from or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    check_period(start, end)
    decode = msgspec.json.decode
    diary: dict[date, dict[str, Any]] = {}
    proms: list[tuple[str, str, int, dict[str, float]]] = []
    for day, qid, version, answers, scores in conn.execute(
        "SELECT local_date, questionnaire_id, questionnaire_version, answers, scores"
        " FROM current_responses WHERE patient_id = ? AND local_date <= ?"
        " ORDER BY local_date",
        (patient_id, end.isoformat()),
    ):
        if qid == "diary":
            diary[date.fromisoformat(day)] = decode(answers)
        else:
            values = decode(scores)
            if values:
                proms.append((day, qid, version, values))

    def pains(lo: date, hi: date) -> list[float]:
        return [
            a["pain_avg"]
            for d, a in diary.items()
            if lo <= d <= hi and isinstance(a.get("pain_avg"), int | float)
        ]

    before = pains(start - timedelta(days=BASELINE_DAYS), start - timedelta(days=1))
    if len(before) >= MIN_BASELINE_DAYS:
        baseline: float | None = round_half_up(statistics.median(before), 1)
        baseline_note = f"mediaan van de {BASELINE_DAYS} dagen vóór deze periode"
    else:
        first = sorted(diary)[:7]
        intake = [diary[d]["pain_avg"] for d in first if isinstance(diary[d].get("pain_avg"), int | float)]
        baseline = round_half_up(statistics.median(intake), 1) if len(intake) >= 3 else None
        baseline_note = "mediaan van de eerste 7 dagboekdagen" if baseline is not None else ""

    period = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    chart_days = [(d, diary.get(d, {}).get("pain_avg"), diary.get(d, {}).get("pain_worst")) for d in period]
    in_period = [diary[d] for d in period if d in diary]

    def values(item: str) -> list[float]:
        return [a[item] for a in in_period if isinstance(a.get(item), int | float)]

    side_effects = []
    diary_def = library.get("diary")
    for item, short in SIDE_EFFECTS.items():
        levels = values(item)
        q_item = diary_def.item(item) if diary_def else None
        side_effects.append(
            {
                "item": item,
                "label": short,
                "question": q_item.text.get("nl", item) if q_item else item,
                "days_moderate": sum(1 for v in levels if v >= 2),
                "days_severe": sum(1 for v in levels if v >= 3),
                "worst": LEVELS.get(int(max(levels))) if levels else None,
                "days": len(levels),
            }
        )
    rescue = values("rescue_doses")
    stats = {
        "diary_days": len(in_period),
        "period_days": len(period),
        "pain_avg": _mean(values("pain_avg")),
        "pain_worst": _mean(values("pain_worst")),
        "sleep_hours": _mean(values("sleep_hours")),
        "sleep_quality": _mean(values("sleep_quality")),
        "activity": _mean(values("activity")),
        "mood": _mean(values("mood")),
        "rescue_per_day": _mean(rescue),
        "rescue_total": int(sum(rescue)) if rescue else None,
    }
    pain_change = (
        round_half_up(stats["pain_avg"] - baseline, 1)
        if stats["pain_avg"] is not None and baseline is not None
        else None
    )
    notes = [
        (d.isoformat(), _short(diary[d]["note"]))
        for d in period
        if d in diary and isinstance(diary[d].get("note"), str) and diary[d]["note"].strip()
    ]
    alerts = alerts_for(conn, patient_id, start, end)

    pathway = pathways.get(patient["pathway_id"])
    return {
        "patient": dict(patient),
        "pathway_title": pathway.title.get("nl", patient["pathway_id"]) if pathway else patient["pathway_id"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "baseline": baseline,
        "baseline_note": baseline_note,
        "pain_change": pain_change,
        "chart": pain_chart_svg(chart_days, baseline),
        "stats": stats,
        "side_effects": side_effects,
        "scores": score_lines(library, proms, end),
        "alerts": alerts[:MAX_ALERTS],
        "more_alerts": max(0, len(alerts) - MAX_ALERTS),
        "notes": notes[-MAX_NOTES:],
        "more_notes": max(0, len(notes) - MAX_NOTES),
        "success": _success(pathway, diary, patient["anchor_date"]),
    }


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1].rstrip() + "…"


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


def _success(pathway: Any, diary: dict[date, dict[str, Any]], anchor: str) -> dict | None:
    """The pathway's success rule (e.g. SCS trial: >= 50 % less pain), when it has one."""
    rule = getattr(pathway, "success", None)
    if rule is None:
        return None
    from backend.patients.pathways import success_outcome

    a = date.fromisoformat(anchor)
    by_day = {
        (d - a).days: v[rule.item] for d, v in diary.items() if isinstance(v.get(rule.item), int | float)
    }
    outcome = success_outcome(rule, by_day)
    return {"label": rule.label.get("nl", ""), "outcome": outcome}


def alerts_for(conn: sqlite3.Connection, patient_id: str, start: date, end: date) -> list[dict]:
    """The patient's alerts that were live at some time in the period, with outcome and notes."""
    rows = conn.execute(
        "SELECT * FROM alerts WHERE patient_id = ? AND opened_on <= ?"
        " AND (coalesce(closed_at, resolved_at) IS NULL OR coalesce(closed_at, resolved_at) >= ?)"
        # Urgent first: a capped list on paper must never hide the urgent ones.
        " ORDER BY CASE severity WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END,"
        " opened_on DESC, id DESC",
        (patient_id, end.isoformat(), start.isoformat()),
    ).fetchall()
    out = [dict(r) for r in rows]
    notes: dict[int, list[str]] = {}
    if out:
        ids = [r["id"] for r in out]
        for alert_id, text in conn.execute(
            f"SELECT alert_id, text FROM alert_notes WHERE alert_id IN ({','.join('?' * len(ids))})"
            " ORDER BY at, id",
            ids,
        ):
            notes.setdefault(alert_id, []).append(text)
    for r in out:
        r["opened"] = r["opened_on"]
        r["closed"] = (r["closed_at"] or r["resolved_at"] or "")[:10]
        r["severity_nl"] = SEVERITY_NL.get(r["severity"], r["severity"])
        r["status_nl"] = STATUS_NL.get(r["status"], r["status"])
        r["outcome_nl"] = OUTCOME_NL.get(r["outcome"] or "", r["outcome"] or "")
        r["notes"] = notes.get(r["id"], [])
    return out


# -- clinic pages -------------------------------------------------------------------------
def _date_arg(text: str | None, name: str) -> date | None:
    try:
        value = parse_date(text, name)
    except ExportError as exc:
        raise ValidationException(str(exc)) from None
    return date.fromisoformat(value) if value else None


def _csv_response(body: Iterator[bytes], filename: str) -> Stream:
    return Stream(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
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
        patient_id: str,
        dialect: str = "nl",
        date_from: Annotated[str | None, QueryParameter(query="from")] = None,
        date_to: Annotated[str | None, QueryParameter(query="to")] = None,
    ) -> Stream:
        services = clinic.services_of(request)
        if dialect not in ("nl", "standard"):
            raise ValidationException("dialect must be nl (Dutch Excel) or standard")

        def make(conn: sqlite3.Connection) -> Iterator[str]:
            return iter_wide(
                conn,
                services.library,
                patient_id=patient_id,
                date_from=date_from,
                date_to=date_to,
                dialect=dialect,
            )  # type: ignore[arg-type]

        try:
            # Off the loop: `make` runs the export's first queries (stream_from's own connection).
            body = await asyncio.to_thread(stream_from, services.settings.db, make)
        except ExportError as exc:
            if "unknown patient" in str(exc):
                raise NotFoundException(str(exc)) from None
            raise ValidationException(str(exc)) from None
        span = f"{date_from or 'start'}..{date_to or 'end'}"
        await services.db.write(
            lambda conn: clinic.audit_access(
                conn,
                request,
                patient_id=patient_id,
                action="export",
                object=f"wide csv dialect {dialect} {span}",
            )
        )
        return _csv_response(body, f"consult-{patient_id}.csv")

    @get("/patients/{patient_id:str}/consult", name="clinic:consult-summary")
    async def consult_page(
        self,
        request: Request,
        patient_id: str,
        date_from: Annotated[str | None, QueryParameter(query="from")] = None,
        date_to: Annotated[str | None, QueryParameter(query="to")] = None,
    ) -> Template:
        services = clinic.services_of(request)
        start = _date_arg(date_from, "from")
        end = _date_arg(date_to, "to")
        try:
            summary = await services.db.read(
                lambda conn: consult_summary(
                    conn, services.library, services.pathways, patient_id, date_from=start, date_to=end
                )
            )
        except ExportError as exc:
            if "unknown patient" in str(exc):
                raise NotFoundException("No such patient.") from None
            raise ValidationException(str(exc)) from None
        await services.db.write(
            lambda conn: clinic.audit_access(
                conn,
                request,
                patient_id=patient_id,
                action="view",
                object=f"consult summary {summary['start']}..{summary['end']}",
            )
        )
        return clinic.page(request, "clinic/consult.html", s=summary, num=num)

    @get("/cohort/{pathway_id:str}", name="clinic:cohort")
    async def cohort_page(self, request: Request, pathway_id: str) -> Template:
        services = clinic.services_of(request)
        if pathway_id not in services.pathways:
            raise NotFoundException("No such pathway.")
        points = cohort_time_points(pathway_id, services.pathways)

        def read(conn: sqlite3.Connection) -> list:
            try:
                return cohort_summary(conn, pathway_id, time_points=points)
            except ExportError:
                return []

        summary = await services.db.read(read)
        await services.db.write(
            lambda conn: clinic.audit_access(
                conn, request, patient_id=None, action="view", object=f"cohort summary {pathway_id}"
            )
        )
        pathway = services.pathways[pathway_id]
        return clinic.page(
            request,
            "clinic/cohort.html",
            pathway_id=pathway_id,
            pathway_title=pathway.title.get("nl", pathway_id),
            points=summary,
            chart=cohort_chart_svg(summary) if summary else "",
            pathways=sorted(services.pathways),
        )

    @get("/cohort/{pathway_id:str}/cohort.csv", name="clinic:cohort-csv")
    async def cohort_csv(self, request: Request, pathway_id: str) -> Stream:
        services = clinic.services_of(request)
        if pathway_id not in services.pathways:
            raise NotFoundException("No such pathway.")
        points = cohort_time_points(pathway_id, services.pathways)

        def make(conn: sqlite3.Connection) -> Iterator[str]:
            return iter_cohort(conn, services.library, pathway_id, time_points=points)

        try:
            body = await asyncio.to_thread(stream_from, services.settings.db, make)
        except ExportError as exc:
            raise NotFoundException(str(exc)) from None
        ids = await services.db.read(
            lambda conn: [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM patients WHERE pathway_id = ? ORDER BY id", (pathway_id,)
                )
            ]
        )

        def log(conn: sqlite3.Connection) -> None:
            for pid in ids:
                clinic.audit_access(
                    conn, request, patient_id=pid, action="export", object=f"cohort csv {pathway_id}"
                )

        await services.db.write(log)
        return _csv_response(body, f"cohort-{pathway_id}.csv")
