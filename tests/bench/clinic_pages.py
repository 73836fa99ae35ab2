"""Benchmark 5: clinic page latency (median, p95) on a centre-sized database.

100 000 enrolled patients, a year of daily diaries for 1 000 of them (365 000 responses),
1 000 open alerts. One signed-in clinician asks for each page in turn over one keep-alive
connection (as a browser does), against a real `pijnwacht serve`; each request is timed
from sending to the last byte. Target: p95 < 50 ms. The patient pages rotate over the
1 000 patients with a year of history (every view is audited, as in real use).
"""

from __future__ import annotations

import http.client
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.common import (  # noqa: E402
    Figure,
    Server,
    median,
    not_measured,
    seed,
    workdir,
)

TARGET_MS = 50.0
ALERTS = 1000


def _p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def seed_alerts(db: Path, patient_ids: list[str], n: int) -> None:
    """n open alerts spread over the given patients, filled column by column by name."""
    from backend.platform.storage import connect

    conn = connect(db)
    cols = conn.execute("PRAGMA table_info(alerts)").fetchall()
    if not cols:
        conn.close()
        raise LookupError("no alerts table")
    rng = random.Random(3)
    today = datetime.now(UTC).date()
    rules = [
        ("pain_rise", "pain", "high"),
        ("side_effect_severe", "side_effect", "urgent"),
        ("silence", "adherence", "routine"),
        ("rescue_escalation", "side_effect", "high"),
    ]
    rows = []
    for k in range(n):
        # One live alert per patient and rule (the schema insists): rules in turn per round.
        rule, category, severity = rules[(k // len(patient_ids)) % len(rules)]
        day = today - timedelta(days=rng.randrange(14))
        at = f"{day.isoformat()}T08:{k % 60:02d}:00Z"
        known = {
            "patient_id": patient_ids[k % len(patient_ids)],
            "rule_id": rule,
            "category": category,
            "severity": severity,
            "status": "open",
            "reason": "gemiddelde pijn 6,4 over 7 dagen tegenover baseline 3,9 (+2,5; +64 %)",
            "opened_on": day.isoformat(),
            "last_evidence_on": day.isoformat(),
            "details": "{}",
            "evidence": "{}",
            "finding": "{}",
        }
        row = {}
        for c in cols:
            name, typ, notnull, default, pk = c[1], (c[2] or "").upper(), c[3], c[4], c[5]
            if pk:
                continue
            if name in known:
                row[name] = known[name]
            elif name.endswith("_at") and notnull and default is None:
                row[name] = at
            elif name.endswith(("_on", "_date")) and notnull and default is None:
                row[name] = day.isoformat()
            elif notnull and default is None:
                row[name] = 0 if "INT" in typ or "REAL" in typ else ""
        rows.append(row)
    names = list(rows[0])
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO alerts ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [tuple(r[c] for c in names) for r in rows],
    )
    conn.execute("COMMIT")
    conn.close()


def clinician_cookie(db: Path) -> str:
    from backend.platform import accounts
    from backend.platform.storage import connect
    from backend.web.clinic import SESSION_COOKIE

    conn = connect(db)
    conn.execute("BEGIN IMMEDIATE")
    user = accounts.add_user(
        conn,
        email="bench@example.org",
        name="Bench",
        role="clinician",
        password="a long benchmark passphrase 42",
    )
    token, _ = accounts.create_session(conn, user, hours=12, source="127.0.0.1")
    conn.execute("COMMIT")
    conn.close()
    return f"{SESSION_COOKIE}={token}"


def timed_gets(port: int, cookie: str, paths: list[str]) -> tuple[list[float], list[int]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, statuses = [], []
    for path in paths:
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        r = conn.getresponse()
        r.read()
        times.append((time.perf_counter() - t0) * 1000)
        statuses.append(r.status)
    conn.close()
    return times, statuses


def run(quick: bool = False) -> list[Figure]:
    folder = workdir()
    db = folder / "clinic.db"
    patients, history = (20_000, 200) if quick else (100_000, 1000)
    seed(db, patients=patients, history_patients=history, days=365)
    ids = [f"p{n:07d}" for n in range(history)]
    figures: list[Figure] = []
    try:
        n_alerts = min(ALERTS, 4 * len(ids))
        seed_alerts(db, ids, n_alerts)
        alerts_note = f"{n_alerts} open alerts"
    except LookupError:
        alerts_note = "no alerts table yet: 0 alerts"
    cookie = clinician_cookie(db)
    n = 40 if quick else 150
    pages = {
        "inbox": ["/clinic/inbox"] * n,
        "patient page (timeline)": [f"/clinic/patients/{ids[k % len(ids)]}" for k in range(n)],
        "patients list": ["/clinic/patients"] * (n // 3),
        # The deep pages and the other sorts (issue 15: no cap, so the last page must be cheap too).
        "patients list, last page": [deep_page(db, "name", "active", patients - 10)] * (n // 5),
        "patients by last entry": ["/clinic/patients?sort=last_entry"] * (n // 5),
        "patients by last entry, deep page": [deep_page(db, "last_entry", "active", patients // 2)]
        * (n // 5),
        "patients by open alerts": ["/clinic/patients?sort=open_alerts"] * (n // 5),
    }
    with Server(db) as srv:
        for name, paths in pages.items():
            timed_gets(srv.port, cookie, paths[:5])  # warm up
            times, statuses = timed_gets(srv.port, cookie, paths)
            bad = [s for s in statuses if s != 200]
            if bad and all(s == 404 for s in bad):
                figures.append(
                    not_measured(
                        "5 clinic",
                        name,
                        f"{paths[0]} answers 404 (not landed)",
                        target=f"p95 < {TARGET_MS:.0f} ms",
                    )
                )
                continue
            p95 = _p95(times)
            note = f"median {median(times):.1f} ms over {len(times)}; {patients:,} patients, {alerts_note}"
            if bad:
                note += f"; {len(bad)} answers not 200 ({bad[0]})!"
            target = f"p95 < {TARGET_MS:.0f} ms" if not name.startswith("patients") else ""
            figures.append(
                Figure(
                    "5 clinic",
                    f"{name} p95",
                    p95,
                    "ms",
                    target=target,
                    ok=(p95 < TARGET_MS and not bad) if target else None,
                    note=note,
                    runs=times,
                )
            )
        figures.append(Figure("7 memory", "server peak RSS (clinic pages)", srv.sample_memory(), "MB"))
    return figures


# The list's order per sort, as roster.listing defines it (to find a deep page's key here).
_ORDER = {
    "name": "sort_key, id",
    "last_entry": "last_entry DESC, sort_key, id",
    "open_alerts": "open_alerts DESC, sort_key, id",
}


def deep_page(db: Path, sort: str, status: str, position: int) -> str:
    """The address of the page after the patient at `position` of the list (the pager's own
    "Volgende" link there: keyset paging has no page=N without its key)."""
    from backend.platform.storage import connect

    conn = connect(db, readonly=True)
    where = "" if status == "all" else f"WHERE status = '{status}'"
    [after] = conn.execute(
        f"SELECT id FROM patients {where} ORDER BY {_ORDER[sort]} LIMIT 1 OFFSET ?", (position,)
    ).fetchone()
    conn.close()
    return f"/clinic/patients?sort={sort}&status={status}&after={after}&page={position // 50 + 2}"


def patient_list(sizes: tuple[int, ...] = (10_000, 100_000), gets: int = 60) -> list[Figure]:
    """The patient list (issue 15) at each size: the first page and a deep one (90 % down) of
    every sort, and "gevolgd en afgemeld" (both statuses merged), p95 of `gets` loads each.
    1 000 patients have 30 days of diaries, 1 000 open alerts over them, 1 in 20 discharged."""
    import os

    from backend.platform.storage import connect
    from tests.bench.edits import _server_from

    before = os.environ.get("BENCH_BEFORE")
    folder = workdir()
    results: dict[tuple[str, int, str], list[float]] = {}
    for size in sizes:
        db = folder / f"list-{size}.db"
        seed(db, patients=size, history_patients=1000, days=30)
        seed_alerts(db, [f"p{n:07d}" for n in range(1000)], ALERTS)
        conn = connect(db)
        conn.execute("UPDATE patients SET status = 'left' WHERE rowid % 20 = 0")
        conn.close()
        cookie = clinician_cookie(db)
        deep = int(size * 0.9)
        cases = {
            f"{sort}, {status}, {where}": (
                f"/clinic/patients?sort={sort}&status={status}"
                if where == "first page"
                else deep_page(db, sort, status, deep)
            )
            for sort in ("name", "last_entry", "open_alerts")
            for status in ("active", "all")
            for where in ("first page", "deep page")
        }
        # BENCH_BEFORE=<a checkout of older code>: its server too, on the same file (its deep
        # pages by page=N, which the addresses carry as well).
        servers = [("after", None)] + ([("before", _server_from(before))] if before else [])
        for label, command in servers:
            with Server(db, command=command) as srv:
                for name, path in cases.items():
                    timed_gets(srv.port, cookie, [path] * 5)
                    times, statuses = timed_gets(srv.port, cookie, [path] * gets)
                    assert set(statuses) == {200}, (path, set(statuses))
                    results[(name, size, label)] = times
                    print(
                        f"  {label}: {size:,} patients, {name}: p95 {_p95(times):.1f} ms"
                        f" (median {median(times):.1f})",
                        flush=True,
                    )
    figures = []
    small, big = sizes[0], sizes[-1]
    for name in cases:
        p95_small, p95_big = _p95(results[(name, small, "after")]), _p95(results[(name, big, "after")])
        was = ""
        if before:
            old_small, old_big = _p95(results[(name, small, "before")]), _p95(results[(name, big, "before")])
            was = f"; before: {old_small:.1f} / {old_big:.1f} ms"
        figures.append(
            Figure(
                "5 clinic",
                f"patient list p95, {name}, {big:,} patients",
                p95_big,
                "ms",
                target=f"p95 < {TARGET_MS:.0f} ms, flat",
                ok=p95_big < TARGET_MS,
                note=f"{small:,} patients: {p95_small:.1f} ms ({p95_big / p95_small:.2f}x){was}",
                runs=results[(name, big, "after")],
            )
        )
    return figures


if __name__ == "__main__":
    from tests.bench.common import table

    if "--list" in sys.argv:
        print(table(patient_list()))
    else:
        print(table(run(quick="--quick" in sys.argv)))
