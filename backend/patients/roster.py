"""The clinic's patient list: a natural sort by name, filters, sorting and pages.

Names sort as a Dutch team reads them: titles (Dhr., Mevr.) and the lower-case particles of a
surname (de, van der, ten) do not count, so "Mevr. de Boer" stands under B; numbers count by
value, so "Extra 7" comes before "Extra 69". The key is kept in `patients.sort_key` (set when a
patient is enrolled or renamed, indexed with the status), so a page of 50 out of 100 000
patients is read in index order.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from typing import Any, Literal

import msgspec

PAGE_SIZE = 50
MAX_SEARCH = 100
SORTS = ("name", "last_entry", "open_alerts")
STATUSES = ("active", "left", "all")
Sort = Literal["name", "last_entry", "open_alerts"]

_TITLES = frozenset(
    [
        "dhr",
        "dhr.",
        "mevr",
        "mevr.",
        "mw",
        "mw.",
        "mevrouw",
        "meneer",
        "heer",
        "mr",
        "mr.",
        "mrs",
        "mrs.",
        "ms",
        "ms.",
        "dr",
        "dr.",
        "drs",
        "drs.",
        "ir",
        "ir.",
        "ing",
        "ing.",
        "prof",
        "prof.",
        "mej",
        "mej.",
        "fam",
        "fam.",
    ]
)
_PARTICLES = frozenset(
    [
        "de",
        "den",
        "der",
        "van",
        "von",
        "ter",
        "ten",
        "te",
        "het",
        "'t",
        "in",
        "op",
        "d'",
        "la",
        "le",
        "du",
        "da",
        "di",
        "del",
        "des",
        "vd",
        "v.d.",
    ]
)
_NUMBER = re.compile(r"\d+")
_INITIALS = re.compile(r"(\w\.)+")


def sort_key(name: str) -> str:
    """The key a display name sorts by (see the module's docstring)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c))
    words = plain.split()
    while len(words) > 1 and words[0] in _TITLES:
        words = words[1:]
    while len(words) > 1 and _INITIALS.fullmatch(words[0]):
        words = words[1:]
    while len(words) > 1 and words[0] in _PARTICLES:
        words = words[1:]
    core = " ".join(words)
    # Numbers by value: padded to 12 digits ("7" -> "000000000007" sorts before "69").
    padded = _NUMBER.sub(lambda m: m.group().zfill(12), core)
    return f"{padded}\x00{plain}"


class Row(msgspec.Struct, frozen=True):
    id: str
    display_name: str
    pathway_id: str
    enrolled_at: str
    status: str
    last_entry: str | None
    open_alerts: int
    discharged_at: str | None


class Listing(msgspec.Struct, frozen=True):
    rows: list[Row]
    total: int
    page: int
    pages: int


def listing(
    conn: sqlite3.Connection,
    *,
    q: str = "",
    pathway: str = "",
    status: str = "active",
    sort: str = "name",
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> Listing:
    """One page of the list; unknown filter values count as none (the page shows all)."""
    where: list[str] = []
    params: list[Any] = []
    if status in ("active", "left"):
        where.append("p.status = ?")
        params.append(status)
    if pathway:
        where.append("p.pathway_id = ?")
        params.append(pathway)
    q = q.strip()
    if q:
        where.append("(p.display_name LIKE ? ESCAPE '\\' OR p.id = ?)")
        params += ["%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", q]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT count(*) FROM patients p{clause}", params).fetchone()[0]
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    last_entry = "(SELECT max(local_date) FROM responses r WHERE r.patient_id = p.id)"
    open_alerts = (
        "(SELECT count(*) FROM alerts a WHERE a.patient_id = p.id AND a.status IN ('open', 'acknowledged'))"
    )
    order = {
        "last_entry": f"{last_entry} IS NULL, {last_entry} DESC, p.sort_key, p.id",
        "open_alerts": f"{open_alerts} DESC, p.sort_key, p.id",
    }.get(sort, "p.sort_key, p.id")
    rows = conn.execute(
        "SELECT p.id, p.display_name, p.pathway_id, p.enrolled_at, p.status, p.discharged_at,"
        f" {last_entry} AS last_entry, {open_alerts} AS open_alerts"
        f" FROM patients p{clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, per_page, (page - 1) * per_page],
    ).fetchall()
    return Listing(rows=[msgspec.convert(dict(r), Row) for r in rows], total=total, page=page, pages=pages)
