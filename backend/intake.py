"""Intake: what happens to answers a patient sends, in order, in one write transaction.

store (idempotent by UUID) -> complete the tasks they answer -> evaluate the patient's
alerts, so the alert exists before the HTTP answer returns (one patient's writes that come
in a row in one group commit are judged once, after the last: `storage.afterwards`). The
API (one response, a batch) and the demo call `receive`; nothing else decides what follows
a stored response.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from backend.alerts import lifecycle as alerts
from backend.alerts.detection import DIARY
from backend.diary.questionnaires import Library
from backend.diary.responses import MAX_EDITS_PER_HOUR, Checked, Outcomes, store
from backend.patients.enrolment import Patient
from backend.platform.storage import afterwards
from backend.tasks import store as tasks

log = logging.getLogger(__name__)


def receive(
    conn: sqlite3.Connection,
    patient: Patient,
    items: Sequence[Checked],
    *,
    library: Library,
    pathways: Mapping[str, Any],
    now: datetime,
    max_edits: int = MAX_EDITS_PER_HOUR,
    current: bool = False,
) -> Outcomes:
    """Store checked responses, then (for the new ones) complete their tasks and evaluate
    the patient's alerts; the outcome of each item, in order ("throttled" past `max_edits`
    responses of one day within an hour). `current`: `patient` was read in this very
    transaction, so detection takes it as it is instead of reading it again."""
    outcomes = store(conn, patient, items, now=now, max_edits=max_edits)
    new = [c for c, outcome in zip(items, outcomes, strict=True) if outcome == "created"]
    if new:
        _tasks_completed(conn, patient, new)
        heard_now = any(c.questionnaire == DIARY for c in new)

        def evaluate(conn: sqlite3.Connection) -> Callable[[sqlite3.Connection], None] | None:
            return judge_alerts(conn, patient, library, pathways, now, current=current, heard_now=heard_now)

        # At once; or, when one patient's writes come in a row (a phone sending a day again
        # and again), once after the last of them in the same commit, as for a batch. Its
        # writes in a savepoint of their own either way: a failure never loses the responses.
        afterwards(conn, evaluate, f"intake step evaluate_alerts for patient {patient.id}")
    return outcomes


def complete_tasks(conn: sqlite3.Connection, patient: Patient, new: Sequence[Checked]) -> None:
    for c in new:
        tasks.complete_task(
            conn,
            patient_id=patient.id,
            questionnaire_id=c.questionnaire,
            task_id=c.task_id,
            local_date=c.local_date,
            response_id=c.id,
        )


def judge_alerts(
    conn: sqlite3.Connection,
    patient: Patient,
    library: Library,
    pathways: Mapping[str, Any],
    now: datetime,
    *,
    current: bool = False,
    heard_now: bool = False,
) -> Callable[[sqlite3.Connection], None] | None:
    """The patient's alerts judged as of their local today; the writes that store the changes
    (None: nothing changes)."""
    today = patient.local_today(now)
    known = patient if current else None
    return alerts.judge_patient(
        conn, patient.id, today, library, pathways, now=now, patient=known, heard_now=heard_now
    )[1]


def _tasks_completed(conn: sqlite3.Connection, patient: Patient, new: Sequence[Checked]) -> None:
    # A failing task step must never lose the responses. It needs no savepoint of its own:
    # each task is completed in one statement (SQLite undoes a failing one by itself), and a
    # task completed before the failure was answered by a response that stays stored.
    try:
        complete_tasks(conn, patient, new)
    except Exception as exc:
        if not conn.in_transaction:
            raise  # the storage failed the whole transaction: the write fails, the phone retries
        # The type only: an exception's message may quote answers (health data).
        log.error("intake step complete_tasks failed with %s for patient %s", type(exc).__name__, patient.id)
