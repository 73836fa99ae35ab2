"""The reminders' claim: every due reminder claimed and its push queued, a chunk at a time.

Never a reminder twice: the due reminders are claimed a chunk at a time, inside the
writer's `BEGIN IMMEDIATE`, by one `UPDATE tasks ... WHERE id IN (the chunk) AND status =
'open' AND next_reminder_at <= now AND next_reminder_at > now - grace` - the compare is
"still open and still due", the swap moves `next_reminder_at` to the task's next planned
time (or NULL) - and the job is rolled back unless it claimed every task of the chunk. Two
passes at once (two servers, cron beside a server, a restart half-way) serialise on that
lock; the second reads nothing due, and were it ever to act on a stale read its compare
would match fewer rows. The push is queued by the same transaction, so a claim without its
push (or a push without its claim) cannot be committed.

The claim is SQL (`store`, from `_CHUNK_TABLES` on): a few statements per chunk of up to
CLAIM_CHUNK reminders and no Python per reminder, since the 20:00 minute has every
patient's diary due at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from backend.platform.storage import Database, iso
from backend.push import queue as push_queue
from backend.push import store as push_store
from backend.tasks import store
from backend.tasks.schedule import QuietHours

DIARY = "diary"
# Claimed reminders per write job: other writes (diaries coming in) go between jobs.
CLAIM_CHUNK = 2000
# A reminder found more than this late (server down, laptop asleep) is dropped, not sent:
# "time for your diary" at 03:00 or twice in a row helps nobody.
REMINDER_GRACE = timedelta(hours=1)

MESSAGES = {
    "nl": {
        "title": "Pijnwacht",
        "diary": "Tijd voor uw dagboek",
        "questionnaire": "Er staat een vragenlijst voor u klaar",
    },
    "en": {
        "title": "Pijnwacht",
        "diary": "Time for your diary",
        "questionnaire": "A questionnaire is waiting for you",
    },
}


def payload_heads() -> tuple[str, dict[str, str]]:
    """SQL for {head} in the claim's messages (by the patient's language, Dutch if it has no
    texts, and whether the diary is among the tasks) and its parameters."""
    args: dict[str, str] = {}
    cases: dict[str, str] = {}
    for kind in ("diary", "questionnaire"):
        whens = ""
        for n, (language, texts) in enumerate(MESSAGES.items()):
            args[f"language{n}"] = language
            args[f"{kind}{n}"] = push_queue.payload_head(texts["title"], texts[kind])
            whens += f" WHEN :language{n} THEN :{kind}{n}"
        args[f"{kind}_default"] = push_queue.payload_head(MESSAGES["nl"]["title"], MESSAGES["nl"][kind])
        cases[kind] = f"CASE m.language{whens} ELSE :{kind}_default END"
    return f"CASE WHEN m.diary THEN {cases['diary']} ELSE {cases['questionnaire']} END", args


class Claimed(msgspec.Struct):
    picked: int  # due reminders taken in index order, answered ones too (< CLAIM_CHUNK: all)
    claimed: int
    queued: int
    completed: int
    late: int


def _claim(now: datetime, quiet: QuietHours | None) -> Callable[[sqlite3.Connection], Claimed]:
    """One write job: drop late reminders, close answered due tasks, claim and queue the rest
    (see store._CHUNK_TABLES and the statements after it)."""
    at = iso(now)
    whole = now.replace(microsecond=0)
    params = {"now": at, "late": iso(now - REMINDER_GRACE), "limit": CLAIM_CHUNK}
    head, head_args = payload_heads()
    messages_sql = store.messages_sql(head)
    message_params = {
        **head_args,
        "now_s": int(whole.timestamp()),
        # (expires - now) rounded down: a second less when now is past a whole second.
        "now_frac": 1 if now.microsecond else 0,
        "max_ttl": push_queue.MAX_TTL,
        "diary": DIARY,
    }

    def job(conn: sqlite3.Connection) -> Claimed:
        late = store.drop_late(conn, params)
        store.claim_chunk_tables(conn)
        picked = store.pick(conn, params)
        if not picked:
            return Claimed(0, 0, 0, 0, late)
        picked_more = store.pick_more(conn, params)
        completed, answered = store.complete_answered(conn)
        to_claim = picked + picked_more - answered
        claimed = store.swap(conn, params) if to_claim else 0
        if claimed != to_claim:
            # Cannot happen inside the writer's BEGIN IMMEDIATE; if it ever does, roll this
            # job back rather than queue a push for a reminder another pass has claimed.
            raise RuntimeError("reminder claims raced; this pass is rolled back")
        queued = 0
        if claimed:
            if quiet is not None:
                starts = [(tz, quiet.next_start(now, ZoneInfo(tz))) for tz in store.chunk_timezones(conn)]
                store.set_quiet_starts(conn, [(tz, int(s.timestamp())) for tz, s in starts if s is not None])
            store.write_messages(conn, messages_sql, message_params)
            queued = push_store.enqueue_messages(
                conn, store.MESSAGES_TABLE, at=at, at_s=message_params["now_s"]
            )
            store.log_claims(conn, at)
        return Claimed(picked, claimed, queued, completed, late)

    return job


def claim_due(db: Database, now: datetime, quiet: QuietHours | None) -> Claimed:
    """Claim every due reminder and queue its pushes, a chunk per write job; the totals.

    `quiet`: the quiet hours (None: none), whose start ends each push's TTL.

    When the first chunk is full (the 20:00 minute), the rest go with the checkpoints aside
    (`Database.checkpoints_aside`): each chunk's job is queued, and while the writer runs it
    this thread checkpoints what the chunks before it wrote, so no job of the writer (nor a
    phone's PUT queued behind one) waits for a checkpoint of the minute's rows."""
    claim = _claim(now, quiet)
    total = Claimed(0, 0, 0, 0, 0)

    def add(done: Claimed) -> bool:
        total.picked += done.picked
        total.claimed += done.claimed
        total.queued += done.queued
        total.completed += done.completed
        total.late += done.late
        return done.picked >= CLAIM_CHUNK

    if not add(db.write_sync(claim)):
        return total  # every minute but the busiest: one job
    with db.checkpoints_aside() as checkpoint:
        while True:
            job = db.write_soon(claim)
            checkpoint()
            if not add(job.result()):
                checkpoint()  # the last chunk's rows too: the writer's next commit need not
                return total
