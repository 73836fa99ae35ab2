"""Responses: the one ingestion path for every answer a patient sends (diary and questionnaires).

`check` turns a submitted response into a normalised `Checked` record or a list of reasons;
`store` writes checked records idempotently by UUID inside the writer's transaction:
the same UUID with the same content is a no-op ("duplicate"), with other content a "conflict".
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import msgspec

from backend.diary import store as diary_store
from backend.diary.questionnaires import Library, check_answers
from backend.diary.scoring import compute_scores
from backend.diary.store import MAX_EDITS_PER_HOUR, Outcome, Outcomes  # noqa: F401 - the API reads them here
from backend.platform.dates import DateRange, check_date, check_datetime, response_range
from backend.platform.messages import Problem, Refusal
from backend.platform.storage import iso, utcnow

log = logging.getLogger(__name__)

MAX_BATCH = 500
# The canonical lower-case form of a UUID, as the PWA sends it.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# How far the diary day may lie from the day the answer was written (a late entry for last
# week is fine; an entry for next month is a mistake).
MAX_DAYS_LATE = 14
MAX_DAYS_EARLY = 1


class Diarist(Protocol):
    """Whose responses these are, as far as checking them goes (a `patients.store.Patient`)."""

    @property
    def id(self) -> str: ...
    @property
    def enrolled_at(self) -> str: ...
    @property
    def anchor_date(self) -> str: ...
    @property
    def zone(self) -> ZoneInfo: ...
    def local_today(self, now: datetime | None = None) -> date: ...
    @property
    def enrolled_on(self) -> date: ...


class ResponseIn(msgspec.Struct, forbid_unknown_fields=True):
    """A response as the PWA sends it (contract.md, "A response")."""

    questionnaire: str
    version: int
    authored_at: str
    local_date: str
    answers: dict[str, Any]
    task_id: int | None = None


class BatchItem(ResponseIn, kw_only=True, forbid_unknown_fields=True):
    id: str


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    # Any items: one that is not even an object is judged alone, never fails the batch.
    responses: list[Any]


class BatchResult(msgspec.Struct, omit_defaults=True):
    id: str
    status: Literal["created", "duplicate", "conflict", "invalid"]
    error: str | None = None


class ResponseOut(msgspec.Struct):
    id: str
    questionnaire: str
    version: int
    authored_at: str
    local_date: str
    task_id: int | None
    answers: dict[str, Any]
    received_at: str


class Invalid(Refusal):
    """A response that cannot be stored; `problems` names each field and why."""

    def __init__(self, problems: list[Problem]):
        super().__init__("body.invalid", 422, problems=problems)


class Checked(msgspec.Struct, frozen=True):
    id: str
    questionnaire: str
    version: int
    authored_at: str  # UTC
    authored_at_client: str
    local_date: str
    task_id: int | None
    answers: dict[str, Any]
    scores: dict[str, float]
    content_hash: str


def allowed_dates(patient: Diarist, now: datetime) -> DateRange:
    """The days this patient's responses may be about (contract v2, backend/platform/dates.py)."""
    return _allowed_dates(patient.enrolled_on, patient.anchor_date, patient.local_today(now))


@functools.lru_cache(maxsize=4096)
def _allowed_dates(enrolled: date, anchor_date: str | None, today: date) -> DateRange:
    # Once per patient and day (every response of the day after the first).
    try:
        anchor = date.fromisoformat(anchor_date)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        anchor = enrolled  # a malformed anchor stored before the date rule: enrolment counts
    return response_range(enrolled, anchor, today)


def check(response_id: str, r: ResponseIn, patient: Diarist, library: Library, now: datetime) -> Checked:
    """Validate one response for this patient; raise Invalid naming each field and why."""
    problems: list[Problem] = []

    def bad(field: str, key: str, **params: Any) -> None:
        problems.append(Problem(field, key, params))

    try:
        # The PWA sends canonical lower-case UUIDs: take those as they are (uuid.UUID() and
        # back costs more than the rest of the id handling); normalise anything else.
        rid = response_id if CANONICAL_UUID.fullmatch(response_id) else str(uuid.UUID(response_id))
    except (ValueError, AttributeError, TypeError):
        bad("id", "response.id")
        rid = ""
    allowed = allowed_dates(patient, now)
    authored = check_datetime("authored_at", r.authored_at, allowed)
    if isinstance(authored, Problem):
        problems.append(authored)
    local = check_date("local_date", r.local_date, allowed)
    if isinstance(local, Problem):
        problems.append(local)
    if isinstance(authored, datetime) and isinstance(local, date):
        written = authored.astimezone(patient.zone).date()
        if not -MAX_DAYS_EARLY <= (written - local).days <= MAX_DAYS_LATE:
            bad("local_date", "response.too_late", day=r.local_date, written=written, days=MAX_DAYS_LATE)
    q = library.get(r.questionnaire, r.version)
    if q is None:
        if library.get(r.questionnaire) is None:
            bad("questionnaire", "response.questionnaire", id=repr(r.questionnaire))
        else:
            bad("version", "response.version", id=r.questionnaire, version=r.version)
    elif not library.servable(r.questionnaire, r.version):
        bad("questionnaire", "response.without_text", id=r.questionnaire)
    elif len(r.answers) > 2 * len(q.items):
        # Far more answers than questions: one reason, not one per key (150 000 unknown keys
        # made a 9.7 MB refusal, review L8).
        bad("answers", "answer.too_many", count=len(r.answers), items=len(q.items))
    else:
        for err in check_answers(q, r.answers):
            bad(f"answers.{err.item}", err.key, **err.params)
    # A task id is an SQLite integer: 2**63 would overflow the insert and fail the whole batch.
    if r.task_id is not None and not 0 <= r.task_id < 2**63:
        bad("task_id", "response.task_id")
    if problems:
        raise Invalid(problems)
    assert q is not None and isinstance(authored, datetime) and isinstance(local, date)
    # A whole float is stored as the int it is (3.0 as 3: one content hash for one answer).
    answers = {
        k: int(v) if type(v) is float and v.is_integer() else v for k, v in r.answers.items() if v is not None
    }
    utc = iso(authored.astimezone(UTC))
    content = msgspec.json.encode(
        [r.questionnaire, r.version, utc, r.local_date, r.task_id, dict(sorted(answers.items()))]
    )
    return Checked(
        id=rid,
        questionnaire=r.questionnaire,
        version=r.version,
        authored_at=utc,
        authored_at_client=r.authored_at,
        local_date=local.isoformat(),
        task_id=r.task_id,
        answers=answers,
        scores=compute_scores(q, answers),
        content_hash=hashlib.sha256(content).hexdigest(),
    )


def store(
    conn: sqlite3.Connection,
    patient: Diarist,
    items: Iterable[Checked],
    *,
    now: datetime | None = None,
    max_edits: int = MAX_EDITS_PER_HOUR,
) -> Outcomes:
    """Store checked responses idempotently (what follows a new one: `intake.receive`);
    "throttled" past `max_edits` responses of one day in an hour (diary.store.add)."""
    return diary_store.add(conn, patient.id, items, iso(now or utcnow()), max_edits=max_edits)


def list_for_patient(
    conn: sqlite3.Connection, patient_id: str, since: str | None = None
) -> list[ResponseOut]:
    """A patient's own responses received after `since` (all of them without it)."""
    return [
        ResponseOut(
            id=rid,
            questionnaire=qid,
            version=version,
            authored_at=authored,
            local_date=day,
            task_id=task_id,
            answers=msgspec.json.decode(answers),
            received_at=received,
        )
        for rid, qid, version, authored, day, task_id, answers, received in diary_store.of_patient(
            conn, patient_id, since
        )
    ]
