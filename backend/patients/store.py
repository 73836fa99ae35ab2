"""The patients' tables: `patients`, `enrolment_codes` and `devices` - the only SQL on them.

Everything else (enrolment, the alert lifecycle, overrides, exports, the clinic, the API)
calls these functions; none of them decides anything (the checks live in enrolment.py).
Every function takes the connection it runs on: a reader for reads, the writer's connection
(inside its transaction) for writes.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec

from backend.platform.storage import PerConnection, data_version, parse_iso, utcnow


class Patient(msgspec.Struct, frozen=True):
    id: str
    display_name: str
    pathway_id: str
    timezone: str
    language: str
    reminder_time: str
    anchor_date: str
    enrolled_at: str
    status: str
    thresholds: str = "{}"
    # When the pain team last looked at this patient's reports (shown in the app).
    team_seen_at: str | None = None
    # The last local date of the patient's pause of reminders (none: not paused).
    paused_until: str | None = None
    # Discharged ("afgemeld", status 'left'): when and why (kept after a resume).
    discharged_at: str | None = None
    discharge_reason: str | None = None

    @property
    def discharged(self) -> bool:
        return self.status == "left"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_today(self, now: datetime | None = None) -> date:
        return (now or utcnow()).astimezone(self.zone).date()

    @property
    def enrolled_on(self) -> date:
        """The patient's own date of enrolment (in their time zone: enrolled at 00:30 in
        Amsterdam is that day, not the day before in UTC)."""
        return local_day(self.enrolled_at, self.timezone)


@functools.lru_cache(maxsize=4096)
def local_day(utc_text: str, timezone: str) -> date:
    """The local date in `timezone` of a stored UTC time (kept: a patient's enrolment is read
    on every response, for its allowed dates and by detection)."""
    return parse_iso(utc_text).astimezone(ZoneInfo(timezone)).date()


COLUMNS = tuple(f.name for f in msgspec.structs.fields(Patient))
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM patients"
_SELECT_P = f"SELECT {', '.join('p.' + c for c in COLUMNS)} FROM patients p"
# The columns a clinician or the patient may change after enrolment (see `update`).
CHANGEABLE = frozenset(
    {
        "pathway_id",
        "anchor_date",
        "reminder_time",
        "timezone",
        "language",
        "paused_until",
        "status",
        "display_name",
        "sort_key",
        "discharged_at",
        "discharge_reason",
    }
)


# -- patients -----------------------------------------------------------------------------------
def get(conn: sqlite3.Connection, patient_id: str) -> Patient | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (patient_id,)).fetchone()
    return Patient(*row) if row else None


def active_enrolled_as(conn: sqlite3.Connection, display_name: str) -> list[str]:
    """When the active patients with this display name (ignoring ASCII case) were enrolled."""
    rows = conn.execute(
        "SELECT enrolled_at FROM patients WHERE status = 'active' AND lower(display_name) = lower(?)"
        " ORDER BY enrolled_at",
        (display_name,),
    )
    return [r[0] for r in rows]


def exists(conn: sqlite3.Connection, patient_id: str) -> bool:
    return conn.execute("SELECT 1 FROM patients WHERE id = ?", (patient_id,)).fetchone() is not None


def insert(
    conn: sqlite3.Connection,
    *,
    patient_id: str,
    display_name: str,
    sort_key: str,
    pathway_id: str,
    timezone: str,
    language: str,
    reminder_time: str,
    anchor_date: str,
    enrolled_at: str,
    created_by: int | None,
) -> None:
    conn.execute(
        "INSERT INTO patients (id, display_name, sort_key, pathway_id, timezone, language, reminder_time,"
        " anchor_date, enrolled_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            patient_id,
            display_name,
            sort_key,
            pathway_id,
            timezone,
            language,
            reminder_time,
            anchor_date,
            enrolled_at,
            created_by,
        ),
    )


def update(conn: sqlite3.Connection, patient_id: str, changes: Mapping[str, str | None]) -> bool:
    """Set checked values of the CHANGEABLE columns; False when there is no such patient."""
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValueError(f"not a changeable patient column: {', '.join(sorted(unknown))}")
    if not changes:
        return exists(conn, patient_id)
    sets = ", ".join(f"{k} = ?" for k in changes)
    cur = conn.execute(f"UPDATE patients SET {sets} WHERE id = ?", (*changes.values(), patient_id))
    return cur.rowcount == 1


def set_enrolled_at(conn: sqlite3.Connection, patient_id: str, at: str) -> None:
    """When the patient enrolled (UTC ISO): a demo cohort or a test that starts months ago."""
    conn.execute("UPDATE patients SET enrolled_at = ? WHERE id = ?", (at, patient_id))


def thresholds(conn: sqlite3.Connection, patient_id: str) -> str | None:
    """The patient's detection overrides as stored (JSON text); LookupError: no such patient."""
    row = conn.execute("SELECT thresholds FROM patients WHERE id = ?", (patient_id,)).fetchone()
    if row is None:
        raise LookupError(f"no patient {patient_id}")
    return row[0]


def set_thresholds(conn: sqlite3.Connection, patient_id: str, overrides_json: str) -> None:
    conn.execute("UPDATE patients SET thresholds = ? WHERE id = ?", (overrides_json, patient_id))


def set_team_seen(conn: sqlite3.Connection, patient_id: str, at: str | None) -> None:
    """When the team last saw the patient's alerts (None: news waits for them)."""
    conn.execute("UPDATE patients SET team_seen_at = ? WHERE id = ?", (at, patient_id))


def active_zones(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(id, timezone) of every active patient, by id."""
    cur = conn.execute("SELECT id, timezone FROM patients WHERE status = 'active' ORDER BY id")
    return [(r[0], r[1]) for r in cur]


def in_pathway(conn: sqlite3.Connection, pathway_id: str) -> list[tuple[str, str]]:
    """(id, anchor_date) of every patient in the pathway (whatever their status), by id."""
    cur = conn.execute("SELECT id, anchor_date FROM patients WHERE pathway_id = ? ORDER BY id", (pathway_id,))
    return [(r[0], r[1]) for r in cur]


def names(conn: sqlite3.Connection, patient_ids: Iterable[str]) -> dict[str, str]:
    """id -> display name of those of `patient_ids` that exist."""
    ids = list(patient_ids)
    out: dict[str, str] = {}
    for start in range(0, len(ids), 500):  # SQLite's variable limit
        part = ids[start : start + 500]
        out.update(
            conn.execute(
                f"SELECT id, display_name FROM patients WHERE id IN ({','.join('?' * len(part))})", part
            ).fetchall()
        )
    return out


# -- enrolment codes ------------------------------------------------------------------------------
def retire_codes(conn: sqlite3.Connection, patient_id: str, at: str) -> None:
    """Earlier unused codes of the patient stop working."""
    conn.execute(
        "UPDATE enrolment_codes SET used_at = ? WHERE patient_id = ? AND used_at IS NULL", (at, patient_id)
    )


def insert_code(
    conn: sqlite3.Connection, code_hash: str, patient_id: str, created_at: str, expires_at: str
) -> None:
    conn.execute(
        "INSERT INTO enrolment_codes (code_hash, patient_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (code_hash, patient_id, created_at, expires_at),
    )


def code(conn: sqlite3.Connection, code_hash: str) -> tuple[str, str, str | None] | None:
    """(patient_id, expires_at, used_at) of a code by its hash."""
    row = conn.execute(
        "SELECT patient_id, expires_at, used_at FROM enrolment_codes WHERE code_hash = ?", (code_hash,)
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def use_code(conn: sqlite3.Connection, code_hash: str, at: str) -> None:
    conn.execute("UPDATE enrolment_codes SET used_at = ? WHERE code_hash = ?", (at, code_hash))


# -- devices --------------------------------------------------------------------------------------
def insert_device(conn: sqlite3.Connection, token_hash: str, patient_id: str, at: str) -> None:
    conn.execute(
        "INSERT INTO devices (token_hash, patient_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
        (token_hash, patient_id, at, at),
    )


def patient_for_device(conn: sqlite3.Connection, token_hash: str, *, keep: bool = False) -> Patient | None:
    """The active patient of a device that is not revoked. `keep` (the writer, which checks
    the device of every PUT and batch): a patient found is kept per connection until a device
    changes, or that patient's row (`_device_mark`); a device without one is read each time."""
    if keep:
        had = _KEPT_DEVICES.peek(conn)
        known = had.get(token_hash) if had is not None else None
        mark = _device_mark(conn, known[0].id if known is not None else "")
        kept, _ = _KEPT_DEVICES.of(conn, mark[:2])
        if kept is had and known is not None and known[1] == mark[2]:
            return known[0]
        if len(kept) >= KEPT_DEVICES:
            # Full: start again under a new connection mark, the patients' marks dropped with
            # it (a rollback brings the old marks back together, and the new memo is dropped).
            conn.execute("UPDATE device_mark SET n = random()")
            conn.execute("DELETE FROM device_patient_mark")
            kept, _ = _KEPT_DEVICES.of(conn, _device_mark(conn, "")[:2])
        row = device_row(conn, token_hash, with_mark=True)
        if row is None:
            kept.pop(token_hash, None)
            return None
        patient = Patient(*row[:-1])
        kept[token_hash] = (patient, row[-1])
        return patient
    row = device_row(conn, token_hash)
    return Patient(*row) if row else None


def device_row(conn: sqlite3.Connection, token_hash: str, *, with_mark: bool = False) -> tuple | None:
    """The row of `patient_for_device` (`with_mark`: and the patient's mark last)."""
    return conn.execute(_FOR_DEVICE_KEPT if with_mark else _FOR_DEVICE, (token_hash,)).fetchone()


_FOR_DEVICE = (
    f"{_SELECT_P} JOIN devices d ON d.patient_id = p.id"
    " WHERE d.token_hash = ? AND d.revoked_at IS NULL AND p.status = 'active'"
)
_FOR_DEVICE_KEPT = _FOR_DEVICE.replace(
    " FROM patients p", ", (SELECT n FROM device_patient_mark WHERE patient_id = p.id) FROM patients p", 1
)

# What a connection's `patient_for_device(keep=True)` found, valid for the marks it was read
# under. The connection's mark: SQLite's data_version (another connection committed) and a
# random number that this connection's own temporary triggers draw anew whenever a device
# changes or a patient is deleted. The patient's mark: a random number the triggers draw
# anew, in `device_patient_mark`, whenever a column of that patient that this reads changes
# (an alert that opens clears `team_seen_at`: the other patients stay kept). Both are drawn
# inside the transaction (a rolled-back change takes its new mark with it; a mark is never
# drawn twice, so none is taken for an older one). A new connection that got a closed one's
# id draws a mark of its own at once.
_KEPT_DEVICES = PerConnection(dict)
KEPT_DEVICES = 8192
_DEVICE_WATCH = (
    "CREATE TEMP TABLE IF NOT EXISTS device_mark (n INTEGER NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS device_patient_mark (patient_id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "INSERT INTO device_mark SELECT random() WHERE NOT EXISTS (SELECT 1 FROM device_mark)",
    *(
        f"CREATE TEMP TRIGGER IF NOT EXISTS device_mark_{event.lower()} AFTER {event} ON main.devices"
        " BEGIN UPDATE device_mark SET n = random(); END"
        for event in ("INSERT", "UPDATE", "DELETE")
    ),
    f"CREATE TEMP TRIGGER IF NOT EXISTS device_mark_patient AFTER UPDATE OF {', '.join(COLUMNS)}"
    " ON main.patients BEGIN"
    " INSERT OR REPLACE INTO device_patient_mark (patient_id, n) VALUES (old.id, random());"
    " INSERT OR REPLACE INTO device_patient_mark (patient_id, n) VALUES (new.id, random()); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS device_mark_patient_gone AFTER DELETE ON main.patients"
    " BEGIN UPDATE device_mark SET n = random(); END",
)


def _device_mark(conn: sqlite3.Connection, patient_id: str) -> tuple[int, int, int | None]:
    """The connection's mark (data_version, its number) and the patient's (None: none drawn)."""
    read = "SELECT (SELECT n FROM device_mark), (SELECT n FROM device_patient_mark WHERE patient_id = ?)"
    try:
        mark = tuple(conn.execute(read, (patient_id,)).fetchone())
    except sqlite3.OperationalError:  # not set up on this connection (or its set-up rolled back)
        mark = (None, None)
    if mark[0] is None:
        for sql in _DEVICE_WATCH:
            conn.execute(sql)
        mark = tuple(conn.execute(read, (patient_id,)).fetchone())
    return (data_version(conn), *mark)


def discharged_device(conn: sqlite3.Connection, token_hash: str) -> bool:
    """A device not revoked whose patient the team discharged ("afgemeld")."""
    row = conn.execute(
        "SELECT 1 FROM devices d JOIN patients p ON p.id = d.patient_id"
        " WHERE d.token_hash = ? AND d.revoked_at IS NULL AND p.status = 'left'",
        (token_hash,),
    ).fetchone()
    return row is not None


def revoke_device(conn: sqlite3.Connection, token_hash: str, at: str) -> None:
    conn.execute(
        "UPDATE devices SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL", (at, token_hash)
    )


def revoke_devices(conn: sqlite3.Connection, patient_id: str, at: str) -> int:
    cur = conn.execute(
        "UPDATE devices SET revoked_at = ? WHERE patient_id = ? AND revoked_at IS NULL", (at, patient_id)
    )
    return cur.rowcount


def devices(conn: sqlite3.Connection, patient_id: str) -> list[tuple[str, str | None]]:
    """(created_at, revoked_at) of the patient's devices, oldest first."""
    cur = conn.execute(
        "SELECT created_at, revoked_at FROM devices WHERE patient_id = ? ORDER BY created_at", (patient_id,)
    )
    return [(r[0], r[1]) for r in cur]


# -- the enrolment form's one-time tokens (enrolment.py) ------------------------------------------
def insert_form_token(
    conn: sqlite3.Connection, token_hash: str, user_id: int, at: str, stale_before: str
) -> None:
    """A new token; unused ones created before `stale_before` are dropped."""
    conn.execute("DELETE FROM enrol_forms WHERE created_at < ? AND patient_id IS NULL", (stale_before,))
    conn.execute(
        "INSERT INTO enrol_forms (token_hash, user_id, created_at) VALUES (?, ?, ?)",
        (token_hash, user_id, at),
    )


def form_token(conn: sqlite3.Connection, token_hash: str, user_id: int) -> dict | None:
    """user_id, created_at, patient_id, code, code_expires_at of this clinician's token."""
    row = conn.execute(
        "SELECT user_id, created_at, patient_id, code, code_expires_at FROM enrol_forms"
        " WHERE token_hash = ? AND user_id = ?",
        (token_hash, user_id),
    ).fetchone()
    return dict(row) if row else None


def form_made(
    conn: sqlite3.Connection,
    token_hash: str,
    user_id: int,
    at: str,
    patient_id: str,
    code: str,
    expires: str,
    forget_codes_before: str,
) -> None:
    """The token made this patient and code; plain codes older than `forget_codes_before` go."""
    conn.execute(
        "INSERT INTO enrol_forms (token_hash, user_id, created_at, patient_id, code, code_expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(token_hash) DO UPDATE SET patient_id = excluded.patient_id,"
        " code = excluded.code, code_expires_at = excluded.code_expires_at, created_at = excluded.created_at",
        (token_hash, user_id, at, patient_id, code, expires),
    )
    conn.execute(
        "UPDATE enrol_forms SET code = NULL WHERE code IS NOT NULL AND created_at < ?", (forget_codes_before,)
    )
