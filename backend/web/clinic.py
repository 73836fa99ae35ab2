"""What every clinic page shares (`/clinic`): the session and its guards, CSRF, page rendering,
the audit of access, and the HTML answer to a refusal.

Every page needs a clinician session (server-side, cookie `SESSION_COOKIE`); every form carries
the session's CSRF token; every read or change of a patient's data is audit-logged. The areas
(sign-in: web/signin.py, patients: web/patients.py, accounts: web/users.py, the inbox, the
timeline, the consult pages) add their controllers with the guard `requires_clinician` and the
helpers `page` and `audit_access`.

A session ends after `session_hours` or `session_idle_minutes` without a request. A form posted
after that is not lost: it is held for its own clinician (accounts.hold_form), who signs in and
lands on the page it came from (every form's `_page`) with the text filled in again: by the
server (`kept` in the templates), so without JavaScript too; static/clinic.js covers the rest.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect, Template
from litestar.utils.scope.state import ScopeState

from backend.alerts import store as alerts_store
from backend.platform import accounts, audit, messages
from backend.platform.accounts import Session
from backend.platform.storage import iso, utcnow
from backend.web.api import client_address, services_of

SESSION_COOKIE = "pw_session"
HELD_COOKIE = "pw_held"
LOGIN_CSRF_COOKIE = "pw_login_csrf"
# Request state keys (the scope's "state"): the session of this request, a held form.
_SESSION = "clinic_session"
_RESTORE = "clinic_restore"
_HELD_TOKEN = "clinic_held_token"
# A clinic page's gzip (level 9 costs 4x the time for 10 % fewer bytes).
GZIP_LEVEL = 6
# An automatic refresh (static/inbox.js) says so in this header: it is not the clinician's
# activity, so it neither moves the session's idle clock on nor repeats the audit of a list.
REFRESH_HEADER = "x-pijnwacht-refresh"
REFRESH_AUDIT_MINUTES = 60
# Never held over a sign-in: secrets and the form's own bookkeeping.
_NOT_HELD = ("csrf_token", "login_csrf", "_page")


# -- session, guards, CSRF ----------------------------------------------------------------
def _read_session(conn: sqlite3.Connection, connection: ASGIConnection) -> Session | None:
    return accounts.load_session(
        conn,
        connection.cookies.get(SESSION_COOKIE),
        idle_minutes=services_of(connection).settings.session_idle_minutes,
    )


async def load_session(connection: ASGIConnection) -> Session | None:
    """This request's session, read once on the reader pool (never on the event loop)."""
    state = connection.scope.setdefault("state", {})
    if _SESSION not in state:
        state[_SESSION] = await services_of(connection).db.read(lambda conn: _read_session(conn, connection))
    return state[_SESSION]


def current_session(request: ASGIConnection) -> Session | None:
    """The session `load_session` read for this request (the guards and check_csrf do)."""
    return request.scope.get("state", {}).get(_SESSION)


async def requires_clinician(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    session = await load_session(connection)
    if session is None:
        await _hold_posted_form(connection)
        raise NotAuthorizedException(messages.text("clinic.sign_in"))
    services = services_of(connection)
    now = utcnow()
    if accounts.needs_touch(session, now) and not is_refresh(connection):
        token = connection.cookies.get(SESSION_COOKIE, "")
        await services.db.write(lambda conn: accounts.touch_session(conn, token, now))
    if connection.method == "GET" and (held_token := connection.cookies.get(HELD_COOKIE)):
        await _restore_held_form(connection, session, held_token)


def is_refresh(connection: ASGIConnection) -> bool:
    """An automatic refresh of a page, not a clinician's request (REFRESH_HEADER)."""
    return connection.headers.get(REFRESH_HEADER) == "1"


async def requires_admin(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    await requires_clinician(connection, handler)
    session = current_session(connection)
    if session is None or session.user.role != "admin":
        raise PermissionDeniedException(messages.text("clinic.admin_only"))


def safe_page(path: str | None) -> str | None:
    """A page of the clinic to send someone back to (never another site)."""
    if not path or len(path) > 500 or not path.startswith("/clinic/") or "\\" in path or "//" in path:
        return None
    if any(c <= " " or c == "\x7f" for c in path):  # no header tricks (CR/LF) or spaces
        return None
    return path


async def _hold_posted_form(connection: ASGIConnection) -> None:
    """A form posted after its session ran out: keep what was typed for that clinician."""
    if connection.method != "POST" or not isinstance(connection, Request):
        return
    services = services_of(connection)
    ended = connection.cookies.get(SESSION_COOKIE)
    user_id = await services.db.read(lambda conn: accounts.user_of_ended_session(conn, ended))
    if user_id is None:
        return
    form = await connection.form()
    fields = {
        k: v
        for k, v in form.items()
        if isinstance(v, str)
        and k not in _NOT_HELD
        and "password" not in k
        and k not in ("current", "new", "again")
    }
    if not any(v.strip() for v in fields.values()):
        return
    action = connection.url.path
    page_path = safe_page(str(form.get("_page") or "")) or action.rsplit("/", 1)[0] or "/clinic/"
    token = await services.db.write(lambda conn: accounts.hold_form(conn, user_id, page_path, action, fields))
    connection.scope.setdefault("state", {})[_HELD_TOKEN] = token


async def _restore_held_form(connection: ASGIConnection, session: Session, token: str) -> None:
    services = services_of(connection)
    held = await services.db.read(lambda conn: accounts.held_form(conn, token))
    here = connection.url.path + (f"?{connection.url.query}" if connection.url.query else "")
    if held is None or held.user_id != session.user.id or held.page not in (here, connection.url.path):
        return
    await services.db.write(lambda conn: accounts.drop_held_form(conn, token))
    connection.scope.setdefault("state", {})[_RESTORE] = held


async def held_form_waiting(request: Request) -> accounts.HeldForm | None:
    """The form held for whoever signs in with this browser (shown on the sign-in page)."""
    token = request.cookies.get(HELD_COOKIE)
    return await services_of(request).db.read(lambda conn: accounts.held_form(conn, token))


async def check_csrf(request: Request) -> None:
    """before_request for every clinic form: the posted csrf_token must match the session's."""
    if request.method != "POST":
        return
    session = await load_session(request)
    form = await request.form()
    if session is None or not accounts.csrf_ok(session, form.get("csrf_token")):
        raise PermissionDeniedException(messages.text("clinic.form_expired"))


def session_of(request: Request) -> Session:
    session = current_session(request)
    assert session is not None  # the guard ran
    return session


class Page(Template):
    """A clinic page that is built and rendered on the reader pool, never on the event loop.

    What every page shows (the session's user if no guard read it, the menu's alert counts)
    is read there, `build()` (the page's own charts and sums, if any) runs there, and the
    template renders there; the loop only sends the finished bytes.
    """

    def __init__(self, name: str, context: dict[str, Any], build: Callable[[], dict[str, Any]] | None):
        super().__init__(template_name=name, context=context, media_type=MediaType.HTML)
        self.build = build

    def _render(self, conn: sqlite3.Connection, request: Request) -> bytes:
        state = request.scope.get("state", {})
        session = state[_SESSION] if _SESSION in state else _read_session(conn, request)
        services = services_of(request)
        context = {
            "user": session.user if session else None,
            "csrf_token": session.csrf_token if session else "",
            "nav": alerts_store.open_counts(conn) if session else {},
            "lacking_text": services.library.lacking_text() if session else [],
            **self.context,
            **(self.build() if self.build else {}),
        }
        template = request.app.template_engine.get_template(self.template_name)  # type: ignore[union-attr]
        return template.render(**context).encode(self.encoding)

    def to_asgi_response(self, app: Any, request: Request, **kwargs: Any) -> Any:  # type: ignore[override]
        zipped = "gzip" in request.headers.get("accept-encoding", "")

        def made(conn: sqlite3.Connection) -> bytes:
            body = self._render(conn, request)
            # Compressed here too: gzip of a 170 KB timeline took ~25 ms of the loop.
            return gzip.compress(body, GZIP_LEVEL, mtime=0) if zipped else body

        async def answer(scope: Any, receive: Any, send: Any) -> None:
            db = services_of(request).db
            # A page with a build of its own (charts, sums) takes its turn among the heavy ones.
            body = await (db.build(made) if self.build else db.read(made))
            headers = (
                {**self.headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"} if zipped else {}
            )
            done = Response(
                body,
                media_type=MediaType.HTML,
                status_code=self.status_code,
                headers=headers or self.headers,
                cookies=self.cookies,
                background=self.background,
            )
            if zipped:  # final bytes: the app's compression middleware passes them on as they are
                ScopeState.from_scope(scope).is_cached = True
            await done.to_asgi_response(app, request, **kwargs)(scope, receive, send)

        return answer


def page(
    request: Request, name: str, /, build: Callable[[], dict[str, Any]] | None = None, **context: Any
) -> Template:
    """A clinic page with what every page needs (user, CSRF token, nav counts, a form held
    over a sign-in), rendered off the event loop (`Page`); `build()`, if given, makes more of
    its context there too: the work of a heavy page."""
    restore = request.scope.get("state", {}).get(_RESTORE)

    def kept(action: str, name: str, default: Any = "") -> Any:
        """What was typed in this form's field before the session ran out (else `default`):
        the server fills it in, so nothing is lost without JavaScript either."""
        if restore is not None and restore.action == action and name in restore.fields:
            return restore.fields[name]
        return "" if default is None else default

    response = Page(
        name,
        {
            "restore": {"action": restore.action, "fields": restore.fields} if restore else None,
            "restore_text": messages.text("clinic.session_restored") if restore else "",
            "kept": kept,
            # The page a form was posted from, so a sign-in after a lapsed session returns here.
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        },
        build,
    )
    if restore:
        response.cookies.append(cookie(request, HELD_COOKIE, "", max_age=0))
    return response


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
    each patient's access history holds it; one row without a patient when it showed none.
    An automatic refresh (`is_refresh`) skips the patients this user already has the same row
    for within REFRESH_AUDIT_MINUTES: a page left open must not flood the log."""
    shown = list(dict.fromkeys(patient_ids))
    if is_refresh(request):
        since = iso(utcnow() - timedelta(minutes=REFRESH_AUDIT_MINUTES))
        done = audit.recently_recorded(
            conn,
            user_id=session_of(request).user.id,
            action=action,
            object=object,
            patient_ids=[p for p in shown if p],
            since=since,
        )
        shown = [p for p in shown if p not in done]
        if not shown:
            return
    for patient_id in shown or [None]:
        audit_access(conn, request, patient_id=patient_id, action=action, object=object)


def cookie(request: ASGIConnection, key: str, value: str, *, max_age: int | None) -> Cookie:
    """A clinic cookie: only for /clinic, never readable by scripts, never sent cross-site."""
    return Cookie(
        key=key,
        value=value,
        path="/clinic",
        httponly=True,
        samesite="strict",
        secure=services_of(request).settings.secure_cookies,
        max_age=max_age,
    )


def signed_out(request: ASGIConnection, path: str = "/clinic/login") -> Redirect:
    """A redirect that also ends this browser's session cookie."""
    response = Redirect(path=path)
    response.cookies.append(cookie(request, SESSION_COOKIE, "", max_age=0))
    return response


def clinic_exception_handler(request: Request, exc: HTTPException) -> Response:
    """HTML answers for the clinic: a sign-in redirect for 401, a readable page otherwise."""
    if exc.status_code == 401:
        # Back to the page asked for after signing in (a clinic page only, never another site).
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        back = safe_page(asked) if request.method == "GET" else None
        response = Redirect(path="/clinic/login", query_params={"next": back} if back else None)
        held = request.scope.get("state", {}).get(_HELD_TOKEN)
        if held:
            response.cookies.append(cookie(request, HELD_COOKIE, held, max_age=3600))
        return response
    response = page(request, "clinic/error.html", status=exc.status_code, detail=exc.detail)
    response.status_code = exc.status_code
    return response
