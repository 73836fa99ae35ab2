"""The app factory: assembles the patient API, the clinic pages, the PWA and the scheduler."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.compression import CompressionConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend import api, clinic, consult, inbox
from backend.fhir_api import FhirController
from backend.services import Services, build
from backend.settings import Settings
from backend.storage import StorageUnavailable

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
                if path == "/sw.js":
                    headers.append((b"cache-control", b"no-cache"))
                settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
                if getattr(settings, "secure_cookies", False):
                    # Served over HTTPS (a TLS proxy in front): browsers must never fall back.
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


@get("/healthz", include_in_schema=True, summary="200 when the database answers", sync_to_thread=False)
def healthz(request: Request) -> Response[dict[str, str]]:
    services: Services = request.app.state.services
    try:
        services.db.reader.execute("SELECT 1 FROM _migrations LIMIT 1").fetchone()
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return Response({"status": "database unavailable"}, status_code=503)
    return Response({"status": "ok"})


@get("/clinic", include_in_schema=False, name="clinic:home")
async def clinic_home() -> Redirect:
    return Redirect(path="/clinic/inbox")


def _storage_unavailable(request: Request, exc: StorageUnavailable) -> Response:
    if request.url.path.startswith("/clinic"):
        return clinic.clinic_exception_handler(request, HTTPException(status_code=503, detail=str(exc)))
    return Response(
        {"status_code": 503, "detail": str(exc)},
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": "30"},
    )


def _http_exception(request: Request, exc: HTTPException) -> Response:
    if request.url.path.startswith("/clinic") and not request.url.path.endswith(".csv"):
        return clinic.clinic_exception_handler(request, exc)
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=exc.status_code, media_type=MediaType.JSON, headers=exc.headers)


def _internal_error(request: Request, exc: Exception) -> Response:
    # Never echo the exception: its text may hold health data.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return _http_exception(
        request,
        HTTPException(
            status_code=500,
            detail="Something went wrong on the server; nothing "
            "was lost. Try again, and tell the pain team if it keeps happening.",
        ),
    )


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """The whole web application for these settings (services made here unless given)."""
    services = services or build(settings)

    def on_startup(app: Litestar) -> None:
        app.state.scheduler = None
        if settings.scheduler:
            from backend import tick

            app.state.scheduler = tick.start_scheduler(
                services.db, settings, services.library, services.pathways
            )

    def on_shutdown(app: Litestar) -> None:
        if getattr(app.state, "scheduler", None) is not None:
            from backend import tick

            tick.stop_scheduler(app.state.scheduler)
        services.close()

    route_handlers: list[Any] = [
        healthz,
        clinic_home,
        api.EnrolController,
        api.PatientController,
        clinic.AuthController,
        clinic.PatientsController,
        clinic.AccountsController,
        # Other clinic areas (inbox, timeline, exports) add their controllers here.
        consult.ConsultController,
        inbox.InboxController,
        inbox.PatientPageController,
        FhirController,
        create_static_files_router(path="/clinic/static", directories=[STATIC], name="clinic-static"),
        create_static_files_router(
            path="/", directories=[Path(settings.pwa_dir)], html_mode=True, name="pwa"
        ),
    ]
    app = Litestar(
        route_handlers=route_handlers,
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(
            title="Pijnwacht patient API",
            version="1.0.0",
            path="/schema",
            description="The API the Pijnwacht PWA uses (contract.md).",
        ),
        exception_handlers={
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
    app.asgi_handler = security_headers(app.asgi_handler)
    app.state.services = services
    app.state.settings = settings
    return app
