"""The clinic's patient list: a natural sort by name, filters, sorting and pages.

Names sort as a Dutch team reads them (`formatting.name_sort_key`): "Mevr. de Boer" stands
under B, "Extra 7" comes before "Extra 69". The key is kept in `patients.sort_key` (set when a
patient is enrolled or renamed, indexed with the status), so a page of 50 out of 100 000
patients is read in index order.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

import msgspec

PAGE_SIZE = 50
MAX_SEARCH = 100
MIN_NUMBER = 4  # characters of a patient number that find it by its start
SORTS = ("name", "last_entry", "open_alerts")
STATUSES = ("active", "left", "all")
Sort = Literal["name", "last_entry", "open_alerts"]


class Row(msgspec.Struct, frozen=True):
    id: str
    display_name: str
    pathway_id: str
    enrolled_at: str
    status: str
    last_entry: str | None
    open_alerts: int
    discharged_at: str | None
    sort_key: str = ""


class Listing(msgspec.Struct, frozen=True):
    rows: list[Row]
    total: int
    page: int
    pages: int
    # The pages either side, by key: the id of this page's first row (for "before") and of
    # its last (for "after"); None at either end of the list.
    prev: str | None = None
    next: str | None = None


# The stored column each sort ranks by first, descending (None: the name alone). Ties and
# the name sort go by the natural name key, then the id: every row has one place.
_RANKED = {"name": None, "last_entry": "last_entry", "open_alerts": "open_alerts"}
_SHOWN = "id, display_name, pathway_id, enrolled_at, status, discharged_at, last_entry, open_alerts, sort_key"


def listing(
    conn: sqlite3.Connection,
    *,
    q: str = "",
    pathway: str = "",
    status: str = "active",
    sort: str = "name",
    after: str = "",
    before: str = "",
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> Listing:
    """One page of the list: the first, or the one after (before) the patient `after`
    (`before`), read along the sort's index from that patient's key (keyset paging: a deep
    page costs what the first does). `page` is only the number shown, carried by the links.
    Unknown filter values count as none (the page shows all)."""
    where: list[str] = []
    params: list[Any] = []
    if pathway:
        where.append("pathway_id = ?")
        params.append(pathway)
    q = q.strip()
    if q:
        # A part of the name, or the start of the patient number (from the code page; at least
        # MIN_NUMBER characters, or "p" would find everyone).
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(
            "(display_name LIKE ? ESCAPE '\\' OR id = ? OR (length(?) >= ? AND id LIKE ? ESCAPE '\\'))"
        )
        params += ["%" + escaped + "%", q, q, MIN_NUMBER, escaped.lower() + "%"]
    statuses = [status] if status in ("active", "left") else ["active", "left"]
    marks = ", ".join("?" * len(statuses))
    if q:  # a search counts what it finds
        total = conn.execute(
            f"SELECT count(*) FROM patients WHERE {' AND '.join([*where, f'status IN ({marks})'])}",
            [*params, *statuses],
        ).fetchone()[0]
    else:  # kept at write time (patient_list_schema): no count over 100 000 rows a page
        total = conn.execute(
            "SELECT coalesce(sum(n), 0) FROM patient_counts"
            f" WHERE status IN ({marks}){' AND pathway_id = ?' if pathway else ''}",
            [*statuses, *([pathway] if pathway else [])],
        ).fetchone()[0]
    pages = max(1, -(-total // per_page))
    ranked = _RANKED.get(sort)
    cursor = after or before
    by_key = f"SELECT {ranked or 'NULL'}, sort_key, id FROM patients WHERE id = ?"
    key = conn.execute(by_key, (cursor,)).fetchone() if cursor else None
    forward = key is None or not before
    # A status is one range of the index: "all" reads both ranges and merges them.
    rows = [
        msgspec.convert(dict(r), Row)
        for st in statuses
        for r in _seek(conn, [*where, "status = ?"], [*params, st], ranked, key, forward, per_page + 1)
    ]
    rows.sort(key=lambda r: (r.sort_key, r.id), reverse=not forward)
    if ranked:
        rows.sort(key=lambda r: getattr(r, ranked), reverse=forward)
    more = len(rows) > per_page
    rows = rows[:per_page] if forward else rows[:per_page][::-1]
    has_prev, has_next = (key is not None, more) if forward else (more, True)
    number = max(2, min(page, pages - has_next)) if has_prev else 1
    return Listing(
        rows=[msgspec.structs.replace(r, last_entry=r.last_entry or None) for r in rows],
        total=total,
        page=number,
        pages=max(pages, number),
        prev=rows[0].id if has_prev and rows else None,
        next=rows[-1].id if has_next and rows else None,
    )


def _seek(
    conn: sqlite3.Connection,
    where: list[str],
    params: list[Any],
    ranked: str | None,
    key: sqlite3.Row | None,
    forward: bool,
    limit: int,
) -> list[sqlite3.Row]:
    """Up to `limit` rows past `key` in list order (`forward`) or before it in reverse order,
    each query a range of one index: the rows of the key's own rank after it by name, then
    the lower (higher) ranks."""
    up, down = ("ASC", "DESC") if forward else ("DESC", "ASC")
    name_order = f"sort_key {up}, id {up}"

    def select(extra: list[str], extra_params: list[Any], order: str) -> list[sqlite3.Row]:
        return conn.execute(
            f"SELECT {_SHOWN} FROM patients WHERE {' AND '.join(where + extra)} ORDER BY {order} LIMIT ?",
            [*params, *extra_params, limit],
        ).fetchall()

    beyond = ">" if forward else "<"
    if ranked is None:
        if key is None:
            return select([], [], name_order)
        return select([f"(sort_key, id) {beyond} (?, ?)"], [key[1], key[2]], name_order)
    if key is None:
        return select([], [], f"{ranked} DESC, {name_order}")
    same = select([f"{ranked} = ?", f"(sort_key, id) {beyond} (?, ?)"], [key[0], key[1], key[2]], name_order)
    if len(same) >= limit:
        return same
    lower = "<" if forward else ">"
    rest = select([f"{ranked} {lower} ?"], [key[0]], f"{ranked} {down}, {name_order}")
    return same + rest[: limit - len(same)]
