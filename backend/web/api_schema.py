"""The patient API's shapes (`/api/v1`): request bodies, answers and the refusals the OpenAPI
document lists. backend/web/api.py has the handlers."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from backend.diary.responses import BatchResult, ResponseOut


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
