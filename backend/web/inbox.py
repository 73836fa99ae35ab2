"""The alert inbox (`/clinic/inbox`), one alert's page, and the response times.

Filters (severity, category, status, assignee, pathway, patient) are query parameters, so a
filtered inbox is a link; the page refreshes itself (static/inbox.js) keeping them and the
focus. Acknowledge ("in behandeling nemen"), assign, note and resolve are small forms
(CSRF-checked by the clinic's `check_csrf`), each a compare-and-set in
`backend.alerts.lifecycle` and an audit-log entry. `/clinic/alerts.csv` is the inbox as an
alerts CSV (contract.md, with status, assignee and outcome after the contract's columns).
No SQL here: reads are `backend.alerts.store`, arithmetic is in the domain modules.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from backend.alerts import deadlines, lifecycle, overrides, pain
from backend.alerts import store as alerts_store
from backend.alerts.detection import SEVERITY_RANK, SIDE_EFFECTS
from backend.alerts.lifecycle import OUTCOMES, patient_thresholds
from backend.alerts.names import rule_name, status_name
from backend.diary import store as diary_store
from backend.diary import timeline as diary_timeline
from backend.exports.alerts_csv import inbox_csv
from backend.platform import audit, formatting, messages
from backend.platform.messages import Refusal
from backend.platform.storage import parse_iso, utcnow
from backend.platform.words import WORDS, word
from backend.system import System
from backend.web import charts
from backend.web.clinic import audit_access, audit_shown, check_csrf, page, requires_clinician, session_of

SEVERITIES = {k: word("severity", k) for k in sorted(SEVERITY_RANK, key=SEVERITY_RANK.get, reverse=True)}
CATEGORIES = {k: v["nl"] for k, v in WORDS["category"].items()}
ORDERS = {k: word("inbox_order", k) for k in alerts_store.ORDERS}
STATUS_FILTERS = {k: word("status", k) for k in ("live", "open", "acknowledged", "resolved", "closed", "all")}
OUTCOME_WORDS = {k: word("outcome", k) for k in OUTCOMES}
NOTE_MAX = 4000
PAGE_SIZE = 100
MAX_OFFSET = 2**62
# The alert page's chart: the last 90 days.
CHART_DAYS = 90
# The inbox's two CSVs (backend/exports/alerts_csv.py), each with its own file name.
CSV_NAMES = {"standard": "meldingen-{day}.csv", "nl": "meldingen-{day}-excel.csv"}
_ROW_ID = re.compile(r"[0-9]{1,18}")


def row_id(text: str) -> int | None:
    """A row id typed into a form or a link: ASCII digits that fit SQLite, else None ("²" is
    a digit to str.isdigit but not to int(); 2**63 overflows the query)."""
    return int(text) if _ROW_ID.fullmatch(text) else None


def moment(text: str | None) -> str:
    """A stored UTC instant in the clinic's local time: "3 dec. 2026 om 20:15"."""
    return formatting.moment(parse_iso(text)) if text else ""


def day(text: str | date | None, year: bool = True) -> str:
    if not text:
        return ""
    d = text if isinstance(text, date) else date.fromisoformat(text[:10])
    return formatting.day(d, year=year)


AUTOMATIC = "Pijnwacht (automatisch)"


def present(a: Any, system: System, now: datetime, events: list[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """What any page shows of an alert: words for every code, who did what when (one list,
    oldest first, each line with its local time and who), the target. `events` are more lines
    (stored UTC instant, what, who): the notes and the assignments."""
    targets = deadlines.Targets.of(system.settings)
    lines = [(a["opened_at"], "Geopend", AUTOMATIC)]
    if a["acknowledged_at"]:
        lines.append((a["acknowledged_at"], "In behandeling genomen", a["acknowledged_name"] or ""))
    if a["escalated_at"]:
        lines.append((a["escalated_at"], "Geëscaleerd (niet op tijd gezien)", AUTOMATIC))
    if a["resolved_at"]:
        lines.append(
            (a["resolved_at"], f"Afgehandeld: {word('outcome', a['outcome'])}", a["resolved_name"] or "")
        )
    if a["closed_at"] and a["status"] == "closed":
        lines.append((a["closed_at"], "Vanzelf gesloten", AUTOMATIC))
    lines += events
    # Stored instants are UTC ISO text of one width: their order is the order in time.
    history = [(what, moment(at), who) for at, what, who in sorted(lines, key=lambda line: line[0])]
    return {
        "row": a,
        "id": a["id"],
        "severity": a["severity"],
        "severity_word": word("severity", a["severity"]),
        "category_word": word("category", a["category"]),
        "rule": rule_name(a["rule_id"], system.library),
        "status": status_name(a),
        "outcome": word("outcome", a["outcome"]) if a["outcome"] else "",
        "opened": day(a["opened_on"]),
        "opened_at": moment(a["opened_at"]),
        "history": history,
        "deadline": deadlines.deadline(targets, a, now),
    }


def inbox_filter(
    severity: str | None = None,
    category: str | None = None,
    status: str | None = None,
    assignee: str | None = None,
    pathway: str | None = None,
    patient: str | None = None,
    order: str | None = None,
    patient_id: str | None = None,
) -> alerts_store.Filter:
    """The inbox's filters from the query string (unknown values: no filter), handed by
    Litestar's DI to the inbox and its CSV alike."""
    return alerts_store.Filter(
        severity=severity if severity in SEVERITIES else "",
        category=category if category in CATEGORIES else "",
        status=status if status in STATUS_FILTERS else "live",
        assignee=assignee or "",
        pathway=pathway or "",
        patient=(patient or "").strip()[:80],
        patient_id=(patient_id or "")[:40],
        order=order if order in ORDERS else "urgent",
    )


class InboxController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False
    dependencies = {"chosen": Provide(inbox_filter, sync_to_thread=False)}

    @get("/inbox", name="alerts:list")
    async def inbox(
        self,
        request: Request,
        system: System,
        chosen: alerts_store.Filter,
        offset: int = 0,
    ) -> Template:
        # Beyond the last alert is an empty page, never an integer SQLite cannot bind.
        offset = min(max(0, offset), MAX_OFFSET)

        def read(conn):
            # A page the nurse can work through; one more row tells whether there is a next page.
            return (
                alerts_store.inbox(conn, chosen, PAGE_SIZE + 1, offset),
                alerts_store.colleagues(conn),
                alerts_store.inbox_count(conn, chosen),
            )

        rows, users, total = await system.db.read(read)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        base_query = urlencode([(k, v) for k, v in request.query_params.items() if k != "offset" and v])
        together = _together(rows, request.query_params)
        await system.db.write(
            lambda conn: audit_shown(
                conn,
                request,
                (r["patient_id"] for r in rows),
                action="list_alerts",
                object=request.url.query or None,
            )
        )
        now = utcnow()
        return page(
            request,
            "inbox/list.html",
            build=lambda: {"alerts": [present(r, system, now) for r in rows]},
            users=users,
            chosen=chosen,
            severities=SEVERITIES,
            categories=CATEGORIES,
            statuses=STATUS_FILTERS,
            orders=ORDERS,
            pathways={pid: p.title.get("nl", pid) for pid, p in system.pathways.items()},
            query=request.url.query,
            offset=offset,
            page_size=PAGE_SIZE,
            more=more,
            total=total,
            filtered=chosen != alerts_store.Filter(order=chosen.order),
            base_query=base_query,
            together=together,
        )

    @get("/alerts/{alert_id:int}", name="alerts:detail")
    async def detail(self, request: Request, system: System, alert_id: int, saved: str = "") -> Template:
        def read(conn):
            row = alerts_store.one(conn, alert_id)
            if row is None:
                return None
            confirmed = ""
            if saved == "expected":  # back from "Verwacht niveau opslaan": say what holds now
                expected = overrides.expected_in_force(
                    conn, row["patient_id"], formatting.today(row["timezone"])
                )
                if expected is not None:
                    confirmed = messages.text(
                        "clinic.expected_saved",
                        value=formatting.setting(expected.value),
                        until=day(expected.until),
                    )
            last = min(formatting.today(row["timezone"]), _chart_end(row))
            first = last - timedelta(days=CHART_DAYS - 1)
            thresholds = patient_thresholds(
                system.pathways, row["pathway_id"], row["patient_thresholds"], last
            )
            since = first - timedelta(days=diary_timeline.baseline_reach(thresholds))
            responses = diary_store.current_between(
                conn, row["patient_id"], since.isoformat(), last.isoformat()
            )
            history = alerts_store.of_patient(conn, row["patient_id"], 21)
            assigned = audit.on_object(conn, row["patient_id"], f"alert {alert_id}", ("assign_alert",))
            return (
                row,
                alerts_store.notes(conn, [alert_id]),
                assigned,
                history,
                alerts_store.colleagues(conn),
                responses,
                thresholds,
                first,
                last,
                confirmed,
            )

        found = await system.db.read(read)
        if found is None:
            raise NotFoundException(messages.text("clinic.no_alert"))
        await system.db.write(
            lambda conn: audit_access(
                conn,
                request,
                patient_id=found[0]["patient_id"],
                action="view_alert",
                object=f"alert {alert_id}",
            )
        )

        def context() -> dict[str, Any]:  # the chart and the lists, built on the reader pool
            row, notes, assigned, history, users, responses, thresholds, first, last, confirmed = found
            t = diary_timeline.build(responses, first, last, system.library)
            # The day the reason was written for (an alert stored before that was kept: its
            # last evidence): the chart shows the baseline the reason states.
            judged = date.fromisoformat(row["reason_on"] or row["last_evidence_on"])
            baseline = t.baseline(thresholds, judged) if row["category"] == "pain" else None
            window_start = date.fromisoformat(row["opened_on"])
            if row["category"] == "pain":
                window_start -= timedelta(days=thresholds.window_days - 1)
            chart = charts.DayChart(
                title=f"Pijn per dag, {day(first)} tot en met {day(last)}",
                first=first,
                last=last,
                top=10,
                height=190,
                series=pain_series(t),
                levels=[baseline_level(baseline, judged)] if baseline else [],
                bands=[
                    (window_start, judged, f"periode van deze melding: {day(window_start)} – {day(judged)}")
                ],
                markers=markers(history, system.library),
                extra=note_marks(t),
            ).html()
            now = utcnow()
            events = [(n["at"], "Notitie", n["name"]) for n in notes]
            # Who changed the assignment when (the audit log); the last one says to whom.
            for i, change in enumerate(assigned):
                latest = i == len(assigned) - 1
                what = (
                    f"Toegewezen aan {row['assignee_name'] or 'niemand'}"
                    if latest
                    else "Toewijzing gewijzigd"
                )
                events.append((change["at"], what, change["name"] or ""))
            return dict(
                a=present(row, system, now, events),
                item_chart=item_chart(
                    t,
                    row["rule_id"],
                    first,
                    last,
                    (window_start, judged),
                    (thresholds, baseline) if thresholds.rescue_rise_doses else None,
                ),
                notes=[{"name": n["name"], "at": moment(n["at"]), "text": n["text"]} for n in notes],
                history=[present(h, system, now) for h in history if h["id"] != alert_id][:20],
                users=users,
                outcomes=OUTCOME_WORDS,
                chart=chart,
                baseline=baseline,
                baseline_text=baseline_text(baseline),
                window=(day(window_start), day(judged)),
                first=day(first),
                last=day(last),
                note_max=NOTE_MAX,
                targets=deadlines.Targets.of(system.settings),
                expected_saved=confirmed,
            )

        return page(request, "inbox/detail.html", build=context)

    async def _act(self, request: Request, system: System, alert_id: int, action: str, fn) -> Response:
        form = await request.form()
        patient_id = await system.db.read(lambda conn: alerts_store.patient_of(conn, alert_id))
        if patient_id is None:
            raise NotFoundException(messages.text("clinic.no_alert"))
        user_id = session_of(request).user.id
        now = utcnow()

        def run(conn) -> bool:
            done = fn(conn, form, user_id, now)
            audit_access(conn, request, patient_id=patient_id, action=action, object=f"alert {alert_id}")
            return done

        await system.db.write(run)
        back = str(form.get("back") or "")
        target = back if back.startswith("/clinic/") else f"/clinic/alerts/{alert_id}"
        return Redirect(path=target, status_code=303)

    @post("/alerts/{alert_id:int}/acknowledge", name="alerts:acknowledge")
    async def acknowledge(self, request: Request, system: System, alert_id: int) -> Response:
        return await self._act(
            request,
            system,
            alert_id,
            "acknowledge_alert",
            lambda conn, form, uid, now: lifecycle.acknowledge(conn, alert_id, uid, now),
        )

    @post("/alerts/{alert_id:int}/assign", name="alerts:assign")
    async def assign(self, request: Request, system: System, alert_id: int) -> Response:
        def fn(conn, form, uid, now):
            raw = str(form.get("assigned_to") or "")
            colleague = row_id(raw)
            if raw and (colleague is None or not alerts_store.is_colleague(conn, colleague)):
                raise Refusal("clinic.colleague", 422)
            return lifecycle.assign(conn, alert_id, colleague, now)

        return await self._act(request, system, alert_id, "assign_alert", fn)

    @post("/alerts/{alert_id:int}/note", name="alerts:note")
    async def note(self, request: Request, system: System, alert_id: int) -> Response:
        def fn(conn, form, uid, now):
            text = str(form.get("text") or "").strip()
            if not text:
                raise Refusal("clinic.note_empty", 422)
            if len(text) > NOTE_MAX:
                # Refused whole, never cut: the clinician keeps what they typed (back button).
                raise Refusal("clinic.note_too_long", 422, max=NOTE_MAX, length=len(text))
            return lifecycle.add_note(conn, alert_id, uid, text, now)

        return await self._act(request, system, alert_id, "note_alert", fn)

    @post("/alerts/{alert_id:int}/resolve", name="alerts:resolve")
    async def resolve(self, request: Request, system: System, alert_id: int) -> Response:
        def fn(conn, form, uid, now):
            outcome = str(form.get("outcome") or "")
            if outcome not in OUTCOMES:
                raise Refusal("clinic.outcome", 422)
            return lifecycle.resolve(conn, alert_id, uid, outcome, now)

        return await self._act(request, system, alert_id, "resolve_alert", fn)

    @get("/alerts.csv", name="alerts:csv")
    async def alerts_csv(
        self,
        request: Request,
        system: System,
        chosen: alerts_store.Filter,
        dialect: str = "standard",
    ) -> Response:
        # The contract's CSV by default; dialect=nl is the Dutch Excel variant (its own file name).
        if dialect not in CSV_NAMES:
            raise Refusal("clinic.csv_dialect", 400)
        rows = await system.db.read(lambda conn: alerts_store.inbox(conn, chosen))
        # Every alert of the filter: written on a worker thread, not on the event loop.
        body = await asyncio.to_thread(inbox_csv, rows, system.library, dialect)  # type: ignore[arg-type]
        await system.db.write(
            lambda conn: audit_shown(
                conn,
                request,
                (r["patient_id"] for r in rows),
                action="export_alerts",
                object=f"{len(rows)} alerts",
            )
        )
        name = CSV_NAMES[dialect].format(day=formatting.today().isoformat())
        return Response(
            content=body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @get("/response-times", name="alerts:response-times")
    async def response_times(self, request: Request, system: System, weeks: int = 8) -> Template:
        weeks = min(max(1, weeks), 52)
        now = utcnow()
        since = now - timedelta(weeks=weeks, days=7)
        rows = await system.db.read(
            lambda conn: alerts_store.opened_since(conn, since.strftime("%Y-%m-%dT%H:%M:%SZ"))
        )
        targets = deadlines.Targets.of(system.settings)
        table = deadlines.weekly(targets, rows, now)[:weeks]
        await system.db.write(
            lambda conn: audit_access(
                conn, request, patient_id=None, action="view_response_times", object=None
            )
        )
        return page(
            request,
            "inbox/response_times.html",
            weeks=table,
            severities=SEVERITIES,
            targets={s: targets.describe(s) for s in SEVERITIES},
            minutes=deadlines.minutes,
            percent=lambda share: "–" if share is None else formatting.percent(share),
            day=day,
        )


def _together(rows: list[Any], query: Any) -> dict[str, tuple[int, str]]:
    """patient id -> (how many of the listed alerts are theirs, the inbox of only those) for a
    patient listed more than once: the severity order splits them, this brings them together."""
    counts = Counter(r["patient_id"] for r in rows)
    kept = [(k, v) for k, v in query.items() if k not in ("offset", "patient", "patient_id") and v]
    return {
        r["patient_id"]: (counts[r["patient_id"]], urlencode([*kept, ("patient_id", r["patient_id"])]))
        for r in rows
        if counts[r["patient_id"]] > 1
    }


# -- helpers shared with the patient page ----------------------------------------------------
def _chart_end(row: Any) -> date:
    """An old alert's chart ends some days after its last evidence, a recent one today."""
    return date.fromisoformat(row["last_evidence_on"]) + timedelta(days=14)


def pain_series(t: diary_timeline.Timeline) -> list[charts.Series]:
    return [
        charts.Series("gemiddelde pijn", t.series("pain_avg"), "#1b1f24"),
        charts.Series("ergste pijn", t.series("pain_worst"), "#a35f00", dash="3 3"),
    ]


def baseline_text(b: Any) -> str:
    """ "baseline 4,0 (28 dagboekdagen, 22 okt. – 19 nov., uitschieters weggelaten)"."""
    if b is None:
        return ""
    last = b.end - timedelta(days=1)
    return (
        f"baseline {formatting.number(b.value)} ({len(b.days)} dagboekdagen,"
        f" {day(b.start, year=False)} – {day(last, year=False)}, uitschieters weggelaten)"
    )


def item_chart(
    t: diary_timeline.Timeline,
    rule_id: str,
    first: date,
    last: date,
    band: tuple[date, date],
    rescue: tuple[Any, Any] | None = None,
) -> tuple[str, Any] | None:
    """The alert's own diary item per day, above the pain chart, and what its legend says: a
    side effect as the diary asks it (geen, licht, matig, ernstig: 0-3), or, for a pain alert
    where the pathway judges rescue use (`rescue`: its thresholds and the pain baseline), the
    rescue doses with their usual level. None for other alerts."""
    bands = [(band[0], band[1], f"periode van deze melding: {day(band[0])} – {day(band[1])}")]
    if rule_id == "pain_rise" and rescue is not None:
        thresholds, baseline = rescue
        doses = t.series("rescue_doses")
        levels = []
        if baseline is not None:
            every = pain.rescue_doses(t.diary.keys(), t.series("rescue_doses", shown=False))
            usual = pain.usual_rescue(thresholds, [(d, every[d]) for d, _ in baseline.days])
            label = f"gebruikelijk {formatting.number(usual)} keer per dag"
            levels = [charts.Level(usual, label, baseline.start, band[1])]
        legend = "Per dag hoe vaak de patiënt extra (nood)medicatie nam (niet ingevuld telt als geen)"
        return legend, charts.DayChart(
            title=f"noodmedicatie per dag (keer), {day(first)} tot en met {day(last)}",
            first=first,
            last=last,
            top=charts.robust_top(list(doses.values()), 4.0),
            height=120,
            series=[charts.Series("noodmedicatie", doses, "#7a4a9d", bars=True, unit="keer")],
            levels=levels,
            bands=bands,
        ).html()
    item = "se_drowsiness" if rule_id == "drowsiness_severe" else rule_id.rpartition(".")[2]
    if item not in SIDE_EFFECTS:
        return None
    name = word("side_effect", item)
    legend = "Per dag wat de patiënt in het dagboek invulde: geen, licht, matig of ernstig (0–3)"
    return legend, charts.DayChart(
        title=f"{name} per dag (geen, licht, matig, ernstig), {day(first)} tot en met {day(last)}",
        first=first,
        last=last,
        top=3,
        height=16 + 18 + 24,
        strips=[(name, t.series(item), {n: word("level", str(n)) for n in range(4)})],
        bands=bands,
    ).html()


def baseline_level(b: Any, judged: date) -> charts.Level:
    return charts.Level(b.value, f"baseline {formatting.number(b.value)}", b.start, judged)


def markers(alerts: Any, library: Any) -> list[charts.Marker]:
    return [
        charts.Marker(
            date.fromisoformat(a["opened_on"]),
            a["severity"],
            f"melding {day(a['opened_on'], year=False)} ({word('severity', a['severity'])}):"
            f" {rule_name(a['rule_id'], library)}",
        )
        for a in alerts
    ]


def note_marks(t: diary_timeline.Timeline) -> dict[date, str]:
    return {d: "notitie van de patiënt" for d, _ in t.notes()}
