"""Web Push: VAPID keys, the browsers' subscriptions, and a queue that delivers reminders.

The flow: the PWA asks for `VapidKeys.public_key_b64`, subscribes, and posts its
PushSubscription JSON (`save_subscription`). The scheduler, when it claims a due reminder,
calls `enqueue` inside the same writer transaction (claim and enqueue commit together), then
`flush` sends what is due. Every state change of a queue row is a compare-and-set, so two
flushes never send the same row, and a sender that crashed after claiming leaves rows that
a later flush takes over (delivery is at least once; the message `tag` makes the device
show a message delivered twice only once).

Payloads carry no health data: a title, a body like "Tijd voor uw dagboek", the app route to
open and a tag. Push services and the patient's lock screen see them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async

from backend.platform.messages import Refusal
from backend.platform.settings import Settings
from backend.platform.storage import Database, iso, parse_iso

log = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "vapid_private.pem"
PUBLIC_KEY_FILE = "vapid_public.txt"

# Sending: how many pushes are in flight at once, and how often a row is tried.
CONCURRENCY = 20
MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
RETRY_AFTER_MAX = timedelta(days=1)
# A row in 'sending' longer than this belongs to a sender that died: take it over.
STALE_AFTER = timedelta(minutes=5)
# Push services refuse bodies over 4096 bytes encrypted; leave room for the encryption.
MAX_PAYLOAD_BYTES = 3000
MAX_TTL = 28 * 24 * 3600
# The VAPID JWT may live at most 24 h (RFC 8292); 12 h leaves room for clock skew.
VAPID_EXPIRY_SECONDS = 12 * 3600

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES = ("very-low", "low", "normal", "high")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- VAPID keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VapidKeys:
    """The server's VAPID identity: signs every push; its public half goes to the browser."""

    vapid: Vapid02
    # The uncompressed P-256 point, base64url without padding: the applicationServerKey.
    public_key_b64: str
    private_key_path: Path


def _write_new_file(path: Path, data: bytes, mode: int) -> bool:
    """Create `path` with `data` atomically; False if it already exists (someone else won)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed or widened what os.open asked for
        try:
            # link, not replace: never overwrite a key another process made a moment ago.
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def ensure_vapid_keys(data_dir: Path) -> VapidKeys:
    """Load the VAPID key pair from the data folder, making it on first start.

    The private key is a PEM file with mode 0600; the public key is stored beside it (for
    operators) and always re-derived from the private key, which is the truth. Reusing the
    key matters: browsers subscribed with it, and a new key would silence every device.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    private_path = data_dir / PRIVATE_KEY_FILE
    if not private_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if _write_new_file(private_path, pem, 0o600):
            log.info("made a new VAPID key pair in %s", data_dir)
    mode = private_path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("VAPID private key was readable by others (mode %o); set to 0600", mode)
        os.chmod(private_path, 0o600)
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    except ValueError:
        raise ValueError(f"{private_path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{private_path} is not a P-256 private key")
    public_b64 = _b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    public_path = data_dir / PUBLIC_KEY_FILE
    try:
        stored = public_path.read_text().strip()
    except FileNotFoundError:
        stored = None
    if stored != public_b64:
        tmp = public_path.with_name(f".{public_path.name}.{secrets.token_hex(8)}.tmp")
        tmp.write_text(public_b64 + "\n")
        os.replace(tmp, public_path)
    return VapidKeys(vapid=Vapid02(key), public_key_b64=public_b64, private_key_path=private_path)


# -- subscriptions ------------------------------------------------------------------------


def _decoded_key(keys: Mapping, name: str, length: int) -> str:
    field = f"keys.{name}"
    value = keys.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} is missing")
    if not _B64URL.match(value):
        raise ValueError(f"{field} is not base64url")
    try:
        raw = _unb64url(value.rstrip("="))
    except (binascii.Error, ValueError):
        raise ValueError(f"{field} is not base64url") from None
    if len(raw) != length:
        raise ValueError(f"{field} must decode to {length} bytes, not {len(raw)}")
    if name == "p256dh":
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError(f"{field} is not a P-256 public key") from None
    return _b64url(raw)


class EndpointRefused(Refusal, ValueError):
    """A push endpoint the server will not POST to (422); str() is the Dutch text."""


class EndpointTaken(Refusal):
    """The endpoint is an active subscription of someone else: it stays theirs (409)."""

    def __init__(self) -> None:
        super().__init__("push.endpoint_taken", 409)


class RefusedAddress(OSError):
    """A push endpoint's host is (or resolves to) an address inside a private network."""


# 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits, like ::ffff:0:0/96.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_is_public(address: str) -> bool:
    """True for an address on the public internet; False for private, loopback, link-local,
    CGNAT, unique-local, multicast, reserved and unspecified ones, also when an IPv4 address
    hides inside an IPv6 form (mapped, compatible, 6to4, Teredo, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not address_is_public(str(embedded)):
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback or ip.is_link_local
    )


def _address_is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _numeric_host(host: str) -> str | None:
    """The address a host written as a number stands for ("2130706433", "0x7f.1", "127.1",
    "[::1]"), as the C resolver would read it; None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", host) and not host.endswith(".."):
        try:
            return socket.inet_ntoa(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def check_endpoint(endpoint: Any, *, allow_loopback: bool = False) -> str:
    """The endpoint if it is an https URL to a public host (or, with `allow_loopback`, plain
    http to this machine); ValueError naming `endpoint` otherwise. A host name is checked
    by `check_endpoint_resolves` and again, address by address, when connecting."""
    if not isinstance(endpoint, str) or not endpoint:
        raise EndpointRefused("push.endpoint_missing")
    if len(endpoint) > 2048 or any(c.isspace() for c in endpoint):
        raise EndpointRefused("push.endpoint_invalid")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise EndpointRefused("push.endpoint_invalid") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointRefused("push.endpoint_https")
    if parts.username or parts.password or parts.fragment:
        raise EndpointRefused("push.endpoint_not_push")
    host = parts.hostname
    numeric = _numeric_host(host)
    loopback = host == "localhost" or (numeric is not None and _address_is_loopback(numeric))
    if allow_loopback and loopback:
        return endpoint
    if parts.scheme != "https":
        raise EndpointRefused("push.endpoint_https")
    # A push service is on the public internet; anything else would let a device token make
    # the server POST into the clinic's own network.
    if loopback or (numeric is not None and not address_is_public(numeric)):
        raise EndpointRefused("push.endpoint_private")
    return endpoint


async def check_endpoint_resolves(endpoint: Any, *, allow_loopback: bool = False) -> str:
    """`check_endpoint`, and every address the host name resolves to now must be public.

    A name that does not resolve at this moment is kept (push services' names do resolve;
    a failing resolver must not cost a patient their reminders): the connection checks the
    address it actually connects to anyway (`_guarded_socket`).
    """
    endpoint = check_endpoint(endpoint, allow_loopback=allow_loopback)
    host = urlsplit(endpoint).hostname or ""
    if _numeric_host(host) is not None or (allow_loopback and host == "localhost"):
        return endpoint
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM), 3.0)
    except (OSError, TimeoutError):
        return endpoint
    if any(not address_is_public(str(info[4][0])) for info in infos):
        raise EndpointRefused("push.endpoint_private")
    return endpoint


def _guarded_socket(allow_loopback: bool):
    """aiohttp's socket factory: refuses to connect to a non-public address. It sees the
    address actually connected to (after DNS), so a name that resolved to a public address
    when subscribing and to 10.0.0.5 now (DNS rebinding) is still refused."""

    def make(addr_info: tuple) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if not (address_is_public(address) or (allow_loopback and _address_is_loopback(address))):
            raise RefusedAddress(f"push endpoint resolves to a non-public address {address}")
        return socket.socket(family=family, type=type_, proto=proto)

    return make


class _NoRedirects:
    """The session as pywebpush uses it (`post`), with redirects never followed: a 307 or
    308 would repeat the POST, body and all, to wherever the answer points."""

    def __init__(self, session: aiohttp.ClientSession):
        self._session = session

    def post(self, url: str, **kwargs: Any):
        return self._session.post(url, allow_redirects=False, **kwargs)


def save_subscription(
    conn: sqlite3.Connection,
    *,
    patient_id: str | None = None,
    user_id: int | None = None,
    subscription: Mapping,
    user_agent: str | None = None,
    now: datetime | None = None,
    allow_loopback: bool = False,
) -> int:
    """Store a browser's PushSubscription JSON for a patient (or a clinician); return its id.

    Raises ValueError naming the bad field (`endpoint`, `keys.p256dh`, `keys.auth`). The
    same endpoint again from its owner (a re-subscribe, new keys) updates and re-activates
    the one row. An endpoint that is someone else's active subscription raises EndpointTaken
    and stays theirs: whoever learnt a patient's endpoint cannot move their reminders. Once
    that subscription has ended (unsubscribed, or the push service dropped it), the endpoint
    may move to a new owner; messages still queued for the previous one die.
    """
    if (patient_id is None) == (user_id is None):
        raise ValueError("a subscription belongs to exactly one patient or one user")
    if not isinstance(subscription, Mapping):
        raise ValueError("subscription must be a JSON object")
    endpoint = check_endpoint(subscription.get("endpoint"), allow_loopback=allow_loopback)
    keys = subscription.get("keys")
    if not isinstance(keys, Mapping):
        raise ValueError("keys is missing")
    p256dh = _decoded_key(keys, "p256dh", 65)
    auth = _decoded_key(keys, "auth", 16)
    at = iso(now or datetime.now(UTC))
    ua = user_agent[:300] if user_agent else None
    old = conn.execute(
        "SELECT id, patient_id, user_id, deactivated_at FROM push_subscriptions WHERE endpoint = ?",
        (endpoint,),
    ).fetchone()
    if old is None:
        cur = conn.execute(
            "INSERT INTO push_subscriptions (patient_id, user_id, endpoint, p256dh, auth,"
            " user_agent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (patient_id, user_id, endpoint, p256dh, auth, ua, at),
        )
        return int(cur.lastrowid)
    sub_id = int(old[0])
    if (old[1], old[2]) != (patient_id, user_id):
        if old[3] is None:
            raise EndpointTaken()
        _kill_queued(conn, sub_id, "moved")
    conn.execute(
        "UPDATE push_subscriptions SET patient_id = ?, user_id = ?, p256dh = ?, auth = ?,"
        " user_agent = COALESCE(?, user_agent), failures = 0, deactivated_at = NULL"
        " WHERE id = ?",
        (patient_id, user_id, p256dh, auth, ua, sub_id),
    )
    return sub_id


def remove_subscription(
    conn: sqlite3.Connection,
    *,
    patient_id: str | None = None,
    endpoint: str,
    user_id: int | None = None,
) -> bool:
    """Stop pushing to this endpoint of this patient (or user); False if it was not theirs.

    The row stays (deactivated) so the history of what was sent remains explainable.
    """
    if (patient_id is None) == (user_id is None):
        raise ValueError("give exactly one of patient_id and user_id")
    row = conn.execute(
        "SELECT id FROM push_subscriptions WHERE endpoint = ? AND deactivated_at IS NULL"
        " AND patient_id IS ? AND user_id IS ?",
        (endpoint, patient_id, user_id),
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        "UPDATE push_subscriptions SET deactivated_at = ? WHERE id = ?",
        (iso(datetime.now(UTC)), row[0]),
    )
    _kill_queued(conn, int(row[0]), "unsubscribed")
    return True


def _kill_queued(conn: sqlite3.Connection, subscription_id: int, why: str) -> None:
    conn.execute(
        "UPDATE push_queue SET status = 'dead', last_status = ?"
        " WHERE subscription_id = ? AND status = 'queued'",
        (why, subscription_id),
    )


# -- messages and the queue ---------------------------------------------------------------


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


def _check_message(message: PushMessage) -> str:
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
    payload = json.dumps(
        {"title": message.title, "body": message.body, "url": message.url, "tag": message.tag},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"message is longer than {MAX_PAYLOAD_BYTES} bytes")
    return payload


_ENQUEUE_SQL = (
    "INSERT INTO push_queue (subscription_id, payload, urgency, ttl, topic, created_at,"
    " expires_at, next_attempt_at)"
    " SELECT id, ?, ?, ?, ?, ?, ?, ? FROM push_subscriptions"
    " WHERE {column} = ? AND deactivated_at IS NULL"
)


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
    column = "patient_id" if patient_id is not None else "user_id"
    owner = patient_id if patient_id is not None else user_id
    row = _queue_row(message, now, iso(now), owner)
    return conn.execute(_ENQUEUE_SQL.format(column=column), row).rowcount


def _queue_row(message: PushMessage, now: datetime, at: str, owner: Any) -> tuple:
    payload = _check_message(message)
    topic = message.tag if _TOPIC.match(message.tag) else None
    expires = iso(now + timedelta(seconds=message.ttl))
    return (payload, message.urgency, message.ttl, topic, at, expires, at, owner)


def prune_queue(conn: sqlite3.Connection, *, now: datetime, keep_days: int = 30) -> int:
    """Delete finished queue rows (sent or dead) older than `keep_days`; return how many.

    A reminder a day for every patient adds up; the nightly sweep calls this so the queue
    holds what is pending plus a month of history to answer "did my phone get it?".
    """
    cur = conn.execute(
        "DELETE FROM push_queue WHERE status IN ('sent', 'dead') AND created_at < ?",
        (iso(now - timedelta(days=keep_days)),),
    )
    return cur.rowcount


# -- sending ------------------------------------------------------------------------------


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
class _Row:
    id: int
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: str
    urgency: str
    topic: str | None
    expires_at: datetime
    attempts: int


@dataclass
class _Outcome:
    row: _Row
    status: int | None = None  # HTTP status, None for no answer
    error: str | None = None  # 'timeout', 'network', or an exception name
    retry_after: str | None = None
    released: bool = False


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


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


def _claim(db_now: datetime, limit: int, claim: str):
    now = iso(db_now)
    stale = iso(db_now - STALE_AFTER)

    def run(conn: sqlite3.Connection) -> tuple[list[_Row], int, int]:
        # Messages past their TTL are pointless now ("time for your diary" at midnight).
        expired = conn.execute(
            "UPDATE push_queue SET status = 'dead', last_status = 'expired'"
            " WHERE status = 'queued' AND next_attempt_at <= ? AND expires_at < ?",
            (now, now),
        ).rowcount
        claimed = conn.execute(
            "UPDATE push_queue SET status = 'sending', claimed_at = ?, claim = ?,"
            " attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM push_queue"
            "   WHERE (status = 'queued' AND next_attempt_at <= ?)"
            "      OR (status = 'sending' AND claimed_at <= ?)"
            "   ORDER BY next_attempt_at, id LIMIT ?)"
            " RETURNING id",
            (now, claim, now, stale, limit),
        ).fetchall()
        if not claimed:
            return [], expired, 0
        rows = conn.execute(
            "SELECT q.id, q.subscription_id, s.endpoint, s.p256dh, s.auth, q.payload,"
            " q.urgency, q.topic, q.expires_at, q.attempts, s.deactivated_at"
            " FROM push_queue q JOIN push_subscriptions s ON s.id = q.subscription_id"
            " WHERE q.claim = ? AND q.status = 'sending' ORDER BY q.id",
            (claim,),
        ).fetchall()
        live: list[_Row] = []
        gone = 0
        for r in rows:
            if r[10] is not None:
                conn.execute(
                    "UPDATE push_queue SET status = 'dead', last_status = 'unsubscribed'"
                    " WHERE id = ? AND claim = ?",
                    (r[0], claim),
                )
                gone += 1
                continue
            live.append(_Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], parse_iso(r[8]), r[9]))
        return live, expired, gone

    return run


def _record(outcomes: list[_Outcome], now_dt: datetime, claim: str, report: FlushReport):
    now = iso(now_dt)

    def run(conn: sqlite3.Connection) -> None:
        def row_update(row: _Row, sql: str, *params: Any) -> bool:
            cur = conn.execute(
                f"UPDATE push_queue SET {sql} WHERE id = ? AND claim = ? AND status = 'sending'",
                (*params, row.id, claim),
            )
            return cur.rowcount == 1

        for o in outcomes:
            row = o.row
            status = o.status
            last = str(status) if status is not None else (o.error or "error")
            if o.released:
                # Not tried in this flush (time budget spent): back in line, attempt not used.
                if row_update(
                    row,
                    "status = 'queued', claim = NULL, claimed_at = NULL, attempts = attempts - 1",
                ):
                    report.released += 1
            elif status is not None and 200 <= status <= 202:
                if row_update(row, "status = 'sent', sent_at = ?, last_status = ?", now, last):
                    report.sent += 1
                conn.execute(
                    "UPDATE push_subscriptions SET last_success_at = ?, failures = 0 WHERE id = ?",
                    (now, row.subscription_id),
                )
            elif status in (404, 410):
                # The browser dropped the subscription (app removed, permission revoked).
                if row_update(row, "status = 'dead', last_status = ?", last):
                    report.dead += 1
                changed = conn.execute(
                    "UPDATE push_subscriptions SET deactivated_at = ?, failures = failures + 1"
                    " WHERE id = ? AND deactivated_at IS NULL",
                    (now, row.subscription_id),
                ).rowcount
                report.deactivated += changed
                _kill_queued(conn, row.subscription_id, "unsubscribed")
            elif _retryable(o):
                conn.execute(
                    "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = ?",
                    (row.subscription_id,),
                )
                if row.attempts >= MAX_ATTEMPTS:
                    if row_update(row, "status = 'dead', last_status = ?", last):
                        report.dead += 1
                    continue
                delay = _retry_delay(o.retry_after if status == 429 else None, row.attempts)
                if row_update(
                    row,
                    "status = 'queued', claim = NULL, claimed_at = NULL, next_attempt_at = ?,"
                    " last_status = ?",
                    iso(now_dt + delay),
                    last,
                ):
                    report.retried += 1
            else:
                if status == 413:
                    log.warning("push queue row %s refused as too large (413)", row.id)
                else:
                    log.warning("push queue row %s failed for good: %s", row.id, last)
                conn.execute(
                    "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = ?",
                    (row.subscription_id,),
                )
                if row_update(row, "status = 'dead', last_status = ?", last):
                    report.dead += 1

    return run


class _VapidHeaders:
    """One signed VAPID Authorization header per push service origin, for one flush.

    Signing per push would cost more than the encryption; a JWT for one audience may be
    reused until it expires (RFC 8292), and a flush ends long before VAPID_EXPIRY_SECONDS.
    Claims are a fresh dict per signature: nothing shared is ever mutated.
    """

    def __init__(self, keys: VapidKeys, contact: str):
        self._keys = keys
        self._contact = contact
        self._by_origin: dict[str, dict[str, str]] = {}

    def for_endpoint(self, endpoint: str) -> dict[str, str]:
        origin = _origin(endpoint)
        header = self._by_origin.get(origin)
        if header is None:
            claims = {
                "sub": self._contact,
                "aud": origin,
                "exp": int(time.time()) + VAPID_EXPIRY_SECONDS,
            }
            header = self._keys.vapid.sign(claims)
            self._by_origin[origin] = header
        return header


async def _send(
    session: aiohttp.ClientSession,
    row: _Row,
    vapid: _VapidHeaders,
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
    keys.vapid._base_sign({"sub": settings.push_contact, "aud": "https://example.org"})
    report = FlushReport()
    claim = secrets.token_hex(8)
    rows, expired, gone = await db.write(_claim(now, limit, claim))
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
    vapid = _VapidHeaders(keys, settings.push_contact)
    allow_loopback = settings.push_allow_loopback
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, socket_factory=_guarded_socket(allow_loopback))

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(row: _Row) -> _Outcome:
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
