"""Clinic pages (`/clinic`): sign-in, patients and enrolment, accounts, the audit trail.

Every page needs a clinician session (server-side, cookie `pw_session`); every form carries
the session's CSRF token; every read or change of a patient's data is audit-logged.
Other clinic areas (the alert inbox, the patient timeline, exports) add their own
controllers with the same guard (`requires_clinician`) and helpers (`page`, `audit_access`).
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import segno
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect, Template

from backend.alerts import overrides
from backend.patients import enrolment
from backend.patients.enrolment import EnrolmentError
from backend.platform import accounts, audit, messages
from backend.platform.accounts import AccountError, Session
from backend.platform.messages import Refusal
from backend.platform.storage import utcnow
from backend.web.api import client_address, services_of

SESSION_COOKIE = "pw_session"
MAX_SEARCH = 100
LOGIN_CSRF_COOKIE = "pw_login_csrf"


# -- session, guards, CSRF ----------------------------------------------------------------
def current_session(request: ASGIConnection) -> Session | None:
    if "pw_session" not in request.scope.setdefault("state", {}):
        services = request.app.state.services
        token = request.cookies.get(SESSION_COOKIE)
        request.scope["state"]["pw_session"] = accounts.load_session(services.db.reader, token)
    return request.scope["state"]["pw_session"]


def requires_clinician(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if current_session(connection) is None:
        raise NotAuthorizedException("Sign in to see the clinic pages.")


def requires_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    session = current_session(connection)
    if session is None:
        raise NotAuthorizedException("Sign in to see the clinic pages.")
    if session.user.role != "admin":
        raise PermissionDeniedException("Only an administrator may do this.")


async def check_csrf(request: Request) -> None:
    """before_request for every clinic form: the posted csrf_token must match the session's."""
    if request.method != "POST":
        return
    session = current_session(request)
    form = await request.form()
    if session is None or not accounts.csrf_ok(session, form.get("csrf_token")):
        raise PermissionDeniedException(
            "This form has expired or did not come from this site. Reload the page and try again."
        )


def session_of(request: Request) -> Session:
    session = current_session(request)
    assert session is not None  # the guard ran
    return session


def page(request: Request, name: str, /, **context: Any) -> Template:
    """Render a clinic template with what every page needs (user, CSRF token, nav counts)."""
    session = current_session(request)
    services = services_of(request)
    counts = nav_counts(services) if session else {}
    return Template(
        template_name=name,
        context={
            "user": session.user if session else None,
            "csrf_token": session.csrf_token if session else "",
            "nav": counts,
            "lacking_text": services.library.lacking_text() if session else [],
            **context,
        },
    )


def nav_counts(services: Any) -> dict[str, int]:
    row = services.db.query_one(
        "SELECT count(*) AS open, sum(severity = 'urgent') AS urgent FROM alerts"
        " WHERE status IN ('open', 'acknowledged')"
    )
    return {"open": row["open"] or 0, "urgent": row["urgent"] or 0} if row else {}


def audit_access(
    conn,
    request: Request,
    *,
    patient_id: str | None,
    action: str,
    object: str | None = None,  # noqa: A002
) -> None:
    """Log a clinician's access to patient data (NEN 7513), inside a write transaction."""
    session = session_of(request)
    audit.record(
        conn,
        user_id=session.user.id,
        user_email=session.user.email,
        role=session.user.role,
        patient_id=patient_id,
        action=action,
        object=object,
        source=client_address(request),
    )


def audit_shown(
    conn,
    request: Request,
    patient_ids: Iterable[str],
    *,
    action: str,
    object: str | None = None,  # noqa: A002
) -> None:
    """Log a list or export (NEN 7513): one row for every patient whose data it showed, so
    each patient's access history holds it; one row without a patient when it showed none."""
    shown = list(dict.fromkeys(patient_ids))
    for patient_id in shown or [None]:
        audit_access(conn, request, patient_id=patient_id, action=action, object=object)


def _duration(seconds: int) -> str:
    if seconds < 120:
        return messages.text("duration.seconds", n=seconds)
    return messages.text("duration.minutes", n=round(seconds / 60))


def _cookie(request: Request, key: str, value: str, *, max_age: int | None) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path="/clinic",
        httponly=True,
        samesite="strict",
        secure=services_of(request).settings.secure_cookies,
        max_age=max_age,
    )


# -- sign in and out ----------------------------------------------------------------------
class AuthController(Controller):
    path = "/clinic"
    include_in_schema = False

    @get("/login", name="clinic:login")
    async def login_form(self, request: Request) -> Response:
        # No ?error= text from the URL: a page of this site must show only what it chose to say.
        token = secrets.token_urlsafe(24)
        response = page(request, "clinic/login.html", login_csrf=token, error=None)
        response.cookies.append(_cookie(request, LOGIN_CSRF_COOKIE, token, max_age=3600))
        return response

    @post("/login", name="clinic:login-submit")
    async def login(self, request: Request) -> Response:
        services = services_of(request)
        form = await request.form()
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie_token or not secrets.compare_digest(cookie_token, str(form.get("login_csrf", ""))):
            return self._again(request, messages.text("login.form_expired"), 403)
        gate = services.verify_gate
        if gate.locked():
            response = self._again(request, messages.text("login.busy"), 503)
            response.headers["Retry-After"] = "2"
            return response
        async with gate:
            return await self._sign_in(request, email, password)

    async def _sign_in(self, request: Request, email: str, password: str) -> Response:
        services = services_of(request)
        settings = services.settings
        now = utcnow()
        window = timedelta(minutes=settings.login_lockout_minutes)
        account_key, address_key = f"login:{email.lower()}", f"login-ip:{client_address(request)}"
        rules = [
            accounts.Rule(account_key, settings.login_max_failures, window),
            # An address may be a whole hospital behind one NAT: slow it down, never lock it.
            accounts.Rule(address_key, settings.login_max_failures * 4, window, slow=True),
        ]
        until = await services.db.write(lambda conn: accounts.reserve_attempt(conn, rules, now))
        if until is not None:
            wait = max(1, math.ceil((until - now).total_seconds()))
            response = self._again(request, messages.text("login.throttled", wait=_duration(wait)), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        candidate = accounts.login_candidate(services.db.reader, email)
        right, rehash = await asyncio.to_thread(accounts.password_matches, candidate, password)

        def signed_in(conn):
            if candidate is None or not right or not accounts.still_valid(conn, candidate, rehash):
                return None
            accounts.attempt_succeeded(conn, clear=account_key, uncount=address_key)
            return accounts.create_session(
                conn, candidate.user, hours=settings.session_hours, source=client_address(request)
            )

        result = await services.db.write(signed_in) if right else None
        if result is None:
            return self._again(request, messages.text("login.wrong"), 401)
        token, _session = result
        response = Redirect(path="/clinic/")
        response.cookies.append(
            _cookie(request, SESSION_COOKIE, token, max_age=settings.session_hours * 3600)
        )
        response.cookies.append(_cookie(request, LOGIN_CSRF_COOKIE, "", max_age=0))
        return response

    def _again(self, request: Request, error: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        response = page(request, "clinic/login.html", login_csrf=token, error=error)
        response.status_code = status
        response.cookies.append(_cookie(request, LOGIN_CSRF_COOKIE, token, max_age=3600))
        return response

    @post("/logout", name="clinic:logout", guards=[requires_clinician], before_request=check_csrf)
    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        await services_of(request).db.write(lambda conn: accounts.end_session(conn, token))
        response = Redirect(path="/clinic/login")
        response.cookies.append(_cookie(request, SESSION_COOKIE, "", max_age=0))
        return response


# -- patients and enrolment ---------------------------------------------------------------
def _pathway_choices(services) -> list[tuple[str, str]]:
    return [(pid, p.title.get("nl", pid)) for pid, p in sorted(services.pathways.items())]


class PatientsController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False

    @get("/patients", name="clinic:patients")
    async def patients(self, request: Request, q: str | None = None) -> Template:
        services = services_of(request)
        sql = (
            "SELECT p.id, p.display_name, p.pathway_id, p.enrolled_at, p.status,"
            " (SELECT max(local_date) FROM responses r WHERE r.patient_id = p.id) AS last_entry,"
            " (SELECT count(*) FROM alerts a WHERE a.patient_id = p.id"
            "  AND a.status IN ('open', 'acknowledged')) AS open_alerts"
            " FROM patients p"
        )
        params: list[Any] = []
        if q and len(q) > MAX_SEARCH:
            # SQLite refuses a LIKE pattern beyond 50 000 bytes; a name is at most 80 characters.
            raise Refusal("clinic.search_too_long", 400, max=MAX_SEARCH)
        if q:
            sql += " WHERE p.display_name LIKE ? OR p.id = ?"
            params += [f"%{q.strip()}%", q.strip()]
        sql += " ORDER BY p.status, p.display_name LIMIT 200"
        rows = services.db.query(sql, params)
        await services.db.write(
            lambda conn: audit_shown(
                conn,
                request,
                (r["id"] for r in rows),
                action="list_patients",
                object=f"search={q!r}" if q else None,
            )
        )
        return page(
            request,
            "clinic/patients.html",
            patients=rows,
            q=q or "",
            pathways=dict(_pathway_choices(services)),
        )

    @get("/patients/new", name="clinic:enrol")
    async def enrol_form(self, request: Request) -> Template:
        services = services_of(request)
        return page(
            request,
            "clinic/enrol.html",
            pathways=_pathway_choices(services),
            form={},
            errors=None,
            today=date.today().isoformat(),
        )

    @post("/patients", name="clinic:enrol-submit")
    async def enrol(self, request: Request) -> Response:
        services = services_of(request)
        form = await request.form()
        session = session_of(request)
        values = {
            k: str(form.get(k, "")).strip()
            for k in ("display_name", "pathway_id", "timezone", "anchor_date", "reminder_time")
        }
        errors = None
        try:
            anchor = (
                enrolment.check_anchor(values["anchor_date"], today=utcnow().date())
                if values["anchor_date"]
                else None
            )
        except EnrolmentError as exc:
            anchor, errors = None, str(exc)

        def create(conn):
            patient, code, expires = enrolment.create_patient(
                conn,
                display_name=values["display_name"],
                pathway_id=values["pathway_id"],
                known_pathways=services.pathway_ids,
                timezone=values["timezone"] or "Europe/Amsterdam",
                anchor_date=anchor,
                reminder_time=values["reminder_time"] or "20:00",
                created_by=session.user.id,
                code_days=services.settings.enrol_code_days,
            )
            from backend.tasks import scheduler

            scheduler.materialise(conn, patient.id, utcnow(), services.pathways, settings=services.settings)
            audit_access(
                conn, request, patient_id=patient.id, action="enrol", object=f"pathway={patient.pathway_id}"
            )
            return patient, code, expires

        if errors is None:
            try:
                patient, code, expires = await services.db.write(create)
            except EnrolmentError as exc:
                errors = str(exc)
        if errors:
            response = page(
                request,
                "clinic/enrol.html",
                pathways=_pathway_choices(services),
                form=values,
                errors=errors,
                today=date.today().isoformat(),
            )
            response.status_code = 422
            return response
        return self._code_page(request, patient.id, patient.display_name, code, expires)

    def _code_page(self, request: Request, patient_id: str, name: str, code: str, expires: str):
        link = f"{services_of(request).settings.base_url}/#code={code}"
        qr = segno.make(link, error="m").svg_inline(
            scale=5, dark="#000", light="#fff", title="QR-code voor de aanmelding"
        )
        return page(
            request,
            "clinic/code.html",
            patient_id=patient_id,
            name=name,
            code=code,
            expires=expires,
            link=link,
            qr=qr,
        )

    @post("/patients/{patient_id:str}/code", name="clinic:new-code")
    async def new_code(self, request: Request, patient_id: str) -> Response:
        services = services_of(request)

        def make(conn):
            patient = enrolment.get_patient(conn, patient_id)
            if patient is None:
                return None
            audit_access(conn, request, patient_id=patient_id, action="new_enrolment_code")
            return patient, *enrolment.new_code(conn, patient_id, days=services.settings.enrol_code_days)

        result = await services.db.write(make)
        if result is None:
            raise NotFoundException("No such patient.")
        patient, code, expires = result
        return self._code_page(request, patient.id, patient.display_name, code, expires)

    @get("/patients/{patient_id:str}/settings", name="clinic:patient-settings")
    async def settings_form(self, request: Request, patient_id: str) -> Template:
        return await self._settings_page(request, patient_id, None)

    async def _settings_page(self, request: Request, patient_id: str, error: str | None) -> Template:
        """The settings page; `error` is the server's own message (never text from the URL)."""
        services = services_of(request)
        patient = enrolment.get_patient(services.db.reader, patient_id)
        if patient is None:
            raise NotFoundException("No such patient.")
        devices = services.db.query(
            "SELECT created_at, revoked_at FROM devices WHERE patient_id = ? ORDER BY created_at",
            (patient_id,),
        )
        await services.db.write(
            lambda conn: audit_access(conn, request, patient_id=patient_id, action="view", object="settings")
        )
        return page(
            request,
            "clinic/patient_settings.html",
            patient=patient,
            devices=devices,
            pathways=_pathway_choices(services),
            error=error,
            overrides=overrides.listing(services.db.reader, patient_id, patient.local_today()),
            override_keys=overrides.KEYS,
        )

    @post("/patients/{patient_id:str}/settings", name="clinic:patient-settings-submit")
    async def settings_submit(self, request: Request, patient_id: str) -> Response:
        services = services_of(request)
        form = await request.form()
        pathway_id = str(form.get("pathway_id", "")).strip()
        anchor = str(form.get("anchor_date", "")).strip()
        reminder = str(form.get("reminder_time", "")).strip()

        def change(conn):
            patient = enrolment.get_patient(conn, patient_id)
            if patient is None:
                raise NotFoundException("No such patient.")
            if pathway_id not in services.pathway_ids:
                raise EnrolmentError(
                    "pathway.unknown",
                    value=repr(pathway_id[:80]),
                    known=", ".join(sorted(services.pathway_ids)),
                )
            day = enrolment.check_anchor(
                anchor,
                today=patient.local_today(),
                enrolled_on=date.fromisoformat(patient.enrolled_at[:10]),
            )
            enrolment.check_reminder_time(reminder)
            conn.execute(
                "UPDATE patients SET pathway_id = ?, anchor_date = ?, reminder_time = ? WHERE id = ?",
                (pathway_id, day.isoformat(), reminder, patient_id),
            )
            from backend.tasks import scheduler

            # The future schedule follows the change; the past stays as it was.
            scheduler.materialise(conn, patient.id, utcnow(), services.pathways, settings=services.settings)
            audit_access(
                conn,
                request,
                patient_id=patient_id,
                action="change_settings",
                object=f"pathway={pathway_id} anchor={anchor} reminder={reminder}",
            )

        try:
            await services.db.write(change)
        except EnrolmentError as exc:
            response = await self._settings_page(request, patient_id, str(exc))
            response.status_code = 422
            return response
        return Redirect(path=f"/clinic/patients/{patient_id}/settings")

    @post("/patients/{patient_id:str}/devices/revoke", name="clinic:revoke-devices")
    async def revoke_devices(self, request: Request, patient_id: str) -> Response:
        services = services_of(request)

        def revoke(conn):
            enrolment.revoke_patient_devices(conn, patient_id)
            audit_access(conn, request, patient_id=patient_id, action="revoke_devices")

        await services.db.write(revoke)
        return Redirect(path=f"/clinic/patients/{patient_id}/settings")

    @post("/patients/{patient_id:str}/thresholds", name="clinic:patient-thresholds")
    async def thresholds_submit(self, request: Request, patient_id: str) -> Response:
        """Set (or with clear=1 remove) one detection override of this patient, audited; from
        the settings page or the timeline (back=timeline). A refusal shows the settings page."""
        services = services_of(request)
        form = await request.form()
        key = str(form.get("key", "")).strip()
        back = f"/clinic/patients/{patient_id}" + ("" if form.get("back") == "timeline" else "/settings")

        def change(conn) -> None:
            patient = enrolment.get_patient(conn, patient_id)
            if patient is None:
                raise NotFoundException("No such patient.")
            today = patient.local_today()
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
            await services.db.write(change)
        except overrides.OverrideError as exc:
            response = await self._settings_page(request, patient_id, str(exc))
            response.status_code = 422
            return response
        return Redirect(path=back)


# -- accounts -----------------------------------------------------------------------------
class AccountsController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False

    @get("/password", name="clinic:password")
    async def password_form(self, request: Request) -> Template:
        return page(request, "clinic/password.html", error=None, done=False)

    @post("/password", name="clinic:password-submit")
    async def password(self, request: Request) -> Response:
        services = services_of(request)
        form = await request.form()
        user = session_of(request).user
        old, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
        if new != again:
            response = page(
                request, "clinic/password.html", error="The two new passwords differ.", done=False
            )
            response.status_code = 422
            return response
        try:
            candidate = accounts.login_candidate(services.db.reader, user.email)
            new_hash = await asyncio.to_thread(accounts.check_new_password, user, candidate, old, new)
            await services.db.write(lambda conn: accounts.set_password_hash(conn, user.id, new_hash))
        except AccountError as exc:
            response = page(request, "clinic/password.html", error=str(exc), done=False)
            response.status_code = 422
            return response
        # Every session ended, this one too: sign in again with the new password.
        response = Redirect(path="/clinic/login")
        response.cookies.append(_cookie(request, SESSION_COOKIE, "", max_age=0))
        return response

    @get("/push/key", name="clinic:push-key")
    async def push_key(self, request: Request) -> dict[str, str]:
        vapid = services_of(request).vapid
        if vapid is None:
            raise HTTPException(status_code=503, detail="Push messages are not set up here.")
        return {"key": vapid.public_key_b64}

    @post("/push/subscriptions", name="clinic:push-subscribe", status_code=201)
    async def push_subscribe(self, request: Request) -> dict[str, str]:
        """This browser gets a push when an urgent alert escalates (opt-in per clinician)."""
        from backend.push import endpoints, subscriptions

        form = await request.form()
        services = services_of(request)
        allow_loopback = services.settings.push_allow_loopback
        try:
            subscription = json.loads(str(form.get("subscription", "")))
            if not isinstance(subscription, dict):
                raise ValueError("geen JSON-object")
            await endpoints.check_endpoint_resolves(
                subscription.get("endpoint"), allow_loopback=allow_loopback
            )
            user_id = session_of(request).user.id
            await services.db.write(
                lambda conn: subscriptions.save_subscription(
                    conn, user_id=user_id, subscription=subscription, allow_loopback=allow_loopback
                )
            )
        except subscriptions.EndpointTaken as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise HTTPException(status_code=422, detail=f"subscription: {exc}") from None
        return {"status": "subscribed"}

    @get("/users", name="clinic:users", guards=[requires_admin])
    async def users(self, request: Request) -> Template:
        return self._users_page(request, error=None, form={}, status=200)

    def _users_page(self, request: Request, *, error: str | None, form: dict, status: int) -> Template:
        users = accounts.accounts_list(services_of(request).db.reader)
        response = page(request, "clinic/users.html", users=users, error=error, form=form)
        response.status_code = status
        return response

    @post("/users", name="clinic:users-submit", guards=[requires_admin])
    async def add_user(self, request: Request) -> Response:
        services = services_of(request)
        form = await request.form()
        values = {k: str(form.get(k, "")).strip() for k in ("email", "name", "role")}
        password = str(form.get("password", ""))
        try:
            await services.db.write(lambda conn: accounts.add_user(conn, password=password, **values))
        except AccountError as exc:
            return self._users_page(request, error=str(exc), form=values, status=422)
        return Redirect(path="/clinic/users")

    @post("/users/{user_id:int}/{action:str}", name="clinic:user-change", guards=[requires_admin])
    async def change_user(self, request: Request, user_id: int, action: str) -> Response:
        """Disable, enable, re-role or give a new password to an account (audited)."""
        services = services_of(request)
        form = await request.form()
        admin = session_of(request).user
        row = (
            services.db.query_one("SELECT email FROM users WHERE id = ?", (user_id,))
            if 0 < user_id < 2**63
            else None
        )
        if row is None or action not in ("disable", "enable", "role", "passwd"):
            raise NotFoundException("Dit account bestaat niet.")
        email = row["email"]
        role = str(form.get("role", ""))
        try:
            if action == "passwd":
                account = accounts.find_account(services.db.reader, email)
                new_hash = await asyncio.to_thread(
                    accounts.new_password_hash, account, str(form.get("password", ""))
                )
            act = {
                "disable": lambda conn: accounts.disable_user(conn, email),
                "enable": lambda conn: accounts.enable_user(conn, email),
                "role": lambda conn: accounts.set_role(conn, email, role),
                "passwd": lambda conn: (
                    accounts.set_password_hash(conn, user_id, new_hash),
                    accounts.find_account(conn, email),
                )[1],
            }[action]

            def change(conn):
                account = act(conn)
                accounts.audit_change(conn, admin, f"user_{action}", account, source=client_address(request))

            await services.db.write(change)
        except AccountError as exc:
            return self._users_page(request, error=str(exc), form={}, status=422)
        if user_id == admin.id and action in ("disable", "passwd"):
            # Their own sessions ended with it, this one too.
            response = Redirect(path="/clinic/login")
            response.cookies.append(_cookie(request, SESSION_COOKIE, "", max_age=0))
            return response
        return Redirect(path="/clinic/users")

    @get("/audit/{patient_id:str}", name="clinic:audit", guards=[requires_admin])
    async def audit_page(self, request: Request, patient_id: str) -> Template:
        services = services_of(request)
        patient = enrolment.get_patient(services.db.reader, patient_id)
        if patient is None:
            raise NotFoundException("No such patient.")
        rows = audit.history(services.db.reader, patient_id)
        await services.db.write(
            lambda conn: audit_access(conn, request, patient_id=patient_id, action="view", object="audit_log")
        )
        return page(request, "clinic/audit.html", patient=patient, rows=rows)


def clinic_exception_handler(request: Request, exc: HTTPException) -> Response:
    """HTML answers for the clinic: a sign-in redirect for 401, a readable page otherwise."""
    if exc.status_code == 401:
        return Redirect(path="/clinic/login")
    response = page(request, "clinic/error.html", status=exc.status_code, detail=exc.detail)
    response.status_code = exc.status_code
    return response
