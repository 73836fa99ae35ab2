"""The patient API (`/api/v1`): enrolment, profile, questionnaires, tasks, responses, push."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response, Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend import intake
from backend.diary import responses
from backend.diary.responses import BatchIn, BatchItem, BatchResult, Invalid, ResponseIn
from backend.patients import enrolment
from backend.patients.enrolment import EnrolmentError, Patient
from backend.platform import messages
from backend.platform.accounts import Rule, attempt_succeeded, reserve_attempt
from backend.platform.dates import ANY_TIME, DateRange, check_date, check_datetime
from backend.platform.messages import Problem, Refusal
from backend.platform.storage import iso, parse_iso, utcnow
from backend.system import System
from backend.web import put_path
from backend.web.api_schema import (
    BatchOut,
    EnrolIn,
    EnrolOut,
    Me,
    MePatch,
    PauseIn,
    PushKeyOut,
    PutResult,
    QuestionnairesOut,
    ReceiptIn,
    ResponsesOut,
    SnoozeIn,
    SnoozeOut,
    SubscriptionIn,
    SummaryOut,
    SummaryScore,
    TaskOut,
    TasksOut,
    UnsubscribeIn,
    errors,
)

log = logging.getLogger(__name__)


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


ENDED_HEADER = "X-Pijnwacht-Ended"


def bearer_token(request: ASGIConnection) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal("auth.no_token", 401)
    return token.strip()


async def _patient_of_token(connection: ASGIConnection, *, cached: bool = False) -> Patient:
    services = services_of(connection)
    token = bearer_token(connection)
    if cached:
        patient = put_path.device_cache(connection.app.state).get(token)
        if patient is not None:
            connection.scope["state"]["pw_cached"] = True
            return patient
    patient = await services.db.read(lambda conn: enrolment.patient_for_token(conn, token))
    if patient is None:
        if await services.db.read(lambda conn: enrolment.token_discharged(conn, token)):
            # The team ended the diary: the app says so (header ENDED_HEADER), not "join again".
            raise Refusal("auth.discharged", 401, headers={ENDED_HEADER: "discharged"})
        raise Refusal("auth.signed_out", 401)
    if cached:
        cache = put_path.device_cache(connection.app.state)
        if len(cache) >= put_path.DEVICE_CACHE_MAX:
            cache.clear()
        cache[token] = patient
    return patient


async def requires_device(request: Request) -> None:
    """Before every patient request: check the device token before the body is read, so a
    stranger's request is refused with 401 and never gets the server to parse (or explain)
    a body."""
    # A before_request hook rather than a guard: Litestar copies the route handler for every
    # guard call, and async because a sync hook would hop to the thread pool (py-spy, make
    # bench: each cost more than the indexed token lookup itself).
    state = request.scope.setdefault("state", {})
    cached = request.route_handler.opt.get("device_cache", False)
    state["pw_patient"] = await _patient_of_token(request, cached=cached)


async def provide_patient(request: Request) -> Patient:
    cached = request.scope.get("state", {}).get("pw_patient")
    return cached if cached is not None else await _patient_of_token(request)


async def _write_checked(request: Request, patient: Patient, check, receive) -> tuple[Patient, Any, Any]:
    """`check(patient)` then, in the writer, `receive(conn, patient, checked)` if the device
    token still gives exactly `patient` (it may come from the device cache); else read the
    patient again (a 401 if the device is gone) and check and write with the one now stored.
    Returns (patient, checked, what receive returned)."""
    written = request.scope["state"].pop(put_path.WRITTEN, None)
    if written is not None:
        return written  # put_path wrote it (a conflict, past the cap): refused without a write
    token = bearer_token(request)
    services = services_of(request)
    for _ in range(3):
        checked = None
        try:
            checked = check(patient)
        except Refusal:
            if not request.scope["state"].pop("pw_cached", False):
                raise
        if checked is not None:
            job = put_path.device_job(token, patient, checked, receive)
            got = await services.db.write(job, together=patient.id)
            if got is not None:
                return patient, checked, got
        # The cached patient was out of date (or refused with it): read it as it is now.
        put_path.device_cache(request.app.state).pop(token, None)
        request.scope["state"].pop("pw_cached", None)
        patient = await _patient_of_token(request, cached=True)
        request.scope["state"]["pw_patient"] = patient  # refusals speak its language
    raise Refusal("auth.signed_out", 401)  # the patient changed with every attempt


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
        enrolled_on=patient.enrolled_on.isoformat(),
        team_seen_at=patient.team_seen_at,
        paused_until=patient.paused_until if patient.paused_until and patient.paused_until >= today else None,
        generation=services.generation,
    )


def _set_pause(conn, system: System, patient: Patient, until) -> Patient:
    """Store the pause and re-plan: no reminder before it ends (the tasks stay)."""
    from backend.tasks import scheduler

    updated = enrolment.set_pause(conn, patient.id, until)
    scheduler.materialise(conn, patient.id, utcnow(), system.pathways, settings=system.settings)
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
    async def enrol(self, request: Request, system: System, data: EnrolIn) -> EnrolOut:
        settings = system.settings
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

        result = await system.db.write(redeem)
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
        return EnrolOut(token=token, patient=me_of(system, patient))


class PatientController(Controller):
    path = "/api/v1"
    tags = ["patient"]
    before_request = requires_device
    dependencies = {"patient": Provide(provide_patient)}

    @get("/me", summary="The patient's profile and settings", responses=errors(401))
    async def get_me(self, system: System, patient: Patient) -> Me:
        return me_of(system, patient)

    @patch("/me", summary="Change language, time zone or reminder time", responses=errors(401, 413, 422, 503))
    async def patch_me(self, system: System, patient: Patient, data: MePatch) -> Me:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}

        def update(conn):
            updated = enrolment.update_settings(conn, patient.id, **changes)
            if "timezone" in changes or "reminder_time" in changes:
                from backend.tasks import scheduler

                scheduler.materialise(conn, patient.id, utcnow(), system.pathways, settings=system.settings)
            return updated

        return me_of(system, await system.db.write(update))

    @delete(
        "/me/device",
        status_code=HTTP_204_NO_CONTENT,
        summary="Sign this device out",
        responses=errors(401, 503),
    )
    async def leave(self, request: Request, system: System, patient: Patient) -> None:
        token = bearer_token(request)
        await system.db.write(lambda conn: enrolment.revoke_token(conn, token))

    @get(
        "/questionnaires",
        summary="The questionnaire definitions this patient may answer",
        responses=errors(401),
    )
    async def questionnaires(self, system: System, patient: Patient) -> QuestionnairesOut:
        pathway = system.pathways.get(patient.pathway_id)
        wanted = set(pathway.questionnaires()) if pathway is not None else {"diary"}
        wanted.add("diary")
        defs = [
            msgspec.to_builtins(q)
            for (qid, version), q in sorted(system.library.by_version.items())
            if qid in wanted and system.library.servable(qid, version)
        ]
        return QuestionnairesOut(questionnaires=defs)

    @put(
        "/me/pause",
        summary="Pause reminders up to and including a date (at most 14 days)",
        responses=errors(401, 422, 503),
    )
    async def pause(self, system: System, patient: Patient, data: PauseIn) -> Me:
        from backend.tasks.schedule import PAUSE_MAX_DAYS

        today = patient.local_today()
        last = today + timedelta(days=PAUSE_MAX_DAYS)
        until = check_date("until", data.until, DateRange(today, last))
        if isinstance(until, Problem):
            problem = Problem("until", "pause.until", {"last": last.isoformat(), "days": PAUSE_MAX_DAYS})
            raise Refusal("body.invalid", 422, problems=[problem])
        return me_of(system, await system.db.write(lambda conn: _set_pause(conn, system, patient, until)))

    @delete(
        "/me/pause",
        status_code=HTTP_200_OK,
        summary="End the pause of reminders now",
        responses=errors(401, 503),
    )
    async def end_pause(self, system: System, patient: Patient) -> Me:
        return me_of(system, await system.db.write(lambda conn: _set_pause(conn, system, patient, None)))

    @get(
        "/me/summary",
        summary="The patient's own questionnaire scores, for their printable summary",
        responses=errors(401),
    )
    async def summary(self, system: System, patient: Patient) -> SummaryOut:
        from backend.diary import scoring
        from backend.diary import store as diary_store

        rows = await system.db.read(lambda conn: diary_store.scored_of(conn, patient.id))
        return SummaryOut(
            scores=[msgspec.convert(x, SummaryScore) for x in scoring.own_summary(rows, system.library)]
        )

    @post(
        "/tasks/{task_id:str}/snooze",
        status_code=HTTP_200_OK,
        summary="Remind again in 1 or 3 hours (within the task's window)",
        responses=errors(401, 422, 503),
    )
    async def snooze(self, system: System, patient: Patient, task_id: str, data: SnoozeIn) -> SnoozeOut:
        from backend.tasks import scheduler
        from backend.tasks.schedule import SNOOZE_HOURS

        if data.hours not in SNOOZE_HOURS:
            raise Refusal("body.invalid", 422, problems=[Problem("hours", "snooze.hours")])
        # A task id from GET /tasks; anything else is no open task of this patient.
        if not (task_id.isascii() and task_id.isdigit() and len(task_id) < 19):
            raise Refusal("snooze.nothing", 422)
        task = int(task_id)
        now = utcnow()
        at = await system.db.write(
            lambda conn: scheduler.snooze(conn, patient.id, task, data.hours, now, system.settings)
        )
        if at is None:
            raise Refusal("snooze.nothing", 422)
        return SnoozeOut(task_id=task, remind_at=iso(at))

    @get("/tasks", summary="Open tasks: questionnaires due now", responses=errors(401))
    async def tasks(self, system: System, patient: Patient) -> TasksOut:
        from backend.tasks import store as tasks_store

        now = utcnow()
        rows = await system.db.read(lambda conn: tasks_store.open_tasks(conn, patient.id, now))
        # A task planned before the scheduler dropped its questionnaire (text not supplied)
        # waits to be cancelled by the next plan pass: never offer it meanwhile.
        return TasksOut(
            tasks=[
                msgspec.convert(r, TaskOut, from_attributes=True)
                for r in rows
                if system.library.servable(r["questionnaire"])
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
        opt={"device_cache": True},
    )
    async def put_response(
        self, request: Request, patient: Patient, response_id: str, data: ResponseIn
    ) -> Response[PutResult]:
        services = services_of(request)
        now = utcnow()
        patient, checked, outcomes = await _write_checked(
            request,
            patient,
            lambda patient: responses.check(response_id, data, patient, services.library, now),
            put_path.receive_one(services, now),
        )
        [outcome] = outcomes
        if outcome == "conflict":
            raise Refusal("response.conflict", 409, id=checked.id)
        if outcome == "throttled":
            raise too_many_edits(
                checked.local_date, outcomes.retry_at, now, services.settings.max_edits_per_hour
            )
        # The answers put_path gives itself when all goes well: it must give the same.
        return Response(PutResult(id=checked.id, status=outcome), status_code=put_path.STORED[outcome])

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
                ),
                together=patient.id,
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
        self, system: System, patient: Patient, since: str | None = None
    ) -> ResponsesOut:
        since_utc = None
        if since:
            since_dt = check_datetime("since", since, ANY_TIME)
            if isinstance(since_dt, Problem):
                raise Refusal("response.since", 400)
            since_utc = iso(since_dt)
        rows = await system.db.read(lambda conn: responses.list_for_patient(conn, patient.id, since_utc))
        return ResponsesOut(responses=rows)

    @get(
        "/me/export",
        summary="Download all of the patient's own data (CSV)",
        media_type="text/csv",
        responses=errors(401),
    )
    async def export_own(self, system: System, patient: Patient) -> Stream:
        from backend.exports.files import stream_from
        from backend.exports.long import patient_export

        # Its own connection: a stream is read in worker threads and holds a read transaction.
        body = stream_from(system.settings.db, lambda conn: patient_export(conn, patient.id))
        return Stream(
            body,
            media_type="text/csv",  # Litestar adds "; charset=utf-8" itself
            headers={"Content-Disposition": 'attachment; filename="pijnwacht-mijn-gegevens.csv"'},
        )

    @get("/push/key", summary="The server's VAPID public key", responses=errors(401, 503))
    async def push_key(self, system: System, patient: Patient) -> PushKeyOut:
        if system.vapid is None:
            raise Refusal("push.not_set_up", 503)
        return PushKeyOut(key=system.vapid.public_key_b64)

    @post(
        "/push/subscriptions",
        status_code=HTTP_201_CREATED,
        summary="Register this browser for reminders",
        responses=errors(401, 409, 413, 422, 503),
    )
    async def subscribe(self, system: System, patient: Patient, data: SubscriptionIn) -> None:
        from backend.push import endpoints, subscriptions

        allow_loopback = system.settings.push_allow_loopback
        sub = msgspec.to_builtins(data)
        try:
            await endpoints.check_endpoint_resolves(sub["endpoint"], allow_loopback=allow_loopback)
            await system.db.write(
                lambda conn: subscriptions.save_subscription(
                    conn, patient_id=patient.id, subscription=sub, allow_loopback=allow_loopback
                )
            )
        except Refusal:
            raise  # in the patient's language (app._refusal)
        except ValueError:
            # The browser's own subscription is malformed: nothing the patient can fix by
            # reading push's (English, technical) reason.
            raise Refusal("push.subscription_invalid", 422) from None

    @post(
        "/push/receipts",
        status_code=HTTP_204_NO_CONTENT,
        summary="The service worker reports a reminder shown or opened (no health data)",
        responses=errors(401, 422, 503),
    )
    async def receipt(self, system: System, patient: Patient, data: ReceiptIn) -> None:
        from backend.tasks import store as tasks_store

        task_id = int(data.tag[5:]) if data.tag.startswith("task-") and data.tag[5:].isdigit() else None
        now = iso(utcnow())
        if (
            task_id is None
            or task_id > 2**62
            or not await system.db.write(
                lambda conn: tasks_store.add_receipt(conn, patient.id, task_id, data.event, now)
            )
        ):
            raise Refusal("body.invalid", 422, problems=[Problem("tag", "receipt.tag")])

    @delete(
        "/push/subscriptions",
        status_code=HTTP_204_NO_CONTENT,
        summary="Stop reminders on this browser",
        responses=errors(401, 413, 503),
    )
    async def unsubscribe(self, system: System, patient: Patient, data: UnsubscribeIn) -> None:
        from backend.push import subscriptions

        await system.db.write(
            lambda conn: subscriptions.remove_subscription(
                conn, patient_id=patient.id, endpoint=data.endpoint
            )
        )
