"""The server's VAPID identity: the key pair in the data folder, and the signed headers.

The private key is the truth (a PEM file, mode 0600); its public half, the browser's
applicationServerKey, is derived from it and stored beside it for operators. Every push
carries a VAPID Authorization header signed with it (RFC 8292).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from backend.platform.files import write_atomic

log = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "vapid_private.pem"
PUBLIC_KEY_FILE = "vapid_public.txt"
# The VAPID JWT may live at most 24 h (RFC 8292); 12 h leaves room for clock skew.
VAPID_EXPIRY_SECONDS = 12 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    """The server's VAPID identity: signs every push; its public half goes to the browser."""

    vapid: Vapid02
    # The uncompressed P-256 point, base64url without padding: the applicationServerKey.
    public_key_b64: str
    private_key_path: Path


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
        try:
            write_atomic(private_path, pem, mode=0o600, exclusive=True)
            log.info("made a new VAPID key pair in %s", data_dir)
        except FileExistsError:
            pass  # another process made the key a moment ago: never overwrite it, use it
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
    public_b64 = b64url(
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
        write_atomic(public_path, public_b64 + "\n", mode=0o644)
    return VapidKeys(vapid=Vapid02(key), public_key_b64=public_b64, private_key_path=private_path)


def origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class VapidHeaders:
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
        audience = origin(endpoint)
        header = self._by_origin.get(audience)
        if header is None:
            claims = {
                "sub": self._contact,
                "aud": audience,
                "exp": int(time.time()) + VAPID_EXPIRY_SECONDS,
            }
            header = self._keys.vapid.sign(claims)
            self._by_origin[audience] = header
        return header
