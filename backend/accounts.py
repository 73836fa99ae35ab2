"""Clinician accounts: argon2id passwords, server-side sessions, CSRF tokens, login throttling."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
from argon2 import PasswordHasher
from argon2 import exceptions as argon2_exceptions

from backend.storage import iso, parse_iso, utcnow

# OWASP's minimum for argon2id: m=19 MiB, t=2, p=1. We take more memory.
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
ROLES = ("clinician", "admin")
MIN_PASSWORD_LENGTH = 8
_COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


class AccountError(ValueError):
    """A request about an account that cannot be honoured; the message says why."""


class User(msgspec.Struct, frozen=True):
    id: int
    email: str
    name: str
    role: str


class Session(msgspec.Struct, frozen=True):
    user: User
    csrf_token: str
    expires_at: str


def _common_passwords() -> frozenset[str]:
    try:
        return frozenset(
            line.strip().lower() for line in _COMMON_PASSWORDS_FILE.read_text().splitlines() if line.strip()
        )
    except FileNotFoundError:
        return frozenset()


COMMON_PASSWORDS = _common_passwords()


def check_password_strength(password: str, *, email: str = "", name: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    low = password.lower()
    if low in COMMON_PASSWORDS:
        raise AccountError("This password is on a list of common passwords: choose another.")
    if email and low == email.lower() or name and low == name.lower():
        raise AccountError("The password must differ from the e-mail address and the name.")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- users --------------------------------------------------------------------------------
def add_user(conn: sqlite3.Connection, *, email: str, name: str, role: str, password: str) -> User:
    email = email.strip()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an e-mail address.")
    if not name.strip():
        raise AccountError("A name is required.")
    if role not in ROLES:
        raise AccountError(f"The role must be one of {', '.join(ROLES)}.")
    check_password_strength(password, email=email, name=name)
    now = iso(utcnow())
    try:
        cur = conn.execute(
            "INSERT INTO users (email, name, role, password_hash, created_at, password_changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (email, name.strip(), role, hash_password(password), now, now),
        )
    except sqlite3.IntegrityError:
        raise AccountError(f"There is already an account for {email}.") from None
    return User(id=cur.lastrowid, email=email, name=name.strip(), role=role)


def list_users(conn: sqlite3.Connection) -> list[User]:
    rows = conn.execute(
        "SELECT id, email, name, role FROM users WHERE disabled_at IS NULL ORDER BY name"
    ).fetchall()
    return [User(**dict(r)) for r in rows]


def verify_login(conn: sqlite3.Connection, email: str, password: str) -> User | None:
    """The user if the password is right (rehashing if parameters changed), else None."""
    row = conn.execute(
        "SELECT id, email, name, role, password_hash FROM users WHERE email = ? AND disabled_at IS NULL",
        (email.strip(),),
    ).fetchone()
    if row is None:
        # Spend the same time as a real check, so timing does not reveal which e-mails exist.
        with contextlib.suppress(argon2_exceptions.VerificationError):
            HASHER.verify(_DUMMY_HASH, password)
        return None
    try:
        HASHER.verify(row["password_hash"], password)
    except (argon2_exceptions.VerificationError, argon2_exceptions.InvalidHashError):
        return None
    if HASHER.check_needs_rehash(row["password_hash"]):
        conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (hash_password(password), row["id"]))
    return User(id=row["id"], email=row["email"], name=row["name"], role=row["role"])


_DUMMY_HASH = HASHER.hash("not-a-real-password-0")


def change_password(conn: sqlite3.Connection, user: User, old: str, new: str) -> None:
    """Change a password (the old one must be right); every session of the user ends."""
    if verify_login(conn, user.email, old) is None:
        raise AccountError("The current password is not right.")
    check_password_strength(new, email=user.email, name=user.name)
    conn.execute(
        "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
        (hash_password(new), iso(utcnow()), user.id),
    )
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))


# -- sessions -----------------------------------------------------------------------------
def create_session(
    conn: sqlite3.Connection, user: User, *, hours: int, source: str | None
) -> tuple[str, Session]:
    """A new session (always a fresh id, so a planted session id is worthless after login)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    expires = iso(now + timedelta(hours=hours))
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, source)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (_hash_token(token), user.id, csrf, iso(now), expires, source),
    )
    return token, Session(user=user, csrf_token=csrf, expires_at=expires)


def load_session(conn: sqlite3.Connection, token: str | None) -> Session | None:
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT s.csrf_token, s.expires_at, u.id, u.email, u.name, u.role"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND u.disabled_at IS NULL",
        (_hash_token(token),),
    ).fetchone()
    if row is None or row["expires_at"] <= iso(utcnow()):
        return None
    user = User(id=row["id"], email=row["email"], name=row["name"], role=row["role"])
    return Session(user=user, csrf_token=row["csrf_token"], expires_at=row["expires_at"])


def end_session(conn: sqlite3.Connection, token: str | None) -> None:
    if token:
        conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash_token(token),))


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf_token, submitted or "")


# -- throttling ---------------------------------------------------------------------------
def throttled_until(conn: sqlite3.Connection, key: str, now: datetime) -> datetime | None:
    """When `key` (e.g. 'login:email' or 'enrol:ip') may try again, or None if it may now."""
    row = conn.execute("SELECT locked_until FROM throttle WHERE key = ?", (key,)).fetchone()
    if row and row["locked_until"]:
        until = parse_iso(row["locked_until"])
        if until > now:
            return until
    return None


def record_failure(
    conn: sqlite3.Connection, key: str, now: datetime, *, max_failures: int, lockout: timedelta
) -> None:
    """Count a failed try; after max_failures within the lockout window, lock the key."""
    row = conn.execute("SELECT failures, first_failure_at FROM throttle WHERE key = ?", (key,)).fetchone()
    if row is None or parse_iso(row["first_failure_at"]) < now - lockout:
        failures, first = 1, now
    else:
        failures, first = row["failures"] + 1, parse_iso(row["first_failure_at"])
    locked = iso(now + lockout) if failures >= max_failures else None
    conn.execute(
        "INSERT INTO throttle (key, failures, first_failure_at, locked_until) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,"
        " first_failure_at = excluded.first_failure_at, locked_until = excluded.locked_until",
        (key, failures, iso(first), locked),
    )


def clear_failures(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM throttle WHERE key = ?", (key,))
