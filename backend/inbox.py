"""The alert inbox (`/clinic/inbox`): triage by severity then age, and act on an alert.

Filters (severity, category, status, assignee, pathway) are query parameters, so a filtered
inbox is a link. Acknowledge, assign, note and resolve are small forms (CSRF-checked by the
clinic's `check_csrf`), each a compare-and-set in `backend.alerts` and an audit-log entry.
`/clinic/alerts.csv` is the inbox as an alerts CSV (contract.md).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.response import Redirect, Template

from backend import alerts
from backend.api import services_of
from backend.clinic import audit_access, check_csrf, page, requires_clinician, session_of
from backend.storage import utcnow

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
ORDER = (
    " ORDER BY CASE a.severity WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END,"
    " a.opened_at, a.id"
)


def _filters(
    severity: str | None, category: str | None, status: str | None, assignee: str | None,
    pathway: str | None,
) -> tuple[str, list[Any], dict[str, str]]:
    where: list[str] = []
    params: list[Any] = []
    chosen = {"severity": severity or "", "category": category or "", "status": status or "live",
              "assignee": assignee or "", "pathway": pathway or ""}
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
    elif assignee and assignee.isdigit():
        where.append("a.assigned_to = ?")
        params.append(int(assignee))
    if pathway:
        where.append("p.pathway_id = ?")
        params.append(pathway)
    return (" WHERE " + " AND ".join(where) if where else ""), params, chosen


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
        self, request: Request, severity: str | None = None, category: str | None = None,
        status: str | None = None, assignee: str | None = None, pathway: str | None = None,
    ) -> Template:
        services = services_of(request)
        where, params, chosen = _filters(severity, category, status, assignee, pathway)
        rows = services.db.query(SELECT + where + ORDER + " LIMIT 500", params)
        users = services.db.query("SELECT id, name FROM users WHERE disabled_at IS NULL ORDER BY name")
        await services.db.write(
            lambda conn: audit_access(conn, request, patient_id=None, action="list_alerts",
                                      object=request.url.query or None)
        )
        return page(
            request, "inbox/list.html", alerts=rows, users=users, chosen=chosen,
            severities=SEVERITIES, categories=CATEGORIES, statuses=STATUSES, outcomes=OUTCOMES,
            pathways={pid: p.title.get("nl", pid) for pid, p in services.pathways.items()},
            query=request.url.query,
        )

    @get("/alerts/{alert_id:int}", name="alerts:detail")
    async def detail(self, request: Request, alert_id: int) -> Template:
        services = services_of(request)
        row = services.db.query_one(SELECT + " WHERE a.id = ?", (alert_id,))
        if row is None:
            raise NotFoundException("No such alert.")
        notes = services.db.query(
            "SELECT n.at, n.text, u.name FROM alert_notes n JOIN users u ON u.id = n.user_id"
            " WHERE n.alert_id = ? ORDER BY n.at, n.id", (alert_id,)
        )
        history = services.db.query(
            "SELECT id, rule_id, severity, status, opened_on, reason FROM alerts"
            " WHERE patient_id = ? AND id != ? ORDER BY opened_at DESC LIMIT 20",
            (row["patient_id"], alert_id),
        )
        users = services.db.query("SELECT id, name FROM users WHERE disabled_at IS NULL ORDER BY name")
        await services.db.write(
            lambda conn: audit_access(conn, request, patient_id=row["patient_id"],
                                      action="view_alert", object=f"alert {alert_id}")
        )
        return page(request, "inbox/detail.html", a=row, notes=notes, history=history,
                    users=users, severities=SEVERITIES, categories=CATEGORIES,
                    statuses=STATUSES, outcomes=OUTCOMES)

    async def _act(self, request: Request, alert_id: int, action: str, fn) -> Response:
        services = services_of(request)
        form = await request.form()
        row = services.db.query_one("SELECT patient_id FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise NotFoundException("No such alert.")
        user_id = session_of(request).user.id
        now = utcnow()

        def run(conn) -> bool:
            done = fn(conn, form, user_id, now)
            audit_access(conn, request, patient_id=row["patient_id"], action=action,
                         object=f"alert {alert_id}")
            return done

        await services.db.write(run)
        back = str(form.get("back") or "")
        target = back if back.startswith("/clinic/") else f"/clinic/alerts/{alert_id}"
        return Redirect(path=target, status_code=303)

    @post("/alerts/{alert_id:int}/acknowledge", name="alerts:acknowledge")
    async def acknowledge(self, request: Request, alert_id: int) -> Response:
        return await self._act(
            request, alert_id, "acknowledge_alert",
            lambda conn, form, uid, now: alerts.acknowledge(conn, alert_id, uid, now),
        )

    @post("/alerts/{alert_id:int}/assign", name="alerts:assign")
    async def assign(self, request: Request, alert_id: int) -> Response:
        def fn(conn, form, uid, now):
            raw = str(form.get("assigned_to") or "")
            if raw and not raw.isdigit():
                raise ValidationException("Choose a colleague from the list.")
            return alerts.assign(conn, alert_id, int(raw) if raw else None, now)

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
        self, request: Request, severity: str | None = None, category: str | None = None,
        status: str | None = None, assignee: str | None = None, pathway: str | None = None,
    ) -> Response:
        services = services_of(request)
        where, params, _ = _filters(severity, category, status, assignee, pathway)
        rows = services.db.query(SELECT + where + ORDER, params)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        for line in alerts.alert_rows(rows):
            writer.writerow(line)
        await services.db.write(
            lambda conn: audit_access(conn, request, patient_id=None, action="export_alerts",
                                      object=f"{len(rows)} alerts")
        )
        return Response(
            content=buf.getvalue().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="alerts.csv"'},
        )
