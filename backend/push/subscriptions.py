"""The browsers' push subscriptions: a PushSubscription JSON checked and stored, or ended.

The PWA asks for `VapidKeys.public_key_b64`, subscribes, and posts its PushSubscription
JSON; `save_subscription` checks every field (the endpoint by `endpoints`) and stores it
for the patient (or clinician) it belongs to.
"""

from __future__ import annotations

import binascii
import re
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec

from backend.platform.messages import Refusal
from backend.platform.storage import iso
from backend.push import store
from backend.push.endpoints import check_endpoint
from backend.push.keys import b64url, unb64url

_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class EndpointTaken(Refusal):
    """The endpoint is an active subscription of someone else: it stays theirs (409)."""

    def __init__(self) -> None:
        super().__init__("push.endpoint_taken", 409)


def _decoded_key(keys: Mapping, name: str, length: int) -> str:
    field = f"keys.{name}"
    value = keys.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} is missing")
    if not _B64URL.match(value):
        raise ValueError(f"{field} is not base64url")
    try:
        raw = unb64url(value.rstrip("="))
    except (binascii.Error, ValueError):
        raise ValueError(f"{field} is not base64url") from None
    if len(raw) != length:
        raise ValueError(f"{field} must decode to {length} bytes, not {len(raw)}")
    if name == "p256dh":
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError(f"{field} is not a P-256 public key") from None
    return b64url(raw)


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
    old = store.subscription_by_endpoint(conn, endpoint)
    if old is None:
        return store.insert_subscription(
            conn,
            patient_id=patient_id,
            user_id=user_id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            user_agent=ua,
            at=at,
        )
    sub_id = int(old[0])
    if (old[1], old[2]) != (patient_id, user_id):
        if old[3] is None:
            raise EndpointTaken()
        store.kill_queued(conn, sub_id, "moved")
    store.renew_subscription(
        conn, sub_id, patient_id=patient_id, user_id=user_id, p256dh=p256dh, auth=auth, user_agent=ua
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
    sub_id = store.active_subscription_id(conn, endpoint, patient_id=patient_id, user_id=user_id)
    if sub_id is None:
        return False
    store.deactivate(conn, sub_id, iso(datetime.now(UTC)))
    store.kill_queued(conn, sub_id, "unsubscribed")
    return True
