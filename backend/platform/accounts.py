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

from backend.platform import audit
from backend.platform.messages import Refusal
from backend.platform.storage import iso, parse_iso, utcnow

# OWASP's minimum for argon2id: m=19 MiB, t=2, p=1. We take more memory.
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
ROLES = ("clinician", "admin")
MIN_PASSWORD_LENGTH = 8
# Password checks at once (each ~0.2 s of CPU and 64 MiB); more sign-ins at that moment are
# asked to try again in a moment rather than queued, so a burst costs little memory or CPU.
VERIFY_CONCURRENCY = 4
_COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


class AccountError(Refusal, ValueError):
    """A request about an account that cannot be honoured; the message (a key of
    backend/platform/messages.py, or older texts as written) says why."""


class User(msgspec.Struct, frozen=True):
    id: int
    email: str
    name: str
    role: str


class Session(msgspec.Struct, frozen=True):
    user: User
    csrf_token: str
    expires_at: str
    last_seen_at: str | None = None


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
        raise AccountError("account.password_short", min=MIN_PASSWORD_LENGTH)
    low = password.lower()
    if low in COMMON_PASSWORDS:
        raise AccountError("account.password_common")
    if email and low == email.lower() or name and low == name.lower():
        raise AccountError("account.password_like_name")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- users --------------------------------------------------------------------------------
def add_user(conn: sqlite3.Connection, *, email: str, name: str, role: str, password: str) -> User:
    email = email.strip()
    if "@" not in email or len(email) > 254:
        raise AccountError("account.email", email=repr(email[:254]))
    if not name.strip():
        raise AccountError("account.name_required")
    if role not in ROLES:
        raise AccountError("account.role")
    check_password_strength(password, email=email, name=name)
    now = iso(utcnow())
    try:
        cur = conn.execute(
            "INSERT INTO users (email, name, role, password_hash, created_at, password_changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (email, name.strip(), role, hash_password(password), now, now),
        )
    except sqlite3.IntegrityError:
        raise AccountError("account.exists", email=email) from None
    return User(id=cur.lastrowid, email=email, name=name.strip(), role=role)


class Account(msgspec.Struct, frozen=True):
    """An account as the admin sees it: also when disabled."""

    id: int
    email: str
    name: str
    role: str
    disabled_at: str | None
    created_at: str


def accounts_list(conn: sqlite3.Connection) -> list[Account]:
    rows = conn.execute(
        "SELECT id, email, name, role, disabled_at, created_at FROM users"
        " ORDER BY disabled_at IS NOT NULL, name"
    ).fetchall()
    return [Account(**dict(r)) for r in rows]


def _account(conn: sqlite3.Connection, email: str) -> Account:
    row = conn.execute(
        "SELECT id, email, name, role, disabled_at, created_at FROM users WHERE email = ?", (email.strip(),)
    ).fetchone()
    if row is None:
        raise AccountError("account.unknown", email=email.strip())
    return Account(**dict(row))


def _keep_an_admin(conn: sqlite3.Connection, account: Account) -> None:
    others = conn.execute(
        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id != ?", (account.id,)
    ).fetchone()[0]
    if account.role == "admin" and account.disabled_at is None and others == 0:
        raise AccountError("account.last_admin", email=account.email)


def disable_user(conn: sqlite3.Connection, email: str) -> Account:
    """Disable an account: it cannot sign in, and every session of it ends at once."""
    account = _account(conn, email)
    _keep_an_admin(conn, account)
    conn.execute(
        "UPDATE users SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?", (iso(utcnow()), account.id)
    )
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (account.id,))
    return _account(conn, email)


def enable_user(conn: sqlite3.Connection, email: str) -> Account:
    account = _account(conn, email)
    conn.execute("UPDATE users SET disabled_at = NULL WHERE id = ?", (account.id,))
    return _account(conn, email)


def set_role(conn: sqlite3.Connection, email: str, role: str) -> Account:
    if role not in ROLES:
        raise AccountError("account.role")
    account = _account(conn, email)
    if role != "admin":
        _keep_an_admin(conn, account)
    conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, account.id))
    return _account(conn, email)


def new_password_hash(account: Account, password: str) -> str:
    """A reset password, checked and hashed (argon2: call outside the writer)."""
    check_password_strength(password, email=account.email, name=account.name)
    return hash_password(password)


def find_account(conn: sqlite3.Connection, email: str) -> Account:
    return _account(conn, email)


def account_by_id(conn: sqlite3.Connection, user_id: int) -> Account | None:
    row = conn.execute(
        "SELECT id, email, name, role, disabled_at, created_at FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    return Account(**dict(row)) if row else None


def audit_change(
    conn: sqlite3.Connection, actor: User | None, action: str, account: Account, *, source: str | None
) -> None:
    """An account change in the audit log: who (an admin, or the operator at the command
    line when `actor` is None) did what to which account."""
    audit.record(
        conn,
        user_id=actor.id if actor else None,
        user_email=actor.email if actor else None,
        role=actor.role if actor else "cli",
        patient_id=None,
        action=action,
        object=f"user={account.email} role={account.role}",
        source=source,
    )


class Candidate(msgspec.Struct, frozen=True):
    """An active account and its stored password hash, as read before verifying."""

    user: User
    password_hash: str


def login_candidate(conn: sqlite3.Connection, email: str) -> Candidate | None:
    row = conn.execute(
        "SELECT id, email, name, role, password_hash FROM users WHERE email = ? AND disabled_at IS NULL",
        (email.strip(),),
    ).fetchone()
    if row is None:
        return None
    user = User(id=row["id"], email=row["email"], name=row["name"], role=row["role"])
    return Candidate(user=user, password_hash=row["password_hash"])


def password_matches(candidate: Candidate | None, password: str) -> tuple[bool, str | None]:
    """(right?, a new hash if the parameters changed): argon2, so ~0.2 s of CPU and 64 MiB.

    Runs in a worker thread, never in the database writer: a burst of sign-ins must not
    hold up the diaries behind it. argon2 releases the GIL, so the event loop runs on.
    """
    if candidate is None:
        # Spend the same time as a real check, so timing does not reveal which e-mails exist.
        with contextlib.suppress(argon2_exceptions.VerificationError):
            HASHER.verify(_DUMMY_HASH, password)
        return False, None
    try:
        HASHER.verify(candidate.password_hash, password)
    except (argon2_exceptions.VerificationError, argon2_exceptions.InvalidHashError):
        return False, None
    rehash = hash_password(password) if HASHER.check_needs_rehash(candidate.password_hash) else None
    return True, rehash


def still_valid(conn: sqlite3.Connection, candidate: Candidate, rehash: str | None) -> bool:
    """In the write after verifying: the account is still active with the hash that was checked
    (not disabled or given a new password meanwhile); store the new hash if there is one."""
    row = conn.execute(
        "SELECT password_hash FROM users WHERE id = ? AND disabled_at IS NULL", (candidate.user.id,)
    ).fetchone()
    if row is None or row["password_hash"] != candidate.password_hash:
        return False
    if rehash is not None:
        conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (rehash, candidate.user.id))
    return True


_DUMMY_HASH = HASHER.hash("not-a-real-password-0")


def check_new_password(user: User, candidate: Candidate | None, old: str, new: str) -> str:
    """For a password change: the old password must be right and the new one differ from it
    and be strong; returns the new hash (argon2 twice: call outside the writer)."""
    if not password_matches(candidate, old)[0]:
        raise AccountError("account.current_wrong")
    if new == old:
        raise AccountError("account.same_password")
    check_password_strength(new, email=user.email, name=user.name)
    return hash_password(new)


def set_password_hash(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    """Store a new password hash; every session of the account ends (a stolen one too), and a
    lockout after failed sign-ins is lifted: a new password is how an admin unlocks an account."""
    conn.execute(
        "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
        (password_hash, iso(utcnow()), user_id),
    )
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    row = conn.execute("SELECT email FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is not None:
        conn.execute("DELETE FROM throttle WHERE key = ?", (login_key(row["email"]),))


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
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, source, last_seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (_hash_token(token), user.id, csrf, iso(now), expires, source, iso(now)),
    )
    return token, Session(user=user, csrf_token=csrf, expires_at=expires, last_seen_at=iso(now))


def load_session(conn: sqlite3.Connection, token: str | None, *, idle_minutes: int = 30) -> Session | None:
    """The live session of this cookie: not past its absolute end, not idle too long, the
    account not disabled. None otherwise."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT s.csrf_token, s.expires_at, s.last_seen_at, u.id, u.email, u.name, u.role"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND u.disabled_at IS NULL",
        (_hash_token(token),),
    ).fetchone()
    now = utcnow()
    if row is None or row["expires_at"] <= iso(now):
        return None
    seen = row["last_seen_at"]
    if seen and parse_iso(seen) + timedelta(minutes=idle_minutes) <= now:
        return None
    user = User(id=row["id"], email=row["email"], name=row["name"], role=row["role"])
    return Session(user=user, csrf_token=row["csrf_token"], expires_at=row["expires_at"], last_seen_at=seen)


# A request moves a session's idle clock on at most this often (one small write a minute).
TOUCH_EVERY = timedelta(seconds=60)


def needs_touch(session: Session, now: datetime) -> bool:
    return not session.last_seen_at or parse_iso(session.last_seen_at) + TOUCH_EVERY <= now


def touch_session(conn: sqlite3.Connection, token: str, now: datetime) -> None:
    conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", (iso(now), _hash_token(token)))


def user_of_ended_session(conn: sqlite3.Connection, token: str | None) -> int | None:
    """The account of a session that ran out (expired or idle, not signed out): its forms are
    held for it. None for an unknown token or a disabled account."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND u.disabled_at IS NULL",
        (_hash_token(token),),
    ).fetchone()
    return row["user_id"] if row else None


def end_session(conn: sqlite3.Connection, token: str | None) -> None:
    if token:
        conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash_token(token),))


# -- forms held over a sign-in ------------------------------------------------------------
HELD_FOR = timedelta(hours=1)
MAX_HELD_FIELDS = 30
MAX_HELD_FIELD = 10_000


class HeldForm(msgspec.Struct, frozen=True):
    """A form posted after its session ended: its page, its action and what was typed."""

    user_id: int
    page: str
    action: str
    fields: dict[str, str]


def hold_form(conn: sqlite3.Connection, user_id: int, page: str, action: str, fields: dict[str, str]) -> str:
    """Keep a form for its clinician until they sign in again; returns the cookie's token."""
    token = secrets.token_urlsafe(24)
    now = utcnow()
    conn.execute("DELETE FROM held_forms WHERE created_at < ?", (iso(now - HELD_FOR),))
    kept = {k[:100]: v[:MAX_HELD_FIELD] for k, v in list(fields.items())[:MAX_HELD_FIELDS]}
    body = msgspec.json.encode(kept).decode()
    conn.execute(
        "INSERT INTO held_forms (token_hash, user_id, page, action, fields, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (_hash_token(token), user_id, page, action, body, iso(now)),
    )
    return token


def held_form(conn: sqlite3.Connection, token: str | None) -> HeldForm | None:
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT user_id, page, action, fields FROM held_forms WHERE token_hash = ? AND created_at > ?",
        (_hash_token(token), iso(utcnow() - HELD_FOR)),
    ).fetchone()
    if row is None:
        return None
    try:
        fields = msgspec.json.decode(row["fields"], type=dict[str, str])
    except msgspec.DecodeError:
        fields = {}
    return HeldForm(user_id=row["user_id"], page=row["page"], action=row["action"], fields=fields)


def drop_held_form(conn: sqlite3.Connection, token: str | None) -> None:
    if token:
        conn.execute("DELETE FROM held_forms WHERE token_hash = ?", (_hash_token(token),))


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf_token, submitted or "")


# -- throttling ---------------------------------------------------------------------------
def login_key(email: str) -> str:
    """The throttle key of an account's sign-in attempts."""
    return f"login:{email.strip().lower()}"


class Rule(msgspec.Struct, frozen=True):
    """One throttle: after `max_failures` within `window`, `key` is locked for the window
    (`slow=False`: a hard per-account lock), or each further try must wait a few seconds,
    doubling up to SLOW_MAX (`slow=True`: for an address, which many people may share)."""

    key: str
    max_failures: int
    window: timedelta
    slow: bool = False


SLOW_MAX = timedelta(seconds=30)


def throttled_until(conn: sqlite3.Connection, key: str, now: datetime) -> datetime | None:
    """When `key` (e.g. 'login:email' or 'enrol:ip') may try again, or None if it may now."""
    row = conn.execute("SELECT locked_until FROM throttle WHERE key = ?", (key,)).fetchone()
    if row and row["locked_until"]:
        until = parse_iso(row["locked_until"])
        if until > now:
            return until
    return None


def reserve_attempt(conn: sqlite3.Connection, rules: list[Rule], now: datetime) -> datetime | None:
    """Check and count one attempt under every rule, in one step of the writer: when it may
    be tried again if any rule refuses it now (nothing counted), else None (counted already,
    as a failure until `attempt_succeeded` says otherwise). Counting before evaluating is
    what keeps 25 parallel tries from all passing a check that allows 5."""
    refused = [u for u in (throttled_until(conn, r.key, now) for r in rules) if u is not None]
    if refused:
        return max(refused)
    for rule in rules:
        _count(conn, rule, now)
    return None


def _count(conn: sqlite3.Connection, rule: Rule, now: datetime) -> None:
    row = conn.execute(
        "SELECT failures, first_failure_at FROM throttle WHERE key = ?", (rule.key,)
    ).fetchone()
    if row is None or parse_iso(row["first_failure_at"]) < now - rule.window:
        failures, first = 1, now
    else:
        failures, first = row["failures"] + 1, parse_iso(row["first_failure_at"])
    locked = None
    if failures >= rule.max_failures:
        if rule.slow:
            locked = iso(now + min(timedelta(seconds=2 ** (failures - rule.max_failures)), SLOW_MAX))
        else:
            locked = iso(now + rule.window)
    conn.execute(
        "INSERT INTO throttle (key, failures, first_failure_at, locked_until) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,"
        " first_failure_at = excluded.first_failure_at, locked_until = excluded.locked_until",
        (rule.key, failures, iso(first), locked),
    )


def attempt_succeeded(conn: sqlite3.Connection, *, clear: str | None, uncount: str) -> None:
    """A reserved attempt was right: the account's (or code's) count starts over; the
    address's count only loses this one attempt, so one right sign-in among many wrong ones
    does not wipe the address's record."""
    if clear is not None:
        conn.execute("DELETE FROM throttle WHERE key = ?", (clear,))
    conn.execute("UPDATE throttle SET failures = max(failures - 1, 0) WHERE key = ?", (uncount,))
