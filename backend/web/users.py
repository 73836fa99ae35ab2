"""The clinician's own account (password, push opt-in) and the admin's pages: accounts and a
patient's audit log (NEN 7513)."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from backend.alerts import store as alerts_store
from backend.patients import enrolment
from backend.platform import accounts, audit, formatting, messages
from backend.platform.accounts import AccountError
from backend.platform.messages import Refusal
from backend.platform.storage import parse_iso
from backend.platform.words import WORDS, word
from backend.system import System
from backend.web.api import client_address
from backend.web.clinic import (
    audit_access,
    check_csrf,
    page,
    requires_admin,
    requires_clinician,
    session_of,
    signed_out,
)

# The audit page shows this many rows at a time, with "Vorige/Volgende" (keyset paging).
AUDIT_PAGE = 100


def _day(text: str) -> str:
    try:
        return formatting.day(date.fromisoformat(text))
    except ValueError:
        return "begin" if text == "start" else "eind" if text == "end" else text


def audit_object(
    action: str, obj: str | None, pathways: dict[str, str], alerts: dict[int, Any] | None = None
) -> str:
    """What an audit row was about, in the clinic's words (the stored text keeps the codes:
    "alert 25" is "melding van 2 dec. 2026 (pijn)" by its day and kind, from `alerts` (id ->
    row with category and opened_on), "pathway=chronic-pain reminder=20:00" the pathway's
    name)."""
    if not obj:
        return ""
    key = f"audit.object.{obj}"
    if key in messages.MESSAGES:
        return messages.text(key)
    kind, _, rest = obj.partition(" ")
    if kind == "alert" and rest.isdigit():
        alert = (alerts or {}).get(int(rest))
        if alert is None:
            return "de melding"
        return f"melding van {_day(alert['opened_on'])} ({word('category', alert['category'])})"
    if obj.endswith(" alerts") and kind.isdigit():
        return formatting.plural(int(kind), "melding", "meldingen")
    if obj.startswith("timeline "):
        return "tijdlijn, laatste " + formatting.plural(int(obj.split()[1]), "dag", "dagen")
    if obj.startswith(("consult summary ", "wide csv dialect ")):
        parts = obj.split()
        span = parts[-1].split("..")
        what = (
            "overzicht"
            if parts[0] == "consult"
            else f"gegevens als CSV ({'Nederlandse Excel' if parts[3] == 'nl' else 'standaard'})"
        )
        return f"{what}, {_day(span[0])} tot en met {_day(span[-1])}"
    if obj.startswith(("cohort summary ", "cohort csv ")):
        name = pathways.get(obj.split()[-1], "zorgpad")
        return f"cohortoverzicht {name}" if obj.startswith("cohort summary") else f"cohort als CSV: {name}"
    if obj.startswith("pathway="):
        fields = dict(part.partition("=")[::2] for part in obj.split())
        said = [pathways.get(fields.get("pathway", ""), "zorgpad")]
        if fields.get("reminder"):
            said.append(f"herinnering {fields['reminder']}")
        if fields.get("timezone"):
            said.append(f"tijdzone {formatting.zone_place(fields['timezone'])}")
        return ", ".join(said)
    if obj.startswith("search="):
        return "gezocht"
    if action in ("set_threshold", "clear_threshold"):
        key, _, value = obj.partition("=")
        if not value:
            return word("threshold", key)
        number, _, until = value.partition(" ")
        until = (
            "blijvend" if until in ("", "(blijvend)") else f"tot en met {_day(until.removeprefix('tot '))}"
        )
        return f"{word('threshold', key)}: {formatting.setting(float(number))}, {until}"
    if action == "list_alerts":
        return "met filter"
    return obj


def audit_rows(
    rows: list[Any],
    time_zone: str,
    pathways: dict[str, str] | None = None,
    alerts: dict[int, Any] | None = None,
) -> list[dict[str, str]]:
    """The audit log in the clinic's words: local time, what was done, by whom in which role."""
    return [
        {
            "at": formatting.moment(parse_iso(r["at"]), time_zone),
            "who": r["user_email"] or "—",
            "role": word("role", r["role"]) if r["role"] else "—",
            "action": word("action", r["action"]),
            "object": audit_object(r["action"], r["object"], pathways or {}, alerts),
            "source": r["source"] or "",
        }
        for r in rows
    ]


def alerts_named(conn: Any, patient_id: str, rows: list[Any]) -> dict[int, Any]:
    """The alerts the audit rows are about (id -> row with category and opened_on)."""
    ids = {int(o[6:]) for r in rows if (o := r["object"] or "").startswith("alert ") and o[6:].isdigit()}
    return {r["id"]: r for r in alerts_store.of_patient_by_id(conn, patient_id, sorted(ids))}


class AccountsController(Controller):
    path = "/clinic"
    guards = [requires_clinician]
    before_request = check_csrf
    include_in_schema = False

    @get("/password", name="clinic:password")
    async def password_form(self, request: Request) -> Template:
        return page(request, "clinic/password.html", error=None, done=False)

    @post("/password", name="clinic:password-submit")
    async def password(self, request: Request, system: System) -> Response:
        form = await request.form()
        user = session_of(request).user
        old, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
        try:
            if new != again:
                raise AccountError("account.passwords_differ")
            candidate = await system.db.read(lambda conn: accounts.login_candidate(conn, user.email))
            new_hash = await asyncio.to_thread(accounts.check_new_password, user, candidate, old, new)
            await system.db.write(lambda conn: accounts.set_password_hash(conn, user.id, new_hash))
        except AccountError as exc:
            response = page(request, "clinic/password.html", error=exc.detail("nl"), done=False)
            response.status_code = 422
            return response
        # Every session ended, this one too: sign in again with the new password.
        return signed_out(request)

    @get("/push/key", name="clinic:push-key")
    async def push_key(self, system: System) -> dict[str, str]:
        if system.vapid is None:
            raise Refusal("push.not_set_up", 503)
        return {"key": system.vapid.public_key_b64}

    @post("/push/subscriptions", name="clinic:push-subscribe", status_code=201)
    async def push_subscribe(self, request: Request, system: System) -> dict[str, str]:
        """This browser gets a push when an urgent alert escalates (opt-in per clinician)."""
        from backend.push import endpoints, subscriptions

        form = await request.form()
        allow_loopback = system.settings.push_allow_loopback
        try:
            subscription = json.loads(str(form.get("subscription", "")))
            if not isinstance(subscription, dict):
                raise ValueError("geen JSON-object")
            await endpoints.check_endpoint_resolves(
                subscription.get("endpoint"), allow_loopback=allow_loopback
            )
            user_id = session_of(request).user.id
            await system.db.write(
                lambda conn: subscriptions.save_subscription(
                    conn, user_id=user_id, subscription=subscription, allow_loopback=allow_loopback
                )
            )
        except Refusal:
            raise
        except (ValueError, TypeError):
            raise Refusal("push.subscription_invalid", 422) from None
        return {"status": "subscribed"}

    @get("/users", name="clinic:users", guards=[requires_admin])
    async def users(self, request: Request, system: System, done: str = "", email: str = "") -> Template:
        what = word("account_change", done) if done in WORDS["account_change"] else None
        notice = messages.text("account.changed", email=email[:254], what=what) if what and email else None
        return await self._users_page(request, system, error=None, form={}, status=200, notice=notice)

    async def _users_page(
        self, request: Request, system: System, *, error: str | None, form: dict, status: int, notice=None
    ) -> Template:
        users = await system.db.read(accounts.accounts_list)
        response = page(request, "clinic/users.html", users=users, error=error, form=form, notice=notice)
        response.status_code = status
        return response

    @post("/users", name="clinic:users-submit", guards=[requires_admin])
    async def add_user(self, request: Request, system: System) -> Response:
        form = await request.form()
        values = {k: str(form.get(k, "")).strip() for k in ("email", "name", "role")}
        password = str(form.get("password", ""))
        try:
            user = await system.db.write(lambda conn: accounts.add_user(conn, password=password, **values))
        except AccountError as exc:
            return await self._users_page(request, system, error=exc.detail("nl"), form=values, status=422)
        return Redirect(path="/clinic/users", query_params={"done": "added", "email": user.email})

    @post("/users/{user_id:int}/{action:str}", name="clinic:user-change", guards=[requires_admin])
    async def change_user(self, request: Request, system: System, user_id: int, action: str) -> Response:
        """Disable, enable, re-role or give a new password to an account (audited)."""
        form = await request.form()
        admin = session_of(request).user
        found = (
            await system.db.read(lambda conn: accounts.account_by_id(conn, user_id))
            if 0 < user_id < 2**63
            else None
        )
        if found is None or action not in ("disable", "enable", "role", "passwd"):
            raise NotFoundException(messages.text("clinic.no_account"))
        email = found.email
        role = str(form.get("role", ""))
        try:
            if action == "passwd":
                new_hash = await asyncio.to_thread(
                    accounts.new_password_hash, found, str(form.get("password", ""))
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

            await system.db.write(change)
        except AccountError as exc:
            return await self._users_page(request, system, error=exc.detail("nl"), form={}, status=422)
        if user_id == admin.id and action in ("disable", "passwd"):
            return signed_out(request)  # their own sessions ended with it, this one too
        return Redirect(path="/clinic/users", query_params={"done": action, "email": email})

    @get("/audit/{patient_id:str}", name="clinic:audit", guards=[requires_admin])
    async def audit_page(
        self,
        request: Request,
        system: System,
        patient_id: str,
        before: int | None = None,
        after: int | None = None,
    ) -> Template:
        # Keyset pages of AUDIT_PAGE rows, newest first; one more row says whether there is more.
        before = None if before is None else min(max(0, before), audit.MAX_ID)
        after = None if after is None or before is not None else min(max(0, after), audit.MAX_ID)

        def read(conn):
            rows = audit.history(conn, patient_id, AUDIT_PAGE + 1, before=before, after=after)
            if after is not None:  # the newer page: the extra row is at its newest end
                newer, rows = len(rows) > AUDIT_PAGE, rows[-AUDIT_PAGE:]
                older = bool(rows) and bool(audit.history(conn, patient_id, 1, before=rows[-1]["id"]))
            else:
                older, rows = len(rows) > AUDIT_PAGE, rows[:AUDIT_PAGE]
                newer = bool(rows) and bool(audit.history(conn, patient_id, 1, after=rows[0]["id"]))
            return (
                enrolment.get_patient(conn, patient_id),
                rows,
                newer,
                older,
                alerts_named(conn, patient_id, rows),
            )

        patient, rows, newer, older, alerts = await system.db.read(read)
        if patient is None:
            raise NotFoundException(messages.text("clinic.no_patient"))
        await system.db.write(
            lambda conn: audit_access(conn, request, patient_id=patient_id, action="view", object="audit_log")
        )
        return page(
            request,
            "clinic/audit.html",
            patient=patient,
            newer=rows[0]["id"] if rows and newer else None,
            older=rows[-1]["id"] if rows and older else None,
            page_size=AUDIT_PAGE,
            rows=audit_rows(
                rows,
                formatting.CLINIC_ZONE,
                {pid: p.title.get("nl", pid) for pid, p in system.pathways.items()},
                alerts,
            ),
        )
