"""Push messages and the queue: what a device shows, queued per device, pruned when old.

A message is queued (`enqueue`) inside the writer transaction that decides it - the
reminder's claim, an escalation - so decision and push commit together; `sender.flush`
sends what is queued.

Payloads carry no health data: a title, a body like "Tijd voor uw dagboek", the app route to
open and a tag. Push services and the patient's lock screen see them.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from backend.platform.storage import Database, iso
from backend.push import store

# Push services refuse bodies over 4096 bytes encrypted; leave room for the encryption.
MAX_PAYLOAD_BYTES = 3000
MAX_TTL = 28 * 24 * 3600

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES = ("very-low", "low", "normal", "high")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class PushMessage(msgspec.Struct, kw_only=True):
    """What a device shows: never health data.

    Callers pass fixed texts such as title "Pijnwacht", body "Tijd voor uw dagboek", never
    scores, answers, symptoms, medication or diagnoses: the text passes through the push
    service of the browser's vendor and is shown on a locked screen.

    - url: the PWA route to open on click, e.g. "/#/today" or "/#/task/123" (same origin).
    - tag: the device replaces a shown message with the same tag, so a message delivered
      twice is seen once; also used as the push Topic (a newer message with the same topic
      replaces an undelivered older one) when it is at most 32 base64url characters.
    - urgency: 'very-low' | 'low' | 'normal' | 'high' (the Urgency header; battery savers).
    - ttl: seconds the push service may keep the message for an offline device.
    """

    title: str
    body: str
    url: str = "/#/today"
    tag: str = "pijnwacht"
    urgency: Urgency = "normal"
    ttl: int = 3600


def payload(message: PushMessage) -> str:
    """Validate a message and return the payload JSON the service worker receives."""
    if not isinstance(message.title, str) or not message.title.strip():
        raise ValueError("title is missing")
    if not isinstance(message.body, str):
        raise ValueError("body must be text")
    if not isinstance(message.url, str) or not message.url.startswith("/") or (message.url.startswith("//")):
        raise ValueError("url must be a route of the app, starting with /")
    if not isinstance(message.tag, str) or not message.tag:
        raise ValueError("tag is missing")
    if message.urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}")
    if not isinstance(message.ttl, int) or not 0 <= message.ttl <= MAX_TTL:
        raise ValueError(f"ttl must be 0..{MAX_TTL} seconds")
    text = json.dumps(
        {"title": message.title, "body": message.body, "url": message.url, "tag": message.tag},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"message is longer than {MAX_PAYLOAD_BYTES} bytes")
    return text


def payload_head(title: str, body: str) -> str:
    """The payload JSON of a message with this title and body, up to the url's value.

    `head + url + '","tag":"' + tag + '"}'` is, to the byte, `payload(...)` for a url and a
    tag that need no escaping (an app route with a task id, 'task-<id>'): for building a
    whole minute's payloads in SQL (see `store.enqueue_messages`). Cut from a whole payload
    and checked."""
    url, tag = "/#/task/12", "task-12"
    whole = payload(PushMessage(title=title, body=body, url=url, tag=tag))
    tail = f'{url}","tag":"{tag}"}}'
    if not whole.endswith(tail):
        raise ValueError(f"push payloads no longer end in url and tag: {whole}")
    return whole[: -len(tail)]


def enqueue(
    conn: sqlite3.Connection,
    *,
    patient_id: str | None = None,
    user_id: int | None = None,
    message: PushMessage,
    now: datetime,
) -> int:
    """Queue `message` for every active device of a patient (or user); return how many.

    Meant to run inside the writer transaction that claims the reminder, so the claim and
    the queued pushes commit together (or not at all). Sending is `flush`'s job.
    """
    if (patient_id is None) == (user_id is None):
        raise ValueError("give exactly one of patient_id and user_id")
    at = iso(now)
    return store.enqueue(
        conn,
        "patient_id" if patient_id is not None else "user_id",
        patient_id if patient_id is not None else user_id,  # type: ignore[arg-type]
        payload=payload(message),
        urgency=message.urgency,
        ttl=message.ttl,
        topic=message.tag if _TOPIC.match(message.tag) else None,
        at=at,
        expires_at=iso(now + timedelta(seconds=message.ttl)),
    )


def enqueue_for_clinicians(conn: sqlite3.Connection, message: PushMessage, now: datetime) -> int:
    """Queue `message` for every clinician with an active device; how many pushes."""
    return sum(enqueue(conn, user_id=u, message=message, now=now) for u in store.subscribed_user_ids(conn))


# Rows read per prune job, the queue's and the reminder log's (each a writer job of its own,
# so other writes go between).
PRUNE_CHUNK = 2000


def prune_queue(db: Database, *, now: datetime, keep_days: int = 30, chunk: int = PRUNE_CHUNK) -> int:
    """Delete finished queue rows (sent or dead) older than `keep_days`, a chunk per writer
    job; return how many.

    A reminder a day for every patient adds up; the nightly sweep calls this so the queue
    holds what is pending plus a month of history to answer "did my phone get it?".
    """
    before = iso(now - timedelta(days=keep_days))
    total, after = 0, 0
    while True:
        deleted, after = db.write_sync(lambda c, a=after: store.prune_chunk(c, before, a, chunk))
        total += deleted
        if after is None:
            return total
