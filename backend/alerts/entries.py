"""What detection reads of a patient: their current responses up to a day (`load_entries`),
with a per-connection cache of what was read (the writer evaluates the same patients again
and again: an edit re-reads only the days that changed)."""

from __future__ import annotations

import bisect
import itertools
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

import msgspec

from backend.alerts.findings import DIARY, Entry
from backend.diary import store as diary_store
from backend.platform.storage import KEPT_CONNECTIONS as KEPT_CONNECTIONS
from backend.platform.storage import PerConnection

A = TypeVar("A")


def load_entries(
    conn: sqlite3.Connection, patient_id: str, today: date, diary_days: int, *, keep: bool = True
) -> list[Entry]:
    """The patient's current responses up to `today` that the rules read, oldest first (see
    `read_patient`)."""
    return read_patient(conn, patient_id, today, diary_days, None, keep=keep)[0]


def read_patient(
    conn: sqlite3.Connection,
    patient_id: str,
    today: date,
    diary_days: int,
    open_alerts: Callable[[sqlite3.Connection, str], A] | None,
    *,
    keep: bool = True,
) -> tuple[list[Entry], A | None]:
    """What detection reads of a patient: their current responses up to `today`, oldest
    first: the diary of the last `diary_days` days (or, after a long silence, its last entry)
    and the last two of every other questionnaire (`diary.store.detection_rows`: one per
    questionnaire and day, from current_response_ids, so edits and history cost nothing);
    and their open alerts as `open_alerts(conn, patient_id)` reads them (None: not read).

    A connection keeps what it read of the last KEPT_PATIENTS patients (`_KEPT`): the next
    evaluation reads only the days that got a response since (diary.store.Seen.stored), the
    same entries a full read gives, and the open alerts again only if one of them changed
    since (the watch's alerts token). `keep=False` (the nightly sweep, every patient once)
    uses what is kept but keeps nothing new. The open alerts handed out are the kept ones:
    the caller reads them and must not change them (the lifecycle writes changes to the
    table, and the trigger has them read again).
    """
    since = (today - timedelta(days=diary_days)).isoformat()
    until = today.isoformat()
    renewed = next(_TOKENS)
    seen = diary_store.renew_token(conn, patient_id, renewed)
    token, changed = seen.token, seen.stored
    memo = _kept_of(conn, seen.version, keep)
    have = memo.pop(patient_id, None) if memo is not None else None
    if (
        have is not None
        and have.token == token
        and have.span == (since, until)
        and all(r[2] == DIARY and since <= r[0] <= until for r in changed)
    ):
        for row in changed:
            order = (row[0], row[1], row[2])
            i = _current(have.orders, row[2], row[0])
            if i is not None:
                if have.orders[i] > order:
                    continue  # authored before the kept one (synced late): not current
                del have.orders[i], have.entries[i]
            # In place, as detection_rows' rows sort: local_date, authored_at (one per
            # questionnaire and day, so no two are equal).
            i = bisect.bisect_left(have.orders, order)
            have.orders.insert(i, order)
            have.entries.insert(i, _entry(row))
        have.token = renewed
        if seen.alerts != token:
            have.alerts = None  # one of them changed (or that was rolled back)
        if have.alerts is None and open_alerts is not None:
            have.alerts = open_alerts(conn, patient_id)
        memo[patient_id] = have
        return list(have.entries), have.alerts
    if token is not None:
        diary_store.forget(conn, patient_id)
    rows = diary_store.detection_rows(conn, patient_id, since, until)
    rows.sort()  # local_date, then authored_at
    entries = [_entry(r) for r in rows]
    alerts = open_alerts(conn, patient_id) if open_alerts is not None else None
    if not keep or any(r[2] == DIARY and r[0] < since for r in rows):
        return entries, alerts  # (a long silence: the last diary before it) read again next time
    kept = _KeptPatient(renewed, (since, until), [(r[0], r[1], r[2]) for r in rows], entries, alerts)
    diary_store.kept(conn, patient_id, kept.token)
    memo[patient_id] = kept
    while len(memo) > KEPT_PATIENTS:
        diary_store.forget(conn, memo.popitem(last=False)[0])
    return list(entries), alerts


def _current(orders: list[tuple[str, str, str]], questionnaire: str, day: str) -> int | None:
    """Where the kept entry of this questionnaire and day is in `orders` (None: none)."""
    i = bisect.bisect_left(orders, (day,))
    while i < len(orders) and orders[i][0] == day:
        if orders[i][2] == questionnaire:
            return i
        i += 1
    return None


def _entry(row: tuple) -> Entry:
    d, at, q, answers, scores = row
    scores = msgspec.json.decode(scores) if scores and scores != "{}" else {}
    return Entry(q, date.fromisoformat(d), msgspec.json.decode(answers), scores, at)


# How many patients' reads one connection keeps (a patient's ~60 entries are ~40 KB).
KEPT_PATIENTS = 1024
_TOKENS = itertools.count(1)


class _KeptPatient:
    """A patient's kept read: the entries in order and, alongside, the order of each
    (local_date, authored_at, questionnaire); the open alerts as read (None: not read)."""

    __slots__ = ("alerts", "entries", "orders", "span", "token")

    def __init__(
        self,
        token: int,
        span: tuple[str, str],
        orders: list[tuple[str, str, str]],
        entries: list[Entry],
        alerts: Any,
    ):
        self.token, self.span, self.orders, self.entries, self.alerts = token, span, orders, entries, alerts


# What each connection read per patient (valid while no other connection wrote: data_version).
_KEPT = PerConnection(OrderedDict)


def _kept_of(conn: sqlite3.Connection, version: int, keep: bool) -> OrderedDict[str, _KeptPatient] | None:
    """The connection's kept reads by patient (None: none, and `keep` is false)."""
    memo, replaced = _KEPT.of(conn, version, create=keep)
    if replaced:
        diary_store.forget(conn)  # another connection wrote: read everyone afresh
    return memo
