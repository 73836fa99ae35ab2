"""Signing in and out of the clinic: throttled password checks, fresh sessions, and the way
back to a form that was posted after the session ran out."""

from __future__ import annotations

import asyncio
import math
import secrets
from datetime import timedelta

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from backend.platform import accounts, formatting, messages
from backend.platform.storage import utcnow
from backend.system import System
from backend.web.api import client_address
from backend.web.clinic import (
    HELD_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    cookie,
    held_form_waiting,
    page,
    requires_clinician,
    safe_page,
    signed_out,
)


def wait_text(seconds: int) -> str:
    """ "1 seconde", "40 seconden", "3 minuten" (Babel's plural rule)."""
    if seconds < 120:
        return formatting.plural(seconds, "seconde", "seconden")
    return formatting.plural(round(seconds / 60), "minuut", "minuten")


class AuthController(Controller):
    path = "/clinic"
    include_in_schema = False

    @get("/login", name="clinic:login")
    async def login_form(self, request: Request) -> Response:
        # No ?error= text from the URL: a page of this site must show only what it chose to say.
        return await self._form(request, None, 200)

    @post("/login", name="clinic:login-submit")
    async def login(self, request: Request, system: System) -> Response:
        form = await request.form()
        email = str(form.get("email", "")).strip()[:254]
        password = str(form.get("password", ""))
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie_token or not secrets.compare_digest(cookie_token, str(form.get("login_csrf", ""))):
            return await self._form(request, messages.text("login.form_expired"), 403, email)
        gate = system.verify_gate
        if gate.locked():
            response = await self._form(request, messages.text("login.busy"), 503, email)
            response.headers["Retry-After"] = "2"
            return response
        async with gate:
            return await self._sign_in(request, system, email, password, str(form.get("next", "")))

    async def _sign_in(
        self, request: Request, system: System, email: str, password: str, next_page: str
    ) -> Response:
        settings = system.settings
        now = utcnow()
        window = timedelta(minutes=settings.login_lockout_minutes)
        account_key, address_key = accounts.login_key(email), f"login-ip:{client_address(request)}"
        rules = [
            accounts.Rule(account_key, settings.login_max_failures, window),
            # An address may be a whole hospital behind one NAT: slow it down, never lock it.
            accounts.Rule(address_key, settings.login_max_failures * 4, window, slow=True),
        ]
        until = await system.db.write(lambda conn: accounts.reserve_attempt(conn, rules, now))
        if until is not None:
            wait = max(1, math.ceil((until - now).total_seconds()))
            response = await self._form(
                request, messages.text("login.throttled", wait=wait_text(wait)), 429, email
            )
            response.headers["Retry-After"] = str(wait)
            return response
        candidate = await system.db.read(lambda conn: accounts.login_candidate(conn, email))
        right, rehash = await asyncio.to_thread(accounts.password_matches, candidate, password)

        def signed_in(conn):
            if candidate is None or not right or not accounts.still_valid(conn, candidate, rehash):
                return None
            accounts.attempt_succeeded(conn, clear=account_key, uncount=address_key)
            return accounts.create_session(
                conn, candidate.user, hours=settings.session_hours, source=client_address(request)
            )

        result = await system.db.write(signed_in) if right else None
        if result is None:
            return await self._form(request, messages.text("login.wrong"), 401, email)
        token, session = result
        # Back to the form that was posted after the session ran out, if it was this clinician's.
        held = await held_form_waiting(request)
        # Else to the page that was asked for when signed out (?next=, a clinic page only).
        asked = safe_page(next_page) or "/clinic/"
        back = held.page if held is not None and held.user_id == session.user.id else asked
        response = Redirect(path=back)
        response.cookies.append(cookie(request, SESSION_COOKIE, token, max_age=settings.session_hours * 3600))
        response.cookies.append(cookie(request, LOGIN_CSRF_COOKIE, "", max_age=0))
        if held is None or held.user_id != session.user.id:
            response.cookies.append(cookie(request, HELD_COOKIE, "", max_age=0))
        return response

    async def _form(self, request: Request, error: str | None, status: int, email: str = "") -> Response:
        """The sign-in page: the server's own message (never text from the URL); the e-mail
        address typed stays in its field."""
        token = secrets.token_urlsafe(24)
        held = await held_form_waiting(request)
        form = await request.form() if request.method == "POST" else {}
        next_page = safe_page(str(form.get("next") or request.query_params.get("next") or ""))
        response = page(
            request,
            "clinic/login.html",
            next_page=next_page or "",
            login_csrf=token,
            error=error,
            email=email,
            notice=messages.text("clinic.session_expired") if held is not None else None,
        )
        response.status_code = status
        response.cookies.append(cookie(request, LOGIN_CSRF_COOKIE, token, max_age=3600))
        return response

    @post("/logout", name="clinic:logout", guards=[requires_clinician], before_request=check_csrf)
    async def logout(self, request: Request, system: System) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        await system.db.write(lambda conn: accounts.end_session(conn, token))
        return signed_out(request)
