"""`PUT /api/v1/responses/{uuid}` when all goes well, without Litestar's request machinery.

A phone's diary entry is the server's commonest request, and Litestar's routing, dependency
injection, body parsing and response building cost the event loop about as much as the rest
of a PUT (issue 17: 283 → ~150 µs of the loop's CPU a PUT). This ASGI shell in front of
Litestar answers a PUT itself only when it gives exactly the answer of the route handler
(`api.PatientController.put_response`, which stays the one definition of the route and its
schema): a device the route's device cache knows, a canonical UUID, a body within the limit
that decodes and checks, and a write that stored the response or found it stored ("created"
201, "duplicate" 200). Anything else (a refusal of any kind, a device not in the cache, a
storage failure, a body in chunks) goes to the route as it came, with the body read so far
handed on, so every refusal is the route's, in its words.

The pieces both use are here: the device cache, the write job that checks the token in the
writer's transaction, and the outcomes a PUT answers with its result.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend import intake
from backend.diary import responses
from backend.diary.responses import Checked, ResponseIn
from backend.patients import enrolment
from backend.patients.enrolment import Patient
from backend.platform.storage import utcnow
from backend.system import System
from backend.web.api_schema import PutResult

# The device tokens of the responses routes (PUT, batch) and their patients, as last read:
# those routes take the patient from here without a read, and their write job checks in the
# writer's transaction that the token still gives this very patient (`device_job`): a
# revoked device, a discharge or a changed patient is never written as it was.
DEVICE_CACHE_MAX = 4096


def device_cache(state: Any) -> dict[str, Patient]:
    """The device cache of an app (its `app.state`)."""
    cache = getattr(state, "pw_device_patients", None)
    if cache is None:
        cache = state.pw_device_patients = {}
    return cache


Receiver = Callable[[sqlite3.Connection, Patient, Checked], Any]


def receive_one(services: System, now: datetime) -> Receiver:
    """What a PUT does in the writer: intake of its one checked response."""

    def receive(conn: sqlite3.Connection, patient: Patient, checked: Checked) -> Any:
        return intake.receive(
            conn,
            patient,
            [checked],
            library=services.library,
            pathways=services.pathways,
            now=now,
            max_edits=services.settings.max_edits_per_hour,
            current=True,  # device_job read it in this transaction
        )

    return receive


def device_job(token: str, patient: Patient, checked: Any, receive: Callable) -> Callable:
    """The write job: `receive(conn, patient, checked)` if the device token still gives
    exactly `patient` in the writer's transaction, else None (nothing written)."""

    def job(conn: sqlite3.Connection) -> Any:
        if enrolment.patient_for_token(conn, token, keep=True) != patient:
            return None
        return receive(conn, patient, checked)

    return job


# The outcomes a PUT answers with its result, and their status; the others are refusals.
STORED = {"created": 201, "duplicate": 200}
# The request state's key of a write the shell did and the route refuses: (patient, checked,
# outcomes), as `api._write_checked` returns them.
WRITTEN = "pw_written"

PREFIX = "/api/v1/responses/"
# As the route converts its body: typed, not strict ("version": "1" is 1).
_BODY = msgspec.json.Decoder(ResponseIn, strict=False)
_JSON = (b"content-type", b"application/json")


def shell(app: ASGIApp, state: Any, services: System, max_body: int) -> ASGIApp:
    """The ASGI app that answers the PUTs it can and hands every other request to `app`."""
    cache = device_cache(state)

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "PUT" or not scope["path"].startswith(PREFIX):
            await app(scope, receive, send)
            return
        response_id = scope["path"][len(PREFIX) :]
        token, length = _head(scope)
        patient = cache.get(token) if token else None
        if (
            patient is None
            or length is None
            or length > max_body
            or not responses.CANONICAL_UUID.fullmatch(response_id)
        ):
            await app(scope, receive, send)
            return
        body, message = b"", await receive()
        while message["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body", False) or len(body) > max_body:
                break
            message = await receive()
        answer = None
        if message["type"] == "http.request" and not message.get("more_body", False):
            state = scope.setdefault("state", {})
            answer = await _stored(services, cache, token, patient, response_id, body, state)
        if answer is None:
            await app(scope, _handed_on(body, message, receive), send)
            return
        status, out = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON, (b"content-length", str(len(out)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": out})

    return handle


def _head(scope: Scope) -> tuple[str | None, int | None]:
    """The bearer token and the body's declared length; None for either when absent, given
    twice or not as the route reads it (the route then answers)."""
    token = length = None
    tokens = lengths = 0
    for name, value in scope["headers"]:
        if name == b"authorization":
            tokens += 1
            scheme, _, rest = value.decode("latin-1").partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else None
        elif name == b"content-length":
            lengths += 1
            length = int(value) if value.isdigit() else None
    return (token or None) if tokens == 1 else None, length if lengths == 1 else None


async def _stored(
    services: System,
    cache: dict[str, Patient],
    token: str,
    patient: Patient,
    response_id: str,
    body: bytes,
    state: dict[str, Any],
) -> tuple[int, bytes] | None:
    """The route's answer if the response is stored (or was already); None: let it answer (a
    device whose patient changed is dropped from the cache first: the route reads it again;
    a write refused as a conflict or past the cap is handed to it in the request's state,
    WRITTEN, so that it refuses without writing again)."""
    now = utcnow()
    try:
        checked = responses.check(response_id, _BODY.decode(body), patient, services.library, now)
        job = device_job(token, patient, checked, receive_one(services, now))
        outcomes = await services.db.write(job, together=patient.id)
    except Exception:  # noqa: BLE001 - any refusal or failure is the route's to answer
        return None
    if outcomes is None:
        cache.pop(token, None)
        return None
    if (status := STORED.get(outcomes[0])) is None:
        state[WRITTEN] = (patient, checked, outcomes)
        return None
    return status, msgspec.json.encode(PutResult(id=checked.id, status=outcomes[0]))


def _handed_on(body: bytes, last: Message, receive: Receive) -> Receive:
    """`receive` for the route: what this shell read first (as one message), then the rest."""
    pending: list[Message] = [
        {"type": "http.request", "body": body, "more_body": last.get("more_body", False)}
        if last["type"] == "http.request"
        else last
    ]
    if last["type"] != "http.request" and body:
        pending.insert(0, {"type": "http.request", "body": body, "more_body": True})

    async def again() -> Message:
        return pending.pop(0) if pending else await receive()

    return again
