"""The clinic's patients: the list, enrolment (post/redirect/get with a one-time form token),
enrolment codes, a patient's settings, thresholds, devices, name, discharge and resume."""

from __future__ import annotations

import secrets
from datetime import date
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import available_timezones

import segno
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from backend.alerts import overrides
from backend.alerts.lifecycle import pathway_detection, patient_thresholds
from backend.alerts.thresholds import thresholds_for
from backend.patients import enrolment, roster
from backend.patients.enrolment import EnrolmentError, Patient
from backend.platform import formatting, messages
from backend.platform.messages import Refusal
from backend.platform.storage import utcnow
from backend.platform.words import WORDS, word
from backend.system import System
from backend.tasks import scheduler
from backend.web.clinic import audit_access, audit_shown, check_csrf, page, requires_clinician, session_of

# Offered first in the time-zone picker: where this clinic's patients live or travel most.
COMMON_ZONES = (
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Istanbul",
    "Africa/Casablanca",
    "Atlantic/Canary",
    "America/Curacao",
    "America/Aruba",
    "America/Paramaribo",
)
ENROL_FIELDS = ("display_name", "pathway_id", "timezone", "anchor_date", "reminder_time")
# What a redirect after a change may say (a key, never text from the URL).
DONE = {"discharged", "resumed", "renamed", "saved"}


@lru_cache(maxsize=1)
def zone_choices() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """The time-zone picker's groups of (IANA name, place as a person names it): the common
    zones, then every zone by region, by place."""
    regions: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(available_timezones()):
        area, _, city = name.partition("/")
        if city and area in WORDS["zone_region"] and formatting.zone_is_canonical(name):
            regions.setdefault(area, []).append((name, formatting.zone_place(name)))
    common = tuple((name, formatting.zone_place(name)) for name in COMMON_ZONES)
    return (
        (word("zone_region", "common"), common),
        *(
            (word("zone_region", area), tuple(sorted(zs, key=lambda z: formatting.name_sort_key(z[1]))))
            for area, zs in sorted(regions.items(), key=lambda r: word("zone_region", r[0]))
        ),
    )


def zone_groups(current: str | None) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """The picker's groups; a zone set elsewhere (the CLI, an old enrolment) that is in none of
    them comes first as it is, so saving the page never changes it unasked."""
    groups = zone_choices()
    if not current or any(current == z for _, zones in groups for z, _ in zones):
        return groups
    return ((word("zone_region", "current"), ((current, current.replace("_", " ")),)), *groups)


def _pathway_choices(system: System) -> list[tuple[str, str]]:
    return [(pid, p.title.get("nl", pid)) for pid, p in sorted(system.pathways.items())]


def _patient(system: System, conn, patient_id: str) -> Patient:
    patient = enrolment.get_patient(conn, patient_id)
    if patient is None:
        raise enrolment.NoSuchPatient(patient_id)
    return patient


def _replan(conn, system: System, patient_id: str) -> None:
    # The future schedule follows the change; the past stays as it was.
    scheduler.materialise(conn, patient_id, utcnow(), system.pathways, settings=system.settings)


class PatientsController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False

    @get("/patients", name="clinic:patients")
    async def patients(
        self,
        request: Request,
        system: System,
        q: str = "",
        pathway: str = "",
        status: str = "active",
        sort: str = "name",
        after: str = "",
        before: str = "",
        page_number: Annotated[str, QueryParameter(name="page")] = "1",
    ) -> Template:
        if len(q) > roster.MAX_SEARCH:
            # SQLite refuses a LIKE pattern beyond 50 000 bytes; a name is at most 80 characters.
            raise Refusal("clinic.search_too_long", 400, max=roster.MAX_SEARCH)
        pathway = pathway if pathway in system.pathways else ""
        status = status if status in roster.STATUSES else "active"
        sort = sort if sort in roster.SORTS else "name"
        number = int(page_number) if page_number.isdigit() and len(page_number) < 7 else 1
        # A page after (before) a patient: its id, from the list's own links.
        after, before = after[: roster.MAX_SEARCH], before[: roster.MAX_SEARCH]
        found = await system.db.read(
            lambda conn: roster.listing(
                conn, q=q, pathway=pathway, status=status, sort=sort, after=after, before=before, page=number
            )
        )
        await system.db.write(
            lambda conn: audit_shown(
                conn,
                request,
                (r.id for r in found.rows),
                action="list_patients",
                object=f"search={q!r}" if q else None,
            )
        )
        filters = {"q": q, "pathway": pathway, "status": status, "sort": sort}
        return page(
            request,
            "clinic/patients.html",
            found=found,
            filters=filters,
            query=lambda **changes: _query({**filters, **changes}),
            pathways=dict(_pathway_choices(system)),
        )

    @get("/patients/new", name="clinic:enrol")
    async def enrol_form(self, request: Request, system: System) -> Template:
        return await self._enrol_page(request, system, {}, None)

    async def _enrol_page(
        self, request: Request, system: System, values: dict, error: str | None
    ) -> Template:
        user_id = session_of(request).user.id
        token = await system.db.write(lambda conn: enrolment.new_form_token(conn, user_id))
        return page(
            request,
            "clinic/enrol.html",
            pathways=_pathway_choices(system),
            zones=zone_groups(values.get("timezone") or "Europe/Amsterdam"),
            form=values,
            form_token=token,
            errors=error,
            today=formatting.today(values.get("timezone")).isoformat(),
        )

    @post("/patients", name="clinic:enrol-submit")
    async def enrol(self, request: Request, system: System) -> Response:
        form = await request.form()
        user_id = session_of(request).user.id
        values = {k: str(form.get(k, "")).strip() for k in ENROL_FIELDS}
        token = str(form.get("form_token", ""))

        def create(conn) -> tuple[str, str]:
            made = enrolment.enrol_form(conn, token, user_id)
            if made is None:
                raise EnrolmentError("clinic.form_expired")
            if made.patient_id is not None:
                return made.patient_id, "again"  # a reload or a second click: the same patient
            same = enrolment.same_name_enrolled(conn, values["display_name"])
            local = formatting.zone(None)
            if same and not form.get("same_name_ok"):
                raise EnrolmentError(
                    "clinic.enrol_same_name",
                    name=values["display_name"],
                    since=", ".join(formatting.day(at.astimezone(local).date()) for at in same),
                )
            patient, code, expires = enrolment.create_patient(
                conn,
                display_name=values["display_name"],
                pathway_id=values["pathway_id"],
                known_pathways=system.pathway_ids,
                timezone=values["timezone"] or "Europe/Amsterdam",
                anchor_date=values["anchor_date"] or None,  # checked there, in the patient's zone
                reminder_time=values["reminder_time"] or "20:00",
                created_by=user_id,
                code_days=system.settings.enrol_code_days,
            )
            _replan(conn, system, patient.id)
            audit_access(
                conn, request, patient_id=patient.id, action="enrol", object=f"pathway={patient.pathway_id}"
            )
            enrolment.record_code(conn, token, user_id, patient.id, code, expires)
            return patient.id, "new"

        try:
            patient_id, how = await system.db.write(create)
        except EnrolmentError as exc:
            values["same_name"] = exc.key == "clinic.enrol_same_name"
            response = await self._enrol_page(request, system, values, exc.detail("nl"))
            response.status_code = 422
            return response
        again = "&again=1" if how == "again" else ""
        return Redirect(path=f"/clinic/patients/{patient_id}/code?t={token}{again}")

    @get("/patients/{patient_id:str}/code", name="clinic:code")
    async def code_page(
        self, request: Request, system: System, patient_id: str, t: str = "", again: str = ""
    ) -> Template:
        user_id = session_of(request).user.id

        def read(conn):
            return _patient(system, conn, patient_id), enrolment.enrol_form(conn, t, user_id)

        patient, made = await system.db.read(read)
        await system.db.write(
            lambda conn: audit_access(
                conn, request, patient_id=patient_id, action="view", object="enrolment_code"
            )
        )
        ours = made is not None and made.patient_id == patient_id
        code = enrolment.shown_code(made) if ours and made is not None else None
        link = f"{system.settings.base_url}/#code={code}" if code else ""
        qr = (
            segno.make(link, error="m").svg_inline(
                scale=5, dark="#000", light="#fff", title="QR-code voor de aanmelding"
            )
            if code
            else ""
        )
        return page(
            request,
            "clinic/code.html",
            patient=patient,
            code=code,
            expires=made.code_expires_at if code and made else None,
            link=link,
            public_url=system.settings.public_url,
            qr=qr,
            again=messages.text("clinic.enrol_done") if again else None,
            # Why no code: its hour is over, or this page was not opened from making it.
            hour_over=ours and code is None,
            code_days=system.settings.enrol_code_days,
        )

    @post("/patients/{patient_id:str}/code", name="clinic:new-code")
    async def new_code(self, request: Request, system: System, patient_id: str) -> Response:
        user_id = session_of(request).user.id
        token = secrets.token_urlsafe(24)

        def make(conn) -> None:
            _patient(system, conn, patient_id)
            code, expires = enrolment.new_code(conn, patient_id, days=system.settings.enrol_code_days)
            enrolment.record_code(conn, token, user_id, patient_id, code, expires)
            audit_access(conn, request, patient_id=patient_id, action="new_enrolment_code")

        await system.db.write(make)
        return Redirect(path=f"/clinic/patients/{patient_id}/code?t={token}")

    @get("/patients/{patient_id:str}/settings", name="clinic:patient-settings")
    async def settings_form(
        self, request: Request, system: System, patient_id: str, done: str = ""
    ) -> Template:
        return await self._settings_page(request, system, patient_id, None, done=done)

    async def _settings_page(
        self,
        request: Request,
        system: System,
        patient_id: str,
        error: str | None,
        *,
        done: str = "",
        confirm_discharge: str | None = None,
        threshold_form: dict[str, str] | None = None,
    ) -> Template:
        """The settings page; `error` is the server's own message (never text from the URL)."""

        def read(conn) -> tuple[Patient, list[dict[str, Any]], list[overrides.Override]]:
            patient = _patient(system, conn, patient_id)
            return (
                patient,
                enrolment.devices_of(conn, patient_id),
                overrides.listing(conn, patient_id, patient.local_today()),
            )

        patient, devices, current = await system.db.read(read)
        common, advanced = overrides.choices(
            thresholds_for(pathway_detection(system.pathways, patient.pathway_id), {}),
            patient_thresholds(
                system.pathways, patient.pathway_id, patient.thresholds, patient.local_today()
            ),
        )
        await system.db.write(
            lambda conn: audit_access(conn, request, patient_id=patient_id, action="view", object="settings")
        )
        done_text = (
            messages.text(f"clinic.{done}", name=patient.display_name) if done in DONE and not error else None
        )
        return page(
            request,
            "clinic/patient_settings.html",
            patient=patient,
            devices=devices,
            pathways=_pathway_choices(system),
            zones=zone_groups(patient.timezone),
            error=error,
            done=done_text,
            confirm_discharge=confirm_discharge,
            overrides=[
                {
                    "key": o.key,
                    "name": word("threshold", o.key),
                    "value": formatting.setting(o.value),
                    "until": formatting.day(date.fromisoformat(o.until)) if o.until else None,
                    "in_force": o.in_force,
                }
                for o in current
            ],
            threshold_groups=[
                ("Veelgebruikt", [_choice(c) for c in common]),
                ("Geavanceerd (voor de beheerder)", [_choice(c) for c in advanced]),
            ],
            threshold_form=threshold_form or {},
        )

    async def _change(self, request: Request, system: System, patient_id: str, change, done: str) -> Response:
        """Run one audited change in the writer; a refusal shows the settings page with why."""
        try:
            await system.db.write(change)
        except Refusal as exc:
            if exc.status == 404:
                raise NotFoundException(exc.detail("nl")) from None
            response = await self._settings_page(request, system, patient_id, exc.detail("nl"))
            response.status_code = 422
            return response
        return Redirect(path=f"/clinic/patients/{patient_id}/settings?done={done}")

    @post("/patients/{patient_id:str}/settings", name="clinic:patient-settings-submit")
    async def settings_submit(self, request: Request, system: System, patient_id: str) -> Response:
        form = await request.form()
        pathway_id, anchor, reminder, zone = (
            str(form.get(k, "")).strip() for k in ("pathway_id", "anchor_date", "reminder_time", "timezone")
        )

        def change(conn) -> None:
            patient = _patient(system, conn, patient_id)
            if pathway_id not in system.pathway_ids:
                raise EnrolmentError(
                    "pathway.unknown",
                    value=repr(pathway_id[:80]),
                    known=", ".join(sorted(system.pathway_ids)),
                )
            day = enrolment.check_anchor(anchor, today=patient.local_today(), enrolled_on=patient.enrolled_on)
            enrolment.change_schedule(
                conn,
                patient_id,
                pathway_id=pathway_id,
                anchor_date=day,
                reminder_time=reminder,
                timezone=zone or patient.timezone,
            )
            _replan(conn, system, patient_id)
            audit_access(
                conn,
                request,
                patient_id=patient_id,
                action="change_settings",
                object=f"pathway={pathway_id} anchor={anchor} reminder={reminder} timezone={zone}",
            )

        return await self._change(request, system, patient_id, change, "saved")

    @post("/patients/{patient_id:str}/name", name="clinic:patient-rename")
    async def rename(self, request: Request, system: System, patient_id: str) -> Response:
        form = await request.form()
        name = str(form.get("display_name", ""))

        def change(conn) -> None:
            before = _patient(system, conn, patient_id)
            after = enrolment.rename(conn, patient_id, name)
            if after.display_name != before.display_name:
                audit_access(conn, request, patient_id=patient_id, action="rename")

        return await self._change(request, system, patient_id, change, "renamed")

    @post("/patients/{patient_id:str}/discharge", name="clinic:patient-discharge")
    async def discharge(self, request: Request, system: System, patient_id: str) -> Response:
        form = await request.form()
        reason = str(form.get("reason", ""))
        if form.get("confirm") != "yes":
            # A second step, without script: stopping the monitoring is asked once more.
            return await self._settings_page(request, system, patient_id, None, confirm_discharge=reason)

        def change(conn) -> None:
            _patient(system, conn, patient_id)
            enrolment.discharge(conn, patient_id, reason)
            _replan(conn, system, patient_id)
            audit_access(conn, request, patient_id=patient_id, action="discharge")

        return await self._change(request, system, patient_id, change, "discharged")

    @post("/patients/{patient_id:str}/resume", name="clinic:patient-resume")
    async def resume(self, request: Request, system: System, patient_id: str) -> Response:
        def change(conn) -> None:
            _patient(system, conn, patient_id)
            enrolment.resume(conn, patient_id)
            _replan(conn, system, patient_id)
            audit_access(conn, request, patient_id=patient_id, action="resume")

        return await self._change(request, system, patient_id, change, "resumed")

    @post("/patients/{patient_id:str}/devices/revoke", name="clinic:revoke-devices")
    async def revoke_devices(self, request: Request, system: System, patient_id: str) -> Response:
        def revoke(conn) -> None:
            enrolment.revoke_patient_devices(conn, patient_id)
            audit_access(conn, request, patient_id=patient_id, action="revoke_devices")

        await system.db.write(revoke)
        return Redirect(path=f"/clinic/patients/{patient_id}/settings")

    @post("/patients/{patient_id:str}/thresholds", name="clinic:patient-thresholds")
    async def thresholds_submit(self, request: Request, system: System, patient_id: str) -> Response:
        """Set (or with clear=1 remove) one detection override of this patient, audited; from
        the settings page or the timeline (back=timeline). A refusal shows the settings page."""
        form = await request.form()
        key = str(form.get("key", "")).strip()
        back = _back(patient_id, str(form.get("back", "")))

        def change(conn) -> None:
            today = _patient(system, conn, patient_id).local_today()
            if form.get("clear") == "1":
                if overrides.clear_override(conn, patient_id, key):
                    audit_access(conn, request, patient_id=patient_id, action="clear_threshold", object=key)
                return
            value = overrides.parse_value(key, str(form.get("value", "")))
            until = overrides.parse_until(key, str(form.get("until", "")), today)
            overrides.set_override(conn, patient_id, key, value, until, today)
            audit_access(
                conn,
                request,
                patient_id=patient_id,
                action="set_threshold",
                object=overrides.describe(key, value, until),
            )

        try:
            await system.db.write(change)
        except enrolment.NoSuchPatient as exc:
            raise NotFoundException(exc.detail("nl")) from None
        except overrides.OverrideError as exc:
            # The page names the threshold in words, as its list does (the CLI names the key).
            params = (
                {**exc.params, "key": word("threshold", exc.params["key"])} if "key" in exc.params else {}
            )
            said = messages.text(exc.key, "nl", **params) if params else exc.detail("nl")
            # As every settings form: the settings page with why (422) and the form as it was
            # sent, so nothing typed is lost (a reload sends it again and is refused again).
            kept = {k: str(form.get(k, ""))[:40] for k in ("key", "value", "until")}
            response = await self._settings_page(request, system, patient_id, said, threshold_form=kept)
            response.status_code = 422
            return response
        return Redirect(path=back)


def _back(patient_id: str, back: str) -> str:
    """Where a saved threshold returns to: the timeline, the alert page it was set from (which
    then confirms it, #expected-saved), else the settings page."""
    if back == "timeline":
        return f"/clinic/patients/{patient_id}"
    alert = back.removeprefix("alert-")
    if back.startswith("alert-") and alert.isdigit() and len(alert) < 19:
        return f"/clinic/alerts/{alert}?saved=expected#expected-saved"
    return f"/clinic/patients/{patient_id}/settings"


def _shown(key: str, value: float) -> str:
    return "geen" if key == overrides.EXPECTED and not value else formatting.setting(value)


def _choice(c: overrides.Choice) -> dict[str, str]:
    """One option of the threshold form, with its hint: now, the pathway's, what may be set."""
    return {
        "key": c.key,
        "name": word("threshold", c.key),
        "hint": f"nu {_shown(c.key, c.current)} · zorgpad {_shown(c.key, c.pathway)}"
        f" · toegestaan {c.low} tot en met {c.high}",
    }


def _query(values: dict[str, Any]) -> str:
    """The list's address for these filters (defaults left out)."""
    defaults = {"q": "", "pathway": "", "status": "active", "sort": "name", "page": 1}
    kept = {k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}
    return "/clinic/patients" + (f"?{urlencode(kept)}" if kept else "")
