"""The app factory: assembles the patient API, the clinic pages, the PWA and the scheduler."""

from __future__ import annotations

import logging
from datetime import date, datetime
from http import HTTPStatus
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.compression import CompressionConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.response import File, Redirect
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.platform import formatting, messages
from backend.platform.messages import Refusal
from backend.platform.settings import Settings
from backend.platform.storage import StorageUnavailable, parse_iso
from backend.platform.words import word
from backend.system import System, build
from backend.web import api, clinic, consult, inbox, patients, put_path, signin, timeline, users
from backend.web.fhir_api import FhirController

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def security_headers(app: ASGIApp) -> ASGIApp:
    """ASGI middleware adding the strict headers to every answer (errors and files included)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if path.startswith(("/api/", "/clinic")) and b"cache-control" not in names:
                    # Health data must not linger in shared or browser caches.
                    headers.append((b"cache-control", b"no-store"))
                elif b"cache-control" not in names and not path.startswith("/schema"):
                    # The app's files. The service worker fetches its shell as `?v=<version>`:
                    # an address that never changes content, cacheable for a year. Any other
                    # request (sw.js, the page before a worker runs) revalidates every time, so
                    # a phone never runs an old file next to a new one.
                    versioned = (
                        message["status"] == 200
                        and path != "/sw.js"
                        and scope.get("query_string", b"").startswith(b"v=")
                    )
                    headers.append(
                        (
                            b"cache-control",
                            b"public, max-age=31536000, immutable" if versioned else b"no-cache",
                        )
                    )
                settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
                if getattr(settings, "secure_cookies", False):
                    # Served over HTTPS (a TLS proxy in front): browsers must never fall back.
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def refuse_nul_paths(app: ASGIApp) -> ASGIApp:
    """A path with a NUL byte (`/index.html%00.js`) names no file: 404 before the static file
    router hands it to the operating system, which refuses it with ValueError (a 500)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in scope.get("path", ""):
            accept = next(
                (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"accept-language"), None
            )
            body = msgspec.json.encode(
                {"status_code": 404, "detail": messages.text("http.not_found", messages.pick(None, accept))}
            )
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return middleware


# What the PWA folder may serve: the app's own file kinds (not pwa/icons/make_icons.py).
APP_FILE_SUFFIXES = frozenset({"", ".html", ".js", ".css", ".png", ".svg", ".ico", ".webmanifest", ".json"})


async def _only_app_files(request: Request) -> None:
    if PurePosixPath(request.url.path).suffix.lower() not in APP_FILE_SUFFIXES:
        raise Refusal("http.not_found", 404)


@get("/healthz", include_in_schema=True, summary="200 when the database answers", sync_to_thread=False)
def healthz(request: Request) -> Response[dict[str, str]]:
    services: System = request.app.state.services
    if not services.db.answers():
        return Response({"status": "database unavailable"}, status_code=503)
    return Response({"status": "ok"})


@get("/favicon.ico", include_in_schema=False, name="favicon", sync_to_thread=False)
def favicon() -> File:
    return File(STATIC / "favicon.ico", media_type="image/x-icon", content_disposition_type="inline")


def _as_datetime(value: Any) -> datetime | date | None:
    if isinstance(value, datetime | date):
        return value
    text = str(value or "")
    try:
        return parse_iso(text) if "T" in text else date.fromisoformat(text[:10])
    except ValueError:
        return None


def _day(value: Any) -> str:
    """Template filter: an ISO date, or a UTC instant on the clinic's local date, as "3 dec. 2026"."""
    when = _as_datetime(value)
    if isinstance(when, datetime):
        when = when.astimezone(formatting.zone(None)).date()
    return formatting.day(when) if when else str(value or "")


def _moment(value: Any, time_zone: str | None = None) -> str:
    """Template filter: a UTC instant as "3 dec. 2026 om 20:15" in the clinic's (or a patient's) time."""
    when = _as_datetime(value)
    return formatting.moment(when, time_zone) if isinstance(when, datetime) else _day(value)


def template_filters(engine: JinjaTemplateEngine) -> None:
    """Dutch numbers, dates and plurals in every clinic template (platform/formatting.py)."""
    engine.engine.filters.update(
        day=_day,
        moment=_moment,
        number=lambda value, decimals=1: formatting.number(value, decimals),
        plural=lambda count, one, other: formatting.plural(count, one, other),
        # The clinic's word for a code: {{ p.status | word("patient_status") }}.
        word=lambda code, group: word(group, code),
    )


@get("/clinic", include_in_schema=False, name="clinic:home")
async def clinic_home() -> Redirect:
    return Redirect(path="/clinic/inbox")


def _json_error(
    request: Request, status: int, detail: str, extra: Any = None, headers: Any = None
) -> Response:
    if request.url.path.startswith("/clinic") and not request.url.path.endswith(".csv"):
        return clinic.clinic_exception_handler(request, HTTPException(status_code=status, detail=detail))
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if extra:
        body["extra"] = extra
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _refusal(request: Request, exc: Refusal) -> Response:
    lang = api.language_of(request)
    return _json_error(request, exc.status, exc.detail(lang), exc.extra(lang), exc.headers)


def _storage_unavailable(request: Request, exc: StorageUnavailable) -> Response:
    if request.url.path.startswith("/clinic"):
        # The clinic's own words, not the storage layer's (English) text.
        detail = messages.text("http.unavailable")
        return clinic.clinic_exception_handler(request, HTTPException(status_code=503, detail=detail))
    return _json_error(
        request,
        503,
        messages.text("http.unavailable", api.language_of(request)),
        headers={"Retry-After": "30"},
    )


# Litestar's own refusals (unknown path, wrong method, body too large, body not JSON) carry
# its English default texts; they are answered from the catalogue instead.
_STATUS_KEYS = {400: "http.bad_request", 404: "http.not_found", 405: "http.method", 413: "http.too_large"}


def _http_exception(request: Request, exc: HTTPException) -> Response:
    lang = api.language_of(request)
    detail, extra = exc.detail, exc.extra
    if isinstance(exc, ValidationException) and isinstance(extra, list):
        problems = [
            messages.from_validation(str(e.get("message", "")), e.get("key"), lang)
            for e in extra
            if isinstance(e, dict)
        ] or [messages.Problem("body", "http.bad_request")]
        detail, extra = messages.problems_detail(problems, lang), messages.problems_out(problems, lang)
    elif detail.startswith("JSON is malformed"):
        detail = messages.text("body.malformed", lang, why=detail.partition(": ")[2][:100])
    elif detail.startswith("Number out of range"):  # msgspec's text for 1e309 in a typed body
        detail = messages.text("body.number_range", lang)
    elif exc.status_code in _STATUS_KEYS and (exc.status_code != 400 or detail == HTTPStatus(400).phrase):
        detail = messages.text(_STATUS_KEYS[exc.status_code], lang)
    return _json_error(request, exc.status_code, detail, extra, exc.headers)


def _bad_body(key: str) -> Any:
    # Raised by Litestar's JSON decoding of a body that is not UTF-8, or nested past
    # Python's recursion limit; both are the sender's fault, neither a server error.
    def handler(request: Request, exc: Exception) -> Response:
        return _json_error(request, 400, messages.text(key, api.language_of(request)))

    return handler


def _internal_error(request: Request, exc: Exception) -> Response:
    # Never echo the exception: its text may hold health data.
    log.error("unhandled %s on %s %r", type(exc).__name__, request.method, request.url.path)
    return _json_error(request, 500, messages.text("http.internal", api.language_of(request)))


def provide_system(state: State) -> System:
    """The running system, handed to any handler that names a `system: System` parameter."""
    return state.services


def create_app(settings: Settings, services: System | None = None) -> Litestar:
    """The whole web application for these settings (services made here unless given)."""
    services = services or build(settings)

    def on_startup(app: Litestar) -> None:
        app.state.scheduler = None
        if settings.scheduler:
            from backend.tasks import tick

            push = tick.sender(services.db, settings, services.vapid) if services.vapid else None
            app.state.scheduler = tick.start_scheduler(
                services.db, settings, services.library, services.pathways, push=push
            )

    def on_shutdown(app: Litestar) -> None:
        if getattr(app.state, "scheduler", None) is not None:
            app.state.scheduler.stop()
        services.close()

    route_handlers: list[Any] = [
        healthz,
        clinic_home,
        api.EnrolController,
        api.PatientController,
        favicon,
        signin.AuthController,
        patients.PatientsController,
        users.AccountsController,
        consult.ConsultController,
        inbox.InboxController,
        timeline.PatientPageController,
        FhirController,
        create_static_files_router(path="/clinic/static", directories=[STATIC], name="clinic-static"),
        create_static_files_router(
            path="/",
            directories=[Path(settings.pwa_dir)],
            html_mode=True,
            name="pwa",
            before_request=_only_app_files,
        ),
    ]
    app = Litestar(
        route_handlers=route_handlers,
        dependencies={"system": Provide(provide_system, sync_to_thread=False)},
        template_config=TemplateConfig(
            directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=template_filters
        ),
        openapi_config=OpenAPIConfig(
            title="Pijnwacht patient API",
            version="1.0.0",
            path="/schema",
            description="The API the Pijnwacht PWA uses (contract.md).",
        ),
        exception_handlers={
            Refusal: _refusal,
            UnicodeDecodeError: _bad_body("body.not_utf8"),
            RecursionError: _bad_body("body.too_deep"),
            StorageUnavailable: _storage_unavailable,
            HTTPException: _http_exception,
            Exception: _internal_error,
        },
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        request_max_body_size=settings.max_body_bytes,
        # A cheap phone on a slow line: the app shell goes out gzipped (~35 KB, not ~96 KB).
        compression_config=CompressionConfig(backend="gzip", minimum_size=1000),
        debug=False,
    )
    # Around the whole app, not as route middleware: that would miss the answers Litestar
    # gives itself for unknown paths and methods (404, 405).
    # A phone's PUT that goes well is answered before Litestar's request machinery (put_path).
    hot = put_path.shell(app.asgi_handler, app.state, services, settings.max_body_bytes)
    app.asgi_handler = security_headers(refuse_nul_paths(hot))
    app.state.services = services
    app.state.settings = settings
    return app
