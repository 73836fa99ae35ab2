"""Sending the queued pushes: encrypted (RFC 8291 aes128gcm), signed (VAPID), recorded.

`flush` claims what is due from the queue (`store.claim`, a compare-and-set, so two flushes
never send the same row, and a sender that crashed after claiming leaves rows that a later
flush takes over: delivery is at least once; the message `tag` makes the device show a
message delivered twice only once), sends it, and records each outcome; `drain` flushes
until nothing due is left, for the per-minute tick.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
from pywebpush import WebPushException, webpush_async

from backend.platform.settings import Settings
from backend.platform.storage import Database, iso
from backend.push import store
from backend.push.endpoints import RefusedAddress, check_endpoint, guarded_socket
from backend.push.keys import VapidHeaders, VapidKeys
from backend.push.store import QueuedPush

log = logging.getLogger(__name__)

# Sending: how many pushes are in flight at once, and how often a row is tried.
CONCURRENCY = 20
MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
RETRY_AFTER_MAX = timedelta(days=1)
# A row in 'sending' longer than this belongs to a sender that died: take it over.
STALE_AFTER = timedelta(minutes=5)


class FlushReport(msgspec.Struct):
    """What one flush did, in counts (for logs and tests; no endpoints, no content)."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    deactivated: int = 0
    expired: int = 0
    released: int = 0


@dataclass
class _Outcome:
    row: QueuedPush
    status: int | None = None  # HTTP status, None for no answer
    error: str | None = None  # 'timeout', 'network', or an exception name
    retry_after: str | None = None
    released: bool = False


def _retry_delay(retry_after: str | None, attempts: int) -> timedelta:
    """Retry-After (seconds or an HTTP date) if the service gave one, else backoff."""
    if retry_after:
        value = retry_after.strip()
        delay: timedelta | None = None
        if value.isdigit():
            delay = timedelta(seconds=int(value))
        else:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                delay = when - datetime.now(UTC)
        if delay is not None:
            return min(max(delay, timedelta(seconds=1)), RETRY_AFTER_MAX)
    return _backoff(attempts)


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def _retryable(o: _Outcome) -> bool:
    """Worth another try later: the service is busy or down, or the network failed."""
    if o.status is None:
        return o.error in ("timeout", "network")
    return o.status == 429 or o.status >= 500


def _record(outcomes: list[_Outcome], now_dt: datetime, claim: str, report: FlushReport):
    now = iso(now_dt)

    def run(conn: sqlite3.Connection) -> None:
        for o in outcomes:
            row = o.row
            status = o.status
            last = str(status) if status is not None else (o.error or "error")
            if o.released:
                # Not tried in this flush (time budget spent): back in line, attempt not used.
                if store.release(conn, row.id, claim):
                    report.released += 1
            elif status is not None and 200 <= status <= 202:
                if store.mark_sent(conn, row.id, claim, at=now, last=last):
                    report.sent += 1
                store.note_success(conn, row.subscription_id, now)
            elif status in (404, 410):
                # The browser dropped the subscription (app removed, permission revoked).
                if store.mark_dead(conn, row.id, claim, last=last):
                    report.dead += 1
                report.deactivated += store.dropped_by_service(conn, row.subscription_id, now)
                store.kill_queued(conn, row.subscription_id, "unsubscribed")
            elif _retryable(o):
                store.note_failure(conn, row.subscription_id)
                if row.attempts >= MAX_ATTEMPTS:
                    if store.mark_dead(conn, row.id, claim, last=last):
                        report.dead += 1
                    continue
                delay = _retry_delay(o.retry_after if status == 429 else None, row.attempts)
                if store.retry_at(conn, row.id, claim, when=iso(now_dt + delay), last=last):
                    report.retried += 1
            else:
                if status == 413:
                    log.warning("push queue row %s refused as too large (413)", row.id)
                else:
                    log.warning("push queue row %s failed for good: %s", row.id, last)
                store.note_failure(conn, row.subscription_id)
                if store.mark_dead(conn, row.id, claim, last=last):
                    report.dead += 1

    return run


class _NoRedirects:
    """The session as pywebpush uses it (`post`), with redirects never followed: a 307 or
    308 would repeat the POST, body and all, to wherever the answer points."""

    def __init__(self, session: aiohttp.ClientSession):
        self._session = session

    def post(self, url: str, **kwargs: Any):
        return self._session.post(url, allow_redirects=False, **kwargs)


async def _send(
    session: aiohttp.ClientSession,
    row: QueuedPush,
    vapid: VapidHeaders,
    timeout: aiohttp.ClientTimeout,
    now: datetime,
    allow_loopback: bool,
) -> _Outcome:
    headers: dict[str, str | int | float] = {
        **vapid.for_endpoint(row.endpoint),
        "Urgency": row.urgency,
    }
    if row.topic:
        headers["Topic"] = row.topic
    # The push service may keep the message only as long as it is still useful.
    ttl = max(int((row.expires_at - now.replace(microsecond=0)).total_seconds()), 0)
    info = {"endpoint": row.endpoint, "keys": {"p256dh": row.p256dh, "auth": row.auth}}
    try:
        check_endpoint(row.endpoint, allow_loopback=allow_loopback)
    except ValueError:
        return _Outcome(row, error="refused")
    try:
        resp = await webpush_async(
            subscription_info=info,
            data=row.payload,
            content_encoding="aes128gcm",
            ttl=ttl,
            headers=headers,
            timeout=timeout,  # type: ignore[arg-type]  # aiohttp takes a ClientTimeout
            aiohttp_session=_NoRedirects(session),  # type: ignore[arg-type]  # pywebpush only posts
        )
    except WebPushException as exc:
        return _Outcome(row, status=exc.status_code, error="push", retry_after=exc.retry_after)
    except TimeoutError:
        return _Outcome(row, error="timeout")
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, RefusedAddress) or "non-public address" in str(exc)
        return _Outcome(row, error="refused" if refused else "network")
    except (aiohttp.ClientError, OSError):
        return _Outcome(row, error="network")
    except Exception as exc:  # noqa: BLE001 - a bad key must not stop the other pushes
        return _Outcome(row, error=type(exc).__name__)
    return _Outcome(row, status=resp.status)  # type: ignore[union-attr]


async def flush(
    db: Database, settings: Settings, keys: VapidKeys, now: datetime, *, limit: int = 1000
) -> FlushReport:
    """Send the pushes that are due at `now`; record each outcome; return the counts.

    Claims up to `limit` due rows (and rows a crashed sender left in 'sending' longer than
    STALE_AFTER) with one compare-and-set update, sends them encrypted (aes128gcm, VAPID)
    with at most CONCURRENCY in flight, then records: 2xx sent; 404/410 subscription
    deactivated; 413 and other 4xx dead; 429 retried after Retry-After; 5xx, timeouts and
    connection errors retried with exponential backoff, dead after MAX_ATTEMPTS tries.
    Database work runs in the writer thread, HTTP on this event loop: it never blocks.
    If `report.claimed == limit` more may be due: call again (a tick does, until less).
    """
    # A bad contact would fail every push; say so once instead of killing the queue.
    keys.vapid.sign({"sub": settings.push_contact, "aud": "https://example.org"})
    report = FlushReport()
    claim = secrets.token_hex(8)
    rows, expired, gone = await db.write(
        lambda conn: store.claim(
            conn, at=iso(now), stale_before=iso(now - STALE_AFTER), limit=limit, claim=claim
        )
    )
    report.expired = expired
    report.dead += gone
    report.claimed = len(rows) + gone
    if not rows:
        return report

    timeout = aiohttp.ClientTimeout(total=settings.push_timeout_seconds)
    # Rows still waiting when this much time has passed go back to the queue, so no row is
    # held in 'sending' long enough to look abandoned to another flush.
    budget = STALE_AFTER.total_seconds() / 2 - settings.push_timeout_seconds
    started = time.monotonic()
    gate = asyncio.Semaphore(CONCURRENCY)
    vapid = VapidHeaders(keys, settings.push_contact)
    allow_loopback = settings.push_allow_loopback
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, socket_factory=guarded_socket(allow_loopback))

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(row: QueuedPush) -> _Outcome:
            async with gate:
                if time.monotonic() - started > budget:
                    return _Outcome(row, released=True)
                return await _send(session, row, vapid, timeout, now, allow_loopback)

        outcomes = await asyncio.gather(*(one(r) for r in rows))

    await db.write(_record(list(outcomes), now, claim, report))
    log.info(
        "push flush: %d claimed, %d sent, %d retry, %d dead, %d deactivated",
        report.claimed,
        report.sent,
        report.retried,
        report.dead,
        report.deactivated,
    )
    return report


def flush_sync(
    db: Database, settings: Settings, keys: VapidKeys, now: datetime, *, limit: int = 1000
) -> FlushReport:
    """`flush` for callers without an event loop (a scheduler thread, the CLI)."""
    return asyncio.run(flush(db, settings, keys, now, limit=limit))


async def drain(
    db: Database,
    settings: Settings,
    keys: VapidKeys,
    now: datetime,
    *,
    limit: int = 1000,
    max_seconds: float = 45.0,
) -> FlushReport:
    """Flush again and again until nothing due is left or `max_seconds` have passed.

    For the per-minute tick: at 20:00 every patient with the default reminder time is due at
    once, far more than one flush of `limit`; 45 s leaves the tick room inside its minute.
    """
    total = FlushReport()
    started = time.monotonic()
    while True:
        report = await flush(db, settings, keys, now, limit=limit)
        for name in FlushReport.__struct_fields__:
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if report.claimed < limit or time.monotonic() - started > max_seconds:
            return total


def drain_sync(
    db: Database,
    settings: Settings,
    keys: VapidKeys,
    now: datetime,
    *,
    limit: int = 1000,
    max_seconds: float = 45.0,
) -> FlushReport:
    """`drain` for callers without an event loop (the scheduler's thread, `pijnwacht tick`)."""
    return asyncio.run(drain(db, settings, keys, now, limit=limit, max_seconds=max_seconds))
