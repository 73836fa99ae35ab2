"""What detection reads of a patient: their current responses up to a day (`load_entries`),
with a per-connection cache of what was read (the writer evaluates the same patients again
and again: an edit re-reads only the days that changed)."""

from __future__ import annotations

import itertools
import sqlite3
from collections import OrderedDict
from datetime import date, timedelta

import msgspec

from backend.alerts.findings import DIARY, Entry
from backend.diary import store as diary_store
from backend.platform.storage import KEPT_CONNECTIONS as KEPT_CONNECTIONS
from backend.platform.storage import PerConnection


def load_entries(
    conn: sqlite3.Connection, patient_id: str, today: date, diary_days: int, *, keep: bool = True
) -> list[Entry]:
    """The patient's current responses up to `today` that the rules read, oldest first: the
    diary of the last `diary_days` days (or, after a long silence, its last entry) and the
    last two of every other questionnaire (`diary.store.detection_rows`: one per
    questionnaire and day, from current_response_ids, so edits and history cost nothing).

    A connection keeps what it read of the last KEPT_PATIENTS patients (`_KEPT`): the next
    evaluation reads only the days that got a response since (diary.store.changed_rows), the
    same entries a full read gives. `keep=False` (the nightly sweep, every patient once) uses
    what is kept but keeps nothing new.
    """
    since = (today - timedelta(days=diary_days)).isoformat()
    until = today.isoformat()
    version, token = diary_store.seen_token(conn, patient_id)
    memo = _kept_of(conn, version, keep)
    have = memo.pop(patient_id, None) if memo is not None else None
    if have is not None and have.token == token and have.span == (since, until):
        changed = diary_store.changed_rows(conn, patient_id)
        if all(r[2] == DIARY and since <= r[0] <= until for r in changed):
            resort = False
            for row in changed:
                key, order = (row[2], row[0]), (row[0], row[1], row[2])
                was = have.rows.get(key)
                if was is not None and was[0] > order:
                    continue  # authored before the kept one (synced late): not current
                entry = _entry(row)
                tail = have.entries[-1] if have.entries else None
                last = have.rows[tail.questionnaire, tail.local_date.isoformat()][0] if tail else None
                # Today's diary, new or edited, sorts last: put in place (else sort them all).
                if last is None or order < last or (was is not None and was[0] != last):
                    resort = True
                elif was is None:
                    have.entries.append(entry)
                else:
                    have.entries[-1] = entry
                have.rows[key] = (order, entry)
            if changed:
                have.token = next(_TOKENS)
                diary_store.kept(conn, patient_id, have.token)
                if resort:
                    # As detection_rows' rows sort: local_date, authored_at (one per questionnaire and day).
                    have.entries = [e for _, e in sorted(have.rows.values())]
            memo[patient_id] = have
            return list(have.entries)
    if token is not None:
        diary_store.forget(conn, patient_id)
    rows = diary_store.detection_rows(conn, patient_id, since, until)
    rows.sort()  # local_date, then authored_at
    entries = [_entry(r) for r in rows]
    if not keep or any(r[2] == DIARY and r[0] < since for r in rows):
        return entries  # (a long silence: the last diary before it) read again next time
    by_key = {(r[2], r[0]): ((r[0], r[1], r[2]), e) for r, e in zip(rows, entries, strict=True)}
    kept = _KeptPatient(next(_TOKENS), (since, until), by_key, entries)
    diary_store.kept(conn, patient_id, kept.token)
    memo[patient_id] = kept
    while len(memo) > KEPT_PATIENTS:
        diary_store.forget(conn, memo.popitem(last=False)[0])
    return list(entries)


def _entry(row: tuple) -> Entry:
    d, at, q, answers, scores = row
    scores = msgspec.json.decode(scores) if scores and scores != "{}" else {}
    return Entry(q, date.fromisoformat(d), msgspec.json.decode(answers), scores, at)


# How many patients' reads one connection keeps (a patient's ~60 entries are ~40 KB).
KEPT_PATIENTS = 1024
_TOKENS = itertools.count(1)


class _KeptPatient:
    __slots__ = ("entries", "rows", "span", "token")

    def __init__(
        self,
        token: int,
        span: tuple[str, str],
        rows: dict[tuple[str, str], tuple[tuple, Entry]],
        entries: list[Entry],
    ):
        self.token, self.span, self.rows, self.entries = token, span, rows, entries


# What each connection read per patient (valid while no other connection wrote: data_version).
_KEPT = PerConnection(OrderedDict)


def _kept_of(conn: sqlite3.Connection, version: int, keep: bool) -> OrderedDict[str, _KeptPatient] | None:
    """The connection's kept reads by patient (None: none, and `keep` is false)."""
    memo, replaced = _KEPT.of(conn, version, create=keep)
    if replaced:
        diary_store.forget(conn)  # another connection wrote: read everyone afresh
    return memo
