"""A stand-in for a browser vendor's push service, on loopback, for tests and benchmarks.

It does what Mozilla's autopush or Google's FCM do with a Web Push request, as far as a
sender can tell: checks the VAPID Authorization header (ES256 JWT, aud, exp, sub), the TTL,
Urgency and Topic headers, decrypts the aes128gcm body with the subscription's private key
(RFC 8291), and answers. Tests script the answers per endpoint.

    with PushService() as service:
        sub = service.new_subscription()          # PushSubscription JSON, as a browser posts it
        service.script(sub["endpoint"], [500, (429, {"Retry-After": "30"}), "hang", 410])
        ... flush ...
        service.received(sub["endpoint"])         # delivered messages: payload, ttl, urgency
        service.errors                            # protocol violations seen (should be [])

Answers in a script are used one per request, in order; after the script, 201. "hang" keeps
the request open for `hang_seconds` (longer than the sender's timeout) and then answers 201.

It listens on plain http on loopback, which the server refuses unless
`push_allow_loopback` (PIJNWACHT_PUSH_ALLOW_LOOPBACK=true) is set: every test using it sets it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import http_ece
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

Reply = int | str | tuple[int, dict[str, str]]

URGENCIES = ("very-low", "low", "normal", "high")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class _Subscription:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


class VapidError(Exception):
    """The request's VAPID Authorization header would be refused by a real push service."""


def verify_vapid(authorization: str, audience: str, now: float | None = None) -> dict[str, Any]:
    """Check a `vapid t=<JWT>,k=<key>` header as RFC 8292 says; return the JWT claims."""
    now = time.time() if now is None else now
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError(f"scheme is {scheme!r}, not vapid")
    parts: dict[str, str] = {}
    for item in params.split(","):
        name, _, value = item.strip().partition("=")
        parts[name.strip()] = value.strip()
    if "t" not in parts or "k" not in parts:
        raise VapidError("t= or k= missing")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64url(parts["k"]))
        header_b64, claims_b64, sig_b64 = parts["t"].split(".")
        header = json.loads(_unb64url(header_b64))
        claims = json.loads(_unb64url(claims_b64))
        sig = _unb64url(sig_b64)
    except ValueError as exc:
        raise VapidError(f"malformed token: {exc}") from None
    if header.get("alg") != "ES256":
        raise VapidError(f"alg is {header.get('alg')!r}, not ES256")
    if len(sig) != 64:
        raise VapidError("signature is not 64 bytes (r||s)")
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VapidError("signature does not verify with k") from None
    if claims.get("aud") != audience:
        raise VapidError(f"aud is {claims.get('aud')!r}, not {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + 24 * 3600:
        raise VapidError("exp missing, past, or more than 24 h ahead")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise VapidError("sub missing (mailto: or https: contact)")
    claims["_k"] = parts["k"]
    return claims


class PushService:
    """A real HTTP push service on 127.0.0.1 (random port), run in a thread of its own."""

    def __init__(self, *, hang_seconds: float = 30.0):
        self.hang_seconds = hang_seconds
        self.url = ""
        self.errors: list[str] = []
        self._subs: dict[str, _Subscription] = {}
        self._vapid_cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> PushService:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="push-service", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/push/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _shutdown(self) -> None:
        assert self._stopping is not None and self._runner is not None
        self._stopping.set()
        await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------
    def new_subscription(self, application_server_key: str | None = None) -> dict[str, Any]:
        """A browser's PushSubscription JSON for a new device, its endpoint on this service.

        With `application_server_key` (the server's VAPID public key, base64url), pushes
        signed with another key are refused with 403, as real services do.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._subs[token] = _Subscription(key, auth, application_server_key)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.url}/push/{token}",
            "expirationTime": None,
            "keys": {"p256dh": _b64url(public), "auth": _b64url(auth)},
        }

    def script(self, endpoint: str, replies: Iterable[Reply]) -> None:
        """Answer the next requests to `endpoint` with these (status, (status, headers), 'hang')."""
        with self._lock:
            self._sub(endpoint).script.extend(replies)

    def requests(self, endpoint: str) -> list[dict[str, Any]]:
        """Every request that reached `endpoint`, with the status it was answered."""
        with self._lock:
            return [dict(r) for r in self._sub(endpoint).requests]

    def received(self, endpoint: str) -> list[dict[str, Any]]:
        """Messages delivered to `endpoint` (answered 2xx): payload, ttl, urgency, topic."""
        return [r for r in self.requests(endpoint) if 200 <= r["status"] < 300]

    def total_received(self) -> int:
        with self._lock:
            return sum(1 for s in self._subs.values() for r in s.requests if 200 <= r["status"] < 300)

    def _sub(self, endpoint: str) -> _Subscription:
        token = endpoint.rstrip("/").rsplit("/", 1)[-1]
        return self._subs[token]

    # -- the push service ------------------------------------------------------------------
    def _verified(self, authorization: str) -> dict[str, Any]:
        # A sender may reuse one JWT for many pushes (RFC 8292): check its signature once,
        # its expiry every time.
        claims = self._vapid_cache.get(authorization)
        if claims is None:
            claims = verify_vapid(authorization, self.url)
            if len(self._vapid_cache) > 1000:
                self._vapid_cache.clear()
            self._vapid_cache[authorization] = claims
        elif claims["exp"] <= time.time():
            raise VapidError("exp is past")
        return claims

    def _reject(self, status: int, why: str) -> web.Response:
        with self._lock:
            self.errors.append(why)
        return web.Response(status=status, text=why)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        with self._lock:
            sub = self._subs.get(token)
        if sub is None:
            return web.Response(status=404, text="no such subscription")
        authorization = request.headers.get("Authorization", "")
        try:
            claims = self._verified(authorization)
        except VapidError as exc:
            return self._reject(401, f"VAPID: {exc}")
        if sub.application_server_key and claims["_k"] != sub.application_server_key:
            return self._reject(403, "VAPID key differs from the subscription's")
        ttl_text = request.headers.get("TTL", "")
        if not ttl_text.isdigit():
            return self._reject(400, "TTL header missing or not a number")
        urgency = request.headers.get("Urgency")
        if urgency is not None and urgency not in URGENCIES:
            return self._reject(400, f"Urgency {urgency!r} is not valid")
        topic = request.headers.get("Topic")
        if topic is not None and (len(topic) > 32 or not topic.replace("-", "").replace("_", "").isalnum()):
            return self._reject(400, f"Topic {topic!r} is not valid")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._reject(400, "Content-Encoding is not aes128gcm")
        body = await request.read()
        if len(body) > 4096:
            return self._reject(413, "payload larger than 4096 bytes")
        try:
            plain = http_ece.decrypt(
                body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
            payload = json.loads(plain)
        except Exception as exc:  # noqa: BLE001 - any failure is the sender's fault
            return self._reject(400, f"cannot decrypt: {exc!r}")

        with self._lock:
            reply = sub.script.pop(0) if sub.script else 201
        headers: dict[str, str] = {}
        if reply == "hang":
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)
            status = 201
        elif isinstance(reply, tuple):
            status, headers = reply
        else:
            status = int(reply)
        record = {
            "payload": payload,
            "ttl": int(ttl_text),
            "urgency": urgency,
            "topic": topic,
            # A hung request's sender gave up: count it as not delivered.
            "status": 0 if reply == "hang" else status,
            "hung": reply == "hang",
            "at": time.time(),
        }
        with self._lock:
            sub.requests.append(record)
        if status in (201, 202):
            headers = {**headers, "Location": f"{self.url}/message/{secrets.token_urlsafe(8)}"}
        return web.Response(status=status, headers=headers)


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A running stand-in push service; import this fixture into a test module to use it."""
    with PushService() as service:
        yield service
