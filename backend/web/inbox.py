"""The alert inbox (`/clinic/inbox`): triage by severity then age, and act on an alert.

Filters (severity, category, status, assignee, pathway) are query parameters, so a filtered
inbox is a link. Acknowledge, assign, note and resolve are small forms (CSRF-checked by the
clinic's `check_csrf`), each a compare-and-set in `backend.alerts.lifecycle` and an audit-log entry.
`/clinic/alerts.csv` is the inbox as an alerts CSV (contract.md).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.response import Redirect, Template

from backend.alerts import lifecycle as alerts
from backend.alerts import overrides
from backend.alerts.overrides import EXPECTED
from backend.exports.alerts_csv import alert_rows
from backend.platform.messages import Refusal
from backend.platform.storage import utcnow
from backend.web.api import services_of
from backend.web.clinic import audit_access, audit_shown, check_csrf, page, requires_clinician, session_of

SEVERITIES = {"urgent": "urgent", "high": "hoog", "routine": "routine"}
CATEGORIES = {
    "pain": "pijn",
    "side_effect": "bijwerking",
    "safety": "veiligheid",
    "questionnaire": "vragenlijst",
    "adherence": "therapietrouw",
}
STATUSES = {
    "live": "open of in behandeling",
    "open": "open",
    "acknowledged": "in behandeling",
    "resolved": "afgehandeld",
    "closed": "vanzelf gesloten",
    "all": "alle",
}
OUTCOMES = {
    "called_patient": "patiënt gebeld",
    "changed_medication": "medicatie aangepast",
    "appointment": "afspraak gemaakt",
    "no_action": "geen actie nodig",
}
# Severity first; within it, news on an alert the team had seen (resurfaced, still open) on
# top; then the longest waiting.
ORDER = (
    " ORDER BY CASE a.severity WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END,"
    " CASE WHEN a.status = 'open' AND a.resurfaced_from IS NOT NULL THEN 0 ELSE 1 END, a.opened_at, a.id"
)


def status_label(a: Any) -> str:
    """An alert's status as the inbox shows it: one that closed by itself says whether a
    clinician had seen it, one that resurfaced says so."""
    if a["superseded_by"]:
        again = "opnieuw gemeld, erger"
        return again if a["status"] == "closed" else f"{STATUSES[a['status']]}; {again}"
    if a["status"] == "closed":
        return "vanzelf gesloten" if a["acknowledged_at"] else "vanzelf gesloten, niet gezien"
    return STATUSES.get(a["status"], a["status"])


_ROW_ID = re.compile(r"[0-9]{1,18}")


def row_id(text: str) -> int | None:
    """A row id typed into a form or a link: ASCII digits that fit SQLite, else None ("²" is
    a digit to str.isdigit but not to int(); 2**63 overflows the query)."""
    return int(text) if _ROW_ID.fullmatch(text) else None


def _filters(
    severity: str | None,
    category: str | None,
    status: str | None,
    assignee: str | None,
    pathway: str | None,
) -> tuple[str, list[Any], dict[str, str]]:
    where: list[str] = []
    params: list[Any] = []
    chosen = {
        "severity": severity or "",
        "category": category or "",
        "status": status or "live",
        "assignee": assignee or "",
        "pathway": pathway or "",
    }
    if severity in SEVERITIES:
        where.append("a.severity = ?")
        params.append(severity)
    if category in CATEGORIES:
        where.append("a.category = ?")
        params.append(category)
    st = chosen["status"]
    if st == "live":
        where.append("a.status IN ('open', 'acknowledged')")
    elif st in ("open", "acknowledged", "resolved", "closed"):
        where.append("a.status = ?")
        params.append(st)
    if assignee == "none":
        where.append("a.assigned_to IS NULL")
    elif assignee and (user_id := row_id(assignee)) is not None:
        where.append("a.assigned_to = ?")
        params.append(user_id)
    if pathway:
        where.append("p.pathway_id = ?")
        params.append(pathway)
    return (" WHERE " + " AND ".join(where) if where else ""), params, chosen


PAGE_SIZE = 100
MAX_OFFSET = 2**62

SELECT = (
    "SELECT a.*, p.display_name, p.pathway_id, u.name AS assignee_name"
    " FROM alerts a JOIN patients p ON p.id = a.patient_id"
    " LEFT JOIN users u ON u.id = a.assigned_to"
)


class InboxController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False

    @get("/inbox", name="alerts:list")
    async def inbox(
        self,
        request: Request,
        severity: str | None = None,
        category: str | None = None,
        status: str | None = None,
        assignee: str | None = None,
        pathway: str | None = None,
        offset: int = 0,
    ) -> Template:
        services = services_of(request)
        where, params, chosen = _filters(severity, category, status, assignee, pathway)
        # Beyond the last alert is an empty page, never an integer SQLite cannot bind.
        offset = min(max(0, offset), MAX_OFFSET)
        # A page the nurse can work through; one more row tells whether there is a next page.
        rows = services.db.query(
            SELECT + where + ORDER + " LIMIT ? OFFSET ?", [*params, PAGE_SIZE + 1, offset]
        )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        base_query = urlencode([(k, v) for k, v in request.query_params.items() if k != "offset" and v])
        users = services.db.query("SELECT id, name FROM users WHERE disabled_at IS NULL ORDER BY name")
        await services.db.write(
            lambda conn: audit_shown(
                conn,
                request,
                (r["patient_id"] for r in rows),
                action="list_alerts",
                object=request.url.query or None,
            )
        )
        return page(
            request,
            "inbox/list.html",
            alerts=rows,
            users=users,
            chosen=chosen,
            severities=SEVERITIES,
            categories=CATEGORIES,
            statuses=STATUSES,
            status_label=status_label,
            outcomes=OUTCOMES,
            pathways={pid: p.title.get("nl", pid) for pid, p in services.pathways.items()},
            query=request.url.query,
            offset=offset,
            page_size=PAGE_SIZE,
            more=more,
            base_query=base_query,
        )

    @get("/alerts/{alert_id:int}", name="alerts:detail")
    async def detail(self, request: Request, alert_id: int) -> Template:
        services = services_of(request)
        row = services.db.query_one(SELECT + " WHERE a.id = ?", (alert_id,)) if alert_id < 2**63 else None
        if row is None:
            raise NotFoundException("No such alert.")
        notes = services.db.query(
            "SELECT n.at, n.text, u.name FROM alert_notes n JOIN users u ON u.id = n.user_id"
            " WHERE n.alert_id = ? ORDER BY n.at, n.id",
            (alert_id,),
        )
        history = services.db.query(
            "SELECT id, rule_id, severity, status, opened_on, reason, acknowledged_at, superseded_by"
            " FROM alerts WHERE patient_id = ? AND id != ? ORDER BY opened_at DESC LIMIT 20",
            (row["patient_id"], alert_id),
        )
        users = services.db.query("SELECT id, name FROM users WHERE disabled_at IS NULL ORDER BY name")
        await services.db.write(
            lambda conn: audit_access(
                conn, request, patient_id=row["patient_id"], action="view_alert", object=f"alert {alert_id}"
            )
        )
        return page(
            request,
            "inbox/detail.html",
            a=row,
            notes=notes,
            history=history,
            users=users,
            status_label=status_label,
            severities=SEVERITIES,
            categories=CATEGORIES,
            statuses=STATUSES,
            outcomes=OUTCOMES,
        )

    async def _act(self, request: Request, alert_id: int, action: str, fn) -> Response:
        services = services_of(request)
        form = await request.form()
        row = (
            services.db.query_one("SELECT patient_id FROM alerts WHERE id = ?", (alert_id,))
            if alert_id < 2**63
            else None
        )
        if row is None:
            raise NotFoundException("No such alert.")
        user_id = session_of(request).user.id
        now = utcnow()

        def run(conn) -> bool:
            done = fn(conn, form, user_id, now)
            audit_access(
                conn, request, patient_id=row["patient_id"], action=action, object=f"alert {alert_id}"
            )
            return done

        await services.db.write(run)
        back = str(form.get("back") or "")
        target = back if back.startswith("/clinic/") else f"/clinic/alerts/{alert_id}"
        return Redirect(path=target, status_code=303)

    @post("/alerts/{alert_id:int}/acknowledge", name="alerts:acknowledge")
    async def acknowledge(self, request: Request, alert_id: int) -> Response:
        return await self._act(
            request,
            alert_id,
            "acknowledge_alert",
            lambda conn, form, uid, now: alerts.acknowledge(conn, alert_id, uid, now),
        )

    @post("/alerts/{alert_id:int}/assign", name="alerts:assign")
    async def assign(self, request: Request, alert_id: int) -> Response:
        def fn(conn, form, uid, now):
            raw = str(form.get("assigned_to") or "")
            colleague = row_id(raw)
            known = (
                colleague is not None
                and conn.execute(
                    "SELECT 1 FROM users WHERE id = ? AND disabled_at IS NULL", (colleague,)
                ).fetchone()
            )
            if raw and not known:
                raise Refusal("clinic.colleague", 422)
            return alerts.assign(conn, alert_id, colleague, now)

        return await self._act(request, alert_id, "assign_alert", fn)

    @post("/alerts/{alert_id:int}/note", name="alerts:note")
    async def note(self, request: Request, alert_id: int) -> Response:
        def fn(conn, form, uid, now):
            text = str(form.get("text") or "").strip()
            if not text:
                raise ValidationException("A note needs some text.")
            return alerts.add_note(conn, alert_id, uid, text[:4000], now)

        return await self._act(request, alert_id, "note_alert", fn)

    @post("/alerts/{alert_id:int}/resolve", name="alerts:resolve")
    async def resolve(self, request: Request, alert_id: int) -> Response:
        def fn(conn, form, uid, now):
            outcome = str(form.get("outcome") or "")
            if outcome not in OUTCOMES:
                raise ValidationException("Choose what was done (the outcome).")
            return alerts.resolve(conn, alert_id, uid, outcome, now)

        return await self._act(request, alert_id, "resolve_alert", fn)

    @get("/alerts.csv", name="alerts:csv")
    async def alerts_csv(
        self,
        request: Request,
        severity: str | None = None,
        category: str | None = None,
        status: str | None = None,
        assignee: str | None = None,
        pathway: str | None = None,
    ) -> Response:
        services = services_of(request)
        where, params, _ = _filters(severity, category, status, assignee, pathway)
        rows = services.db.query(SELECT + where + ORDER, params)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        for line in alert_rows(rows):
            writer.writerow(line)
        await services.db.write(
            lambda conn: audit_shown(
                conn,
                request,
                (r["patient_id"] for r in rows),
                action="export_alerts",
                object=f"{len(rows)} alerts",
            )
        )
        return Response(
            content=buf.getvalue().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="alerts.csv"'},
        )


# -- the patient page: timeline of the last 90 days ---------------------------------------------
CHART_DAYS = 90
W, PAD = 720, 64
SIDE_EFFECT_LABELS = {
    "se_drowsiness": "sufheid",
    "se_nausea": "misselijk",
    "se_constipation": "obstipatie",
    "se_dizziness": "duizelig",
}
LEVEL_FILL = {0: "#e8f3ea", 1: "#f6e7a8", 2: "#f0a35e", 3: "#c8372d"}


def _x(day_index: int) -> float:
    return PAD + (W - 2 * PAD) * day_index / (CHART_DAYS - 1)


def _line_chart(
    series: list[tuple[str, dict[int, float], str, str]],
    top: float,
    height: int,
    band: tuple[float, float] | None = None,
    markers: list[tuple[int, str]] = (),
    bars: bool = False,
    expected: tuple[int, int, float, str] | None = None,
) -> str:
    """An SVG chart of day-indexed values (0 = first day shown). Only numbers and fixed words
    go into the markup; nothing a person typed."""
    h = height
    inner = h - 2 * 14

    def y(v: float) -> float:
        return 14 + inner * (1 - min(max(v, 0), top) / top)

    parts = [f'<svg viewBox="0 0 {W} {h}" width="100%" role="img" class="chart">']
    for tick in (0, top / 2, top):
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{PAD - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10">{tick:g}</text>'
        )
    if band is not None:
        lo, hi = band
        parts.append(
            f'<rect x="{PAD}" width="{W - 2 * PAD}" y="{y(hi):.1f}"'
            f' height="{max(0.5, y(lo) - y(hi)):.1f}" fill="#dbe9f7">'
            "<title>baseline</title></rect>"
        )
    if expected is not None:
        # A clinician's expected level: a line from the day it was set to its end date.
        start, end, level, until = expected
        parts.append(
            f'<line x1="{_x(max(start, 0)):.1f}" x2="{_x(min(end, CHART_DAYS - 1)):.1f}"'
            f' y1="{y(level):.1f}" y2="{y(level):.1f}" stroke="#7a4a9d" stroke-width="2"'
            f' stroke-dasharray="6 3"><title>verwacht pijnniveau {level:g} t/m {until}</title></line>'
        )
    for name, values, colour, dash in series:
        pts = sorted(values.items())
        if bars:
            bw = (W - 2 * PAD) / CHART_DAYS * 0.7
            for d, v in pts:
                parts.append(
                    f'<rect x="{_x(d) - bw / 2:.1f}" y="{y(v):.1f}" width="{bw:.1f}"'
                    f' height="{y(0) - y(v):.1f}" fill="{colour}"/>'
                )
            continue
        # Break the line at a missing day: a gap must look like a gap.
        path, prev = [], None
        for d, v in pts:
            path.append(("L" if prev is not None and d - prev == 1 else "M") + f"{_x(d):.1f},{y(v):.1f}")
            prev = d
        if path:
            parts.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{colour}"'
                f' stroke-width="2" stroke-dasharray="{dash}"><title>{name}</title></path>'
            )
        for d, v in pts:
            parts.append(f'<circle cx="{_x(d):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}"/>')
    for d, severity in markers:
        colour = {"urgent": "#c8372d", "high": "#e07b00"}.get(severity, "#555")
        parts.append(
            f'<path d="M{_x(d):.1f},{h - 2} l-5,-9 l10,0 z" fill="{colour}">'
            f"<title>melding ({SEVERITIES.get(severity, severity)})</title></path>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _strip(levels: dict[str, dict[int, float]]) -> str:
    rows = list(SIDE_EFFECT_LABELS)
    h = 14 * len(rows) + 4
    cell = (W - 2 * PAD) / CHART_DAYS
    parts = [f'<svg viewBox="0 0 {W} {h}" width="100%" role="img" class="chart">']
    for r, item in enumerate(rows):
        parts.append(
            f'<text x="{PAD - 4}" y="{14 * r + 12}" text-anchor="end" font-size="9">'
            f"{SIDE_EFFECT_LABELS[item]}</text>"
        )
        for d, v in levels.get(item, {}).items():
            parts.append(
                f'<rect x="{_x(d) - cell / 2:.1f}" y="{14 * r + 2}" width="{cell:.1f}"'
                f' height="12" fill="{LEVEL_FILL.get(int(v), "#999")}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _delivery(db, patient_id: str, timezone: str, today) -> dict[str, Any]:
    """Reminders of the last 8 weeks, per week, and since when they stopped arriving."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from backend.platform.storage import iso, parse_iso
    from backend.tasks import delivery

    zone = ZoneInfo(timezone)
    since = iso(datetime.combine(today - timedelta(weeks=8), datetime.min.time(), zone))
    reminders = [
        delivery.Reminder(
            task_id=r["task_id"],
            sent_at=parse_iso(r["claimed_at"]),
            sent_on=parse_iso(r["claimed_at"]).astimezone(zone).date(),
            devices=r["pushes"],
            answered=r["status"] == "done",
        )
        for r in db.query(
            "SELECT l.task_id, l.claimed_at, l.pushes, t.status FROM reminder_log l"
            " JOIN tasks t ON t.id = l.task_id"
            " WHERE l.patient_id = ? AND l.claimed_at >= ? ORDER BY l.claimed_at",
            (patient_id, since),
        )
    ]
    receipts = [
        delivery.Receipt(task_id=r["task_id"], event=r["event"], at=parse_iso(r["at"]))
        for r in db.query(
            "SELECT task_id, event, at FROM push_receipts WHERE patient_id = ? AND at >= ?",
            (patient_id, since),
        )
    ]
    return {
        "weeks": delivery.weekly(reminders, receipts),
        "stopped": delivery.stopped_since(reminders, receipts),
    }


class PatientPageController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False

    @get("/patients/{patient_id:str}", name="clinic:patient")
    async def patient(self, request: Request, patient_id: str) -> Template:
        import statistics
        from datetime import date, timedelta

        from markupsafe import Markup

        from backend.alerts.lifecycle import _local_date
        from backend.diary.questionnaires import band_for

        services = services_of(request)
        p = services.db.query_one("SELECT * FROM patients WHERE id = ?", (patient_id,))
        if p is None:
            raise NotFoundException("No such patient.")
        from zoneinfo import ZoneInfo

        today = utcnow().astimezone(ZoneInfo(p["timezone"])).date()
        first = today - timedelta(days=CHART_DAYS - 1)
        rows = services.db.query(
            "SELECT questionnaire_id, local_date, answers, scores FROM current_responses"
            " WHERE patient_id = ? AND local_date >= ? ORDER BY local_date, authored_at",
            (patient_id, (first - timedelta(days=56)).isoformat()),
        )
        import json

        def idx(text: str) -> int:
            return (date.fromisoformat(text) - first).days

        series: dict[str, dict[int, float]] = {}
        history: list[float] = []
        proms: list[dict[str, Any]] = []
        for r in rows:
            answers = json.loads(r["answers"])
            i = idx(r["local_date"])
            if r["questionnaire_id"] == "diary":
                if i < 0:
                    if isinstance(answers.get("pain_avg"), int | float):
                        history.append(float(answers["pain_avg"]))
                    continue
                for k, v in answers.items():
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        series.setdefault(k, {})[i] = float(v)
            elif i >= 0:
                q = services.library.get(r["questionnaire_id"])
                for sid, value in json.loads(r["scores"] or "{}").items():
                    score = next((s for s in (q.scores if q else []) if s.id == sid), None)
                    band = band_for(score, value) if score else None
                    proms.append(
                        {
                            "day": r["local_date"],
                            "questionnaire": r["questionnaire_id"],
                            "score": score.label.get("nl", sid) if score else sid,
                            "value": value,
                            "band": band.label.get("nl", "") if band else "",
                            "level": band.level if band else 0,
                        }
                    )
        pain = series.get("pain_avg", {})
        recent_base = [v for d, v in pain.items() if d <= CHART_DAYS - 15] + history
        band = None
        if len(recent_base) >= 7:
            med = statistics.median(recent_base)
            band = (med, med)
        patient_alerts = services.db.query(
            "SELECT * FROM alerts WHERE patient_id = ? ORDER BY opened_at DESC LIMIT 50",
            (patient_id,),
        )
        markers = [
            (idx(a["opened_on"]), a["severity"])
            for a in patient_alerts
            if 0 <= idx(a["opened_on"]) < CHART_DAYS
        ]
        expected = next(
            (o for o in overrides.listing(services.db.reader, patient_id, today) if o.key == EXPECTED),
            None,
        )
        if expected is not None and (not expected.in_force or expected.until is None):
            expected = None
        charts = {
            "pain": Markup(
                _line_chart(
                    [
                        ("gemiddelde pijn", pain, "#1f5fa8", "none"),
                        ("ergste pijn", series.get("pain_worst", {}), "#c8372d", "4 3"),
                    ],
                    10,
                    180,
                    band=(band[0] - 0.5, band[1] + 0.5) if band else None,
                    markers=markers,
                    expected=(
                        idx(expected.set_on or first.isoformat()),
                        idx(expected.until),
                        float(expected.value),
                        expected.until,
                    )
                    if expected
                    else None,
                )
            ),
            "sleep": Markup(
                _line_chart([("slaap (uur)", series.get("sleep_hours", {}), "#4a7d4a", "none")], 12, 90)
            ),
            "rescue": Markup(
                _line_chart(
                    [("noodmedicatie", series.get("rescue_doses", {}), "#7a4a9d", "none")],
                    max([4.0, *series.get("rescue_doses", {}).values()]),
                    80,
                    bars=True,
                )
            ),
            "side_effects": Markup(_strip({k: series.get(k, {}) for k in SIDE_EFFECT_LABELS})),
        }
        notes = services.db.query(
            "SELECT n.alert_id, n.at, n.text, u.name FROM alert_notes n JOIN alerts a"
            " ON a.id = n.alert_id JOIN users u ON u.id = n.user_id WHERE a.patient_id = ?"
            " ORDER BY n.at DESC LIMIT 50",
            (patient_id,),
        )

        def log(conn) -> None:
            audit_access(
                conn, request, patient_id=patient_id, action="view_patient", object="timeline 90 days"
            )

        await services.db.write(log)
        pathway = services.pathways.get(p["pathway_id"])
        return page(
            request,
            "inbox/patient.html",
            delivery=_delivery(services.db, patient_id, p["timezone"], today),
            paused_until=p["paused_until"] if (p["paused_until"] or "") >= today.isoformat() else None,
            p=p,
            charts=charts,
            alerts=patient_alerts,
            notes=notes,
            proms=proms,
            first=first.isoformat(),
            today=today.isoformat(),
            baseline=band[0] if band else None,
            expected=expected,
            severities=SEVERITIES,
            categories=CATEGORIES,
            statuses=STATUSES,
            status_label=status_label,
            outcomes=OUTCOMES,
            pathway=pathway.title.get("nl", p["pathway_id"]) if pathway else p["pathway_id"],
            enrolled_on=_local_date(p["enrolled_at"], p["timezone"]).isoformat(),
        )
