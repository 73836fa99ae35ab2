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
    # The page's ids first, in order (the name sort walks the (status, sort_key) index; only
    # the ordering columns are computed for rows skipped by OFFSET), then the shown columns
    # for those 50 alone: the last page costs about what the first does.
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT p.id FROM patients p{clause} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
    ]
    marks = ", ".join("?" * len(ids))
    found = (
        {
            r["id"]: msgspec.convert(dict(r), Row)
            for r in conn.execute(
                "SELECT p.id, p.display_name, p.pathway_id, p.enrolled_at, p.status, p.discharged_at,"
                f" {last_entry} AS last_entry, {open_alerts} AS open_alerts"
                f" FROM patients p WHERE p.id IN ({marks})",
                ids,
            )
        }
        if ids
        else {}
    )
    return Listing(rows=[found[i] for i in ids if i in found], total=total, page=page, pages=pages)
