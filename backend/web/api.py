"""The patient API (`/api/v1`): enrolment, profile, questionnaires, tasks, responses, push."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response, Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend import intake
from backend.diary import responses
from backend.diary.responses import BatchIn, BatchItem, BatchResult, Invalid, ResponseIn, ResponseOut
from backend.diary.scoring import band_for
from backend.patients import enrolment
from backend.patients.enrolment import EnrolmentError, Patient
from backend.platform import messages
from backend.platform.accounts import Rule, attempt_succeeded, reserve_attempt
from backend.platform.dates import ANY_TIME, DateRange, check_date, check_datetime
from backend.platform.messages import Problem, Refusal
from backend.platform.storage import iso, parse_iso, utcnow
from backend.system import System

log = logging.getLogger(__name__)


class EnrolIn(msgspec.Struct, forbid_unknown_fields=True):
    code: str


class Me(msgspec.Struct):
    id: str
    display_name: str
    pathway_id: str
    pathway_title: dict[str, str]
    language: str
    timezone: str
    reminder_time: str
    enrolled_on: str
    team_seen_at: str | None
    # The database's generation id: when it changes, the server was restored and the phone
    # sends its kept responses again (duplicates are no-ops).
    generation: str
    # The last local date of the patient's pause of reminders; None: not paused.
    paused_until: str | None = None


class EnrolOut(msgspec.Struct):
    token: str
    patient: Me


class MePatch(msgspec.Struct, forbid_unknown_fields=True):
    language: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    reminder_time: str | msgspec.UnsetType = msgspec.UNSET


class PutResult(msgspec.Struct):
    id: str
    status: str


class ResponsesOut(msgspec.Struct):
    responses: list[ResponseOut]


class BatchOut(msgspec.Struct):
    results: list[BatchResult]


class TaskOut(msgspec.Struct):
    id: int
    questionnaire: str
    label: str | None
    due_at: str
    expires_at: str
    status: str


class TasksOut(msgspec.Struct):
    tasks: list[TaskOut]


class QuestionnairesOut(msgspec.Struct):
    questionnaires: list[dict[str, Any]]


class PushKeyOut(msgspec.Struct):
    key: str


class PushKeys(msgspec.Struct):
    p256dh: str
    auth: str


class SubscriptionIn(msgspec.Struct):
    endpoint: str
    keys: PushKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's field name


class UnsubscribeIn(msgspec.Struct):
    endpoint: str


class PauseIn(msgspec.Struct, forbid_unknown_fields=True):
    until: str  # the last local date without reminders, YYYY-MM-DD


class ReceiptIn(msgspec.Struct, forbid_unknown_fields=True):
    tag: str  # the push's tag: task-<id>
    event: Literal["shown", "opened"]


class SnoozeIn(msgspec.Struct, forbid_unknown_fields=True):
    hours: int


class SnoozeOut(msgspec.Struct):
    task_id: int
    remind_at: str


class SummaryScore(msgspec.Struct):
    questionnaire: str
    score: str
    label: dict[str, str]
    value: float
    local_date: str
    band: dict[str, str] | None


class SummaryOut(msgspec.Struct):
    scores: list[SummaryScore]


class ErrorOut(msgspec.Struct):
    """Every refusal of the API: the status, what is wrong, and per-field problems if any."""

    status_code: int
    detail: str
    extra: list[dict[str, Any]] | dict[str, Any] | None = None


_ERRORS = {
    401: "This device is not (or no longer) signed in",
    404: "Unknown or already used code",
    409: "Same id, other content: an edit needs a new id",
    410: "The code has expired",
    413: "Too large: send it in parts",
    422: "Invalid values; `extra` names each field and why",
    429: "Too many tries from this address, or too many edits of one day (see Retry-After)",
    503: "The database cannot save now; nothing was saved, try again (see Retry-After)",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the refusals a handler may give (the schema says what can happen)."""
    return {
        code: ResponseSpec(data_container=ErrorOut, description=_ERRORS[code], generate_examples=False)
        for code in codes
    }


def too_many_edits(day: str, retry_at: str | None, now: datetime, max_edits: int) -> Refusal:
    """429 for a day sent more than `max_edits` times within an hour (issue 17)."""
    until = parse_iso(retry_at) if retry_at else now + timedelta(hours=1)
    return Refusal(
        "response.too_many_edits",
        429,
        max=max_edits,
        day=day,
        until=until.strftime("%H:%M"),
        headers={"Retry-After": str(max(1, math.ceil((until - now).total_seconds())))},
    )


def services_of(request: ASGIConnection) -> System:
    return request.app.state.services


def client_address(request: ASGIConnection) -> str:
    """The address a request came from (throttles, the audit log's source).

    Behind our own proxy (`trust_proxy`), the right-most X-Forwarded-For entry: the one the
    proxy appended. Entries left of it are whatever the client chose to send.
    """
    services = services_of(request)
    if services.settings.trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.client.host if request.client else "unknown"


def language_of(connection: ASGIConnection) -> str:
    """The language of this request's answers: the signed-in patient's, else Accept-Language."""
    patient = connection.scope.get("state", {}).get("pw_patient")
    return messages.pick(
        patient.language if patient is not None else None, connection.headers.get("accept-language")
    )


def bearer_token(request: ASGIConnection) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal("auth.no_token", 401)
    return token.strip()


async def _patient_of_token(connection: ASGIConnection) -> Patient:
    services = services_of(connection)
    token = bearer_token(connection)
    patient = await services.db.read(lambda conn: enrolment.patient_for_token(conn, token))
    if patient is None:
        raise Refusal("auth.signed_out", 401)
    return patient


async def requires_device(request: Request) -> None:
    """Before every patient request: check the device token before the body is read, so a
    stranger's request is refused with 401 and never gets the server to parse (or explain)
    a body."""
    # A before_request hook rather than a guard: Litestar copies the route handler for every
    # guard call, and async because a sync hook would hop to the thread pool (py-spy, make
    # bench: each cost more than the indexed token lookup itself).
    request.scope.setdefault("state", {})["pw_patient"] = await _patient_of_token(request)


async def provide_patient(request: Request) -> Patient:
    cached = request.scope.get("state", {}).get("pw_patient")
    return cached if cached is not None else await _patient_of_token(request)


def me_of(services: System, patient: Patient) -> Me:
    today = patient.local_today().isoformat()
    pathway = services.pathways.get(patient.pathway_id)
    title = dict(pathway.title) if pathway is not None else {"nl": patient.pathway_id}
    return Me(
        id=patient.id,
        display_name=patient.display_name,
        pathway_id=patient.pathway_id,
        pathway_title=title,
        language=patient.language,
        timezone=patient.timezone,
        reminder_time=patient.reminder_time,
        # The patient's own date: the app offers no diary day before it.
        enrolled_on=patient.local_today(parse_iso(patient.enrolled_at)).isoformat(),
        team_seen_at=patient.team_seen_at,
        paused_until=patient.paused_until if patient.paused_until and patient.paused_until >= today else None,
        generation=services.generation,
    )


def _set_pause(conn, services: System, patient: Patient, until) -> Patient:
    """Store the pause and re-plan: no reminder before it ends (the tasks stay)."""
    from backend.tasks import scheduler

    conn.execute(
        "UPDATE patients SET paused_until = ? WHERE id = ?",
        (until.isoformat() if until else None, patient.id),
    )
    scheduler.materialise(conn, patient.id, utcnow(), services.pathways, settings=services.settings)
    updated = enrolment.get_patient(conn, patient.id)
    assert updated is not None
    return updated


class EnrolController(Controller):
    path = "/api/v1/enrol"
    tags = ["patient"]

    @post(
        "",
        status_code=HTTP_201_CREATED,
        summary="Exchange a one-time enrolment code for a device token",
        responses=errors(404, 410, 413, 429, 503),
    )
    async def enrol(self, request: Request, data: EnrolIn) -> EnrolOut:
        services = services_of(request)
        settings = services.settings
        now = utcnow()
        window = timedelta(minutes=settings.login_lockout_minutes)
        rule = Rule(f"enrol:{client_address(request)}", settings.enrol_max_failures, window)

        def redeem(conn):
            # Checked, counted and tried in one step of the writer: parallel guesses cannot
            # all pass the check before the first failure is counted.
            until = reserve_attempt(conn, [rule], now)
            if until is not None:
                return until
            try:
                patient, token = enrolment.redeem_code(conn, data.code)
            except EnrolmentError as exc:
                return exc
            attempt_succeeded(conn, clear=None, uncount=rule.key)
            return patient, token

        result = await services.db.write(redeem)
        if isinstance(result, datetime):
            raise Refusal(
                "enrol.throttled",
                429,
                until=result.strftime("%H:%M"),
                headers={"Retry-After": str(max(1, math.ceil((result - now).total_seconds())))},
            )
        if isinstance(result, EnrolmentError):
            # A code that does not exist (or is used) is not found; an expired one is gone.
            status = 410 if result.key == "enrol.code_expired" else 404
            raise Refusal(result.key, status, **result.params)
        patient, token = result
        return EnrolOut(token=token, patient=me_of(services, patient))


class PatientController(Controller):
    path = "/api/v1"
    tags = ["patient"]
    before_request = requires_device
    dependencies = {"patient": Provide(provide_patient)}

    @get("/me", summary="The patient's profile and settings", responses=errors(401))
    async def get_me(self, system: System, patient: Patient) -> Me:
        return me_of(system, patient)

    @patch("/me", summary="Change language, time zone or reminder time", responses=errors(401, 413, 422, 503))
    async def patch_me(self, request: Request, patient: Patient, data: MePatch) -> Me:
        services = services_of(request)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}

        def update(conn):
            updated = enrolment.update_settings(conn, patient.id, **changes)
            if "timezone" in changes or "reminder_time" in changes:
                from backend.tasks import scheduler

                scheduler.materialise(
                    conn, patient.id, utcnow(), services.pathways, settings=services.settings
                )
            return updated

        return me_of(services, await services.db.write(update))

    @delete(
        "/me/device",
        status_code=HTTP_204_NO_CONTENT,
        summary="Sign this device out",
        responses=errors(401, 503),
    )
    async def leave(self, request: Request, patient: Patient) -> None:
        token = bearer_token(request)
        await services_of(request).db.write(lambda conn: enrolment.revoke_token(conn, token))

    @get(
        "/questionnaires",
        summary="The questionnaire definitions this patient may answer",
        responses=errors(401),
    )
    async def questionnaires(self, request: Request, patient: Patient) -> QuestionnairesOut:
        services = services_of(request)
        pathway = services.pathways.get(patient.pathway_id)
        wanted = set(pathway.questionnaires()) if pathway is not None else {"diary"}
        wanted.add("diary")
        defs = [
            msgspec.to_builtins(q)
            for (qid, version), q in sorted(services.library.by_version.items())
            if qid in wanted and services.library.servable(qid, version)
        ]
        return QuestionnairesOut(questionnaires=defs)

    @put(
        "/me/pause",
        summary="Pause reminders up to and including a date (at most 14 days)",
        responses=errors(401, 422, 503),
    )
    async def pause(self, request: Request, patient: Patient, data: PauseIn) -> Me:
        from backend.tasks.schedule import PAUSE_MAX_DAYS

        services = services_of(request)
        today = patient.local_today()
        last = today + timedelta(days=PAUSE_MAX_DAYS)
        until = check_date("until", data.until, DateRange(today, last))
        if isinstance(until, Problem):
            problem = Problem("until", "pause.until", {"last": last.isoformat(), "days": PAUSE_MAX_DAYS})
            raise Refusal("body.invalid", 422, problems=[problem])
        return me_of(
            services, await services.db.write(lambda conn: _set_pause(conn, services, patient, until))
        )

    @delete(
        "/me/pause",
        status_code=HTTP_200_OK,
        summary="End the pause of reminders now",
        responses=errors(401, 503),
    )
    async def end_pause(self, request: Request, patient: Patient) -> Me:
        services = services_of(request)
        return me_of(
            services, await services.db.write(lambda conn: _set_pause(conn, services, patient, None))
        )

    @get(
        "/me/summary",
        summary="The patient's own questionnaire scores, for their printable summary",
        responses=errors(401),
    )
    async def summary(self, request: Request, patient: Patient) -> SummaryOut:
        services = services_of(request)
        rows = await services.db.read(
            lambda conn: conn.execute(
                "SELECT local_date, questionnaire_id, questionnaire_version, scores FROM current_responses"
                " WHERE patient_id = ? AND questionnaire_id != 'diary' AND scores IS NOT NULL"
                " ORDER BY local_date, authored_at",
                (patient.id,),
            ).fetchall()
        )
        out: list[SummaryScore] = []
        for r in rows:
            q = services.library.get(r["questionnaire_id"], r["questionnaire_version"])
            if q is None:
                continue
            values = msgspec.json.decode(r["scores"]) if isinstance(r["scores"], str | bytes) else r["scores"]
            for score in q.scores:
                if score.id not in (values or {}):
                    continue
                band = band_for(score, values[score.id])
                out.append(
                    SummaryScore(
                        questionnaire=q.id,
                        score=score.id,
                        label=dict(score.label),
                        value=values[score.id],
                        local_date=r["local_date"],
                        band=dict(band.label) if band else None,
                    )
                )
        return SummaryOut(scores=out)

    @post(
        "/tasks/{task_id:str}/snooze",
        status_code=HTTP_200_OK,
        summary="Remind again in 1 or 3 hours (within the task's window)",
        responses=errors(401, 422, 503),
    )
    async def snooze(self, request: Request, patient: Patient, task_id: str, data: SnoozeIn) -> SnoozeOut:
        from backend.tasks import scheduler
        from backend.tasks.schedule import SNOOZE_HOURS

        services = services_of(request)
        if data.hours not in SNOOZE_HOURS:
            raise Refusal("body.invalid", 422, problems=[Problem("hours", "snooze.hours")])
        # A task id from GET /tasks; anything else is no open task of this patient.
        if not (task_id.isascii() and task_id.isdigit() and len(task_id) < 19):
            raise Refusal("snooze.nothing", 422)
        task = int(task_id)
        now = utcnow()
        at = await services.db.write(
            lambda conn: scheduler.snooze(conn, patient.id, task, data.hours, now, services.settings)
        )
        if at is None:
            raise Refusal("snooze.nothing", 422)
        return SnoozeOut(task_id=task, remind_at=iso(at))

    @get("/tasks", summary="Open tasks: questionnaires due now", responses=errors(401))
    async def tasks(self, request: Request, patient: Patient) -> TasksOut:
        from backend.tasks import store as tasks_store

        services = services_of(request)
        now = utcnow()
        rows = await services.db.read(lambda conn: tasks_store.open_tasks(conn, patient.id, now))
        # A task planned before the scheduler dropped its questionnaire (text not supplied)
        # waits to be cancelled by the next plan pass: never offer it meanwhile.
        return TasksOut(
            tasks=[
                msgspec.convert(r, TaskOut, from_attributes=True)
                for r in rows
                if services.library.servable(r["questionnaire"])
            ]
        )

    @put(
        "/responses/{response_id:str}",
        summary="Store one response (idempotent by UUID)",
        status_code=HTTP_201_CREATED,
        responses={
            200: ResponseSpec(
                PutResult, description="Already stored with the same content", generate_examples=False
            ),
            **errors(401, 409, 413, 422, 429, 503),
        },
    )
    async def put_response(
        self, request: Request, patient: Patient, response_id: str, data: ResponseIn
    ) -> Response[PutResult]:
        services = services_of(request)
        now = utcnow()
        checked = responses.check(response_id, data, patient, services.library, now)
        outcomes = await services.db.write(
            lambda conn: intake.receive(
                conn,
                patient,
                [checked],
                library=services.library,
                pathways=services.pathways,
                now=now,
                max_edits=services.settings.max_edits_per_hour,
            )
        )
        [outcome] = outcomes
        if outcome == "conflict":
            raise Refusal("response.conflict", 409, id=checked.id)
        if outcome == "throttled":
            raise too_many_edits(
                checked.local_date, outcomes.retry_at, now, services.settings.max_edits_per_hour
            )
        status = HTTP_201_CREATED if outcome == "created" else HTTP_200_OK
        return Response(PutResult(id=checked.id, status=outcome), status_code=status)

    @post(
        "/responses:batch",
        status_code=HTTP_200_OK,
        summary="Store many responses at once",
        responses=errors(401, 413, 429, 503),
    )
    async def batch(self, request: Request, patient: Patient, data: BatchIn) -> BatchOut:
        services = services_of(request)
        if len(data.responses) > responses.MAX_BATCH:
            raise Refusal("response.batch_too_big", 413, max=responses.MAX_BATCH, count=len(data.responses))
        now = utcnow()
        lang = patient.language
        results: list[BatchResult | None] = []
        checked: list[responses.Checked] = []
        for raw in data.responses:
            rid = str(raw.get("id", ""))[:100] if isinstance(raw, dict) else ""
            try:
                # Converted as the PUT's body is (Litestar is not strict: "version": "1" is 1).
                item = msgspec.convert(raw, BatchItem, strict=False)
                # A BatchItem is a ResponseIn with its id: checked as it is.
                checked.append(responses.check(item.id, item, patient, services.library, now))
                results.append(None)
            except msgspec.ValidationError as exc:
                problems = [messages.from_validation(str(exc), lang=lang)]
                results.append(BatchResult(rid, "invalid", messages.problems_detail(problems, lang)))
            except Invalid as exc:
                results.append(BatchResult(rid, "invalid", messages.problems_detail(exc.problems, lang)))
            except Exception as exc:  # noqa: BLE001 - one poisoned item never fails the batch
                log.warning("batch item refused after %s", type(exc).__name__)
                results.append(BatchResult(rid, "invalid", messages.text("response.item_broken", lang)))
        got = (
            await services.db.write(
                lambda conn: intake.receive(
                    conn,
                    patient,
                    checked,
                    library=services.library,
                    pathways=services.pathways,
                    now=now,
                    max_edits=services.settings.max_edits_per_hour,
                )
            )
            if checked
            else responses.Outcomes()
        )
        if got.retry_at is not None:
            # The others are stored (and judged): the phone keeps every item on a 429 and sends
            # them again later, when those come back as "duplicate".
            throttled = next(c for c, o in zip(checked, got, strict=True) if o == "throttled")
            raise too_many_edits(
                throttled.local_date, got.retry_at, now, services.settings.max_edits_per_hour
            )
        outcomes = iter(got)
        stored = iter(checked)
        final: list[BatchResult] = []
        for r in results:
            if r is None:
                c = next(stored)
                outcome = next(outcomes)
                error = messages.text("response.conflict_short", lang) if outcome == "conflict" else None
                final.append(BatchResult(id=c.id, status=outcome, error=error))
            else:
                final.append(r)
        return BatchOut(results=final)

    @get(
        "/responses",
        summary="The patient's own responses (restores history on a new phone)",
        responses=errors(401),
    )
    async def list_responses(
        self, request: Request, patient: Patient, since: str | None = None
    ) -> ResponsesOut:
        since_utc = None
        if since:
            since_dt = check_datetime("since", since, ANY_TIME)
            if isinstance(since_dt, Problem):
                raise Refusal("response.since", 400)
            since_utc = iso(since_dt)
        rows = await services_of(request).db.read(
            lambda conn: responses.list_for_patient(conn, patient.id, since_utc)
        )
        return ResponsesOut(responses=rows)

    @get(
        "/me/export",
        summary="Download all of the patient's own data (CSV)",
        media_type="text/csv",
        responses=errors(401),
    )
    async def export_own(self, request: Request, patient: Patient) -> Stream:
        from backend.exports.files import stream_from
        from backend.exports.long import patient_export

        # Its own connection: a stream is read in worker threads and holds a read transaction.
        body = stream_from(services_of(request).settings.db, lambda conn: patient_export(conn, patient.id))
        return Stream(
            body,
            media_type="text/csv",  # Litestar adds "; charset=utf-8" itself
            headers={"Content-Disposition": 'attachment; filename="pijnwacht-mijn-gegevens.csv"'},
        )

    @get("/push/key", summary="The server's VAPID public key", responses=errors(401, 503))
    async def push_key(self, request: Request, patient: Patient) -> PushKeyOut:
        vapid = services_of(request).vapid
        if vapid is None:
            raise HTTPException(status_code=503, detail="Push messages are not set up here.")
        return PushKeyOut(key=vapid.public_key_b64)

    @post(
        "/push/subscriptions",
        status_code=HTTP_201_CREATED,
        summary="Register this browser for reminders",
        responses=errors(401, 409, 413, 422, 503),
    )
    async def subscribe(self, request: Request, patient: Patient, data: SubscriptionIn) -> None:
        from backend.push import endpoints, subscriptions

        services = services_of(request)
        allow_loopback = services.settings.push_allow_loopback
        sub = msgspec.to_builtins(data)
        try:
            await endpoints.check_endpoint_resolves(sub["endpoint"], allow_loopback=allow_loopback)
            await services.db.write(
                lambda conn: subscriptions.save_subscription(
                    conn, patient_id=patient.id, subscription=sub, allow_loopback=allow_loopback
                )
            )
        except Refusal:
            raise  # in the patient's language (app._refusal)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None

    @post(
        "/push/receipts",
        status_code=HTTP_204_NO_CONTENT,
        summary="The service worker reports a reminder shown or opened (no health data)",
        responses=errors(401, 422, 503),
    )
    async def receipt(self, request: Request, patient: Patient, data: ReceiptIn) -> None:
        services = services_of(request)
        task_id = int(data.tag[5:]) if data.tag.startswith("task-") and data.tag[5:].isdigit() else None
        now = iso(utcnow())

        def store(conn) -> int:
            if task_id is None or task_id > 2**62:
                return 0
            return conn.execute(
                "INSERT INTO push_receipts (patient_id, task_id, event, at)"
                " SELECT patient_id, id, ?, ? FROM tasks WHERE id = ? AND patient_id = ?",
                (data.event, now, task_id, patient.id),
            ).rowcount

        if not await services.db.write(store):
            raise Refusal("body.invalid", 422, problems=[Problem("tag", "receipt.tag")])

    @delete(
        "/push/subscriptions",
        status_code=HTTP_204_NO_CONTENT,
        summary="Stop reminders on this browser",
        responses=errors(401, 413, 503),
    )
    async def unsubscribe(self, request: Request, patient: Patient, data: UnsubscribeIn) -> None:
        from backend.push import subscriptions

        await services_of(request).db.write(
            lambda conn: subscriptions.remove_subscription(
                conn, patient_id=patient.id, endpoint=data.endpoint
            )
        )
