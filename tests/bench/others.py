"""The parts whose benchmark scripts belong to other modules, run and read by the one runner.

Scripts that only print are run as subprocesses and their printed figures parsed; scripts
with functions are imported. A script that is not there yet gives a "not measured" row.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.bench.common import (
    LUA,
    ROOT,
    Figure,
    Load,
    Server,
    median,
    not_measured,
    seed,
    workdir,
    wrk,
)

HERE = Path(__file__).parent


def _script(name: str) -> Path | None:
    path = HERE / name
    return path if path.exists() else None


def _run_script(path: Path, *args: str, timeout: float = 1200) -> str:
    try:
        out = subprocess.run(
            [sys.executable, str(path), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{path.name} took longer than {timeout:.0f} s (machine busy?)") from None
    if out.returncode != 0:
        raise RuntimeError(f"{path.name} failed: {(out.stderr or out.stdout)[-400:]}")
    return out.stdout


# -- 3 detection ----------------------------------------------------------------------------
def detection(quick: bool) -> list[Figure]:
    try:
        from tests.bench import detection_parts
    except ImportError:
        return [
            not_measured(
                "3 detection",
                "rule time per new response",
                "backend.alerts.detection timing script not landed",
                target="well under 1 ms",
            )
        ]
    from tests.bench import detection_scores

    # Speed first, then the scores by what the clinic sees (simulated cohorts through replay).
    return detection_parts.run(quick) + detection_scores.run(quick)


PRUNE_ROW = re.compile(r"^(\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", re.M)


def prune(quick: bool) -> Figure:
    """The nightly push-queue prune (tests/bench/prune.py): the slowest writer job of a run,
    median over the runs."""
    name = "nightly push-queue prune, 100 000 patients x 30 days, slowest writer job"
    patients = 10_000 if quick else 100_000
    try:
        out = _run_script(HERE / "prune.py", "--patients", str(patients), "--runs", "3", timeout=600)
    except RuntimeError as exc:
        return not_measured("4 tick", name, str(exc)[:120], target="< 100 ms a job")
    runs = [
        (int(m.group(4)), float(m.group(5)), float(m.group(6)), float(m.group(7)))
        for m in PRUNE_ROW.finditer(out)
    ]
    worst = median([r[2] for r in runs])
    return Figure(
        "4 tick",
        name if not quick else name.replace("100 000", "10 000"),
        worst,
        "ms",
        target="< 100 ms a job",
        ok=worst < 100,
        note=(
            f"{runs[0][0]} jobs, median job {median([r[1] for r in runs]):.0f} ms, whole prune"
            f" {median([r[3] for r in runs]):.2f} s; slowest job per run"
            f" {', '.join(f'{r[2]:.0f}' for r in runs)} ms (a WAL checkpoint falling in a job)"
        ),
    )


# -- 4 scheduler tick -----------------------------------------------------------------------
# patients, build s, quiet s, 20:00 s, reminders[, us per patient, 20:00 CPU s]
TICK_ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)(?:\s+[\d.]+\s+([\d.]+))?", re.M)


def tick(quick: bool) -> list[Figure]:
    script = _script("tick.py")
    if script is None:
        return [
            not_measured(
                "4 tick", "scheduler tick", "tests/bench/tick.py not landed", target="< 1 s at 100 000"
            )
        ]
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    rows: dict[int, tuple[float, float]] = {}
    cpus: dict[int, float] = {}
    figures = []
    # One process per size, each with its own time limit: building a million patients on
    # a busy machine may run out of time without losing the smaller sizes.
    for n in sizes:
        try:
            out = _run_script(
                script,
                "--patients",
                str(n),
                "--runs",
                "1" if quick or n > 100_000 else "3",
                timeout=600 if n > 100_000 else 300,
            )
        except RuntimeError as exc:
            figures.append(not_measured("4 tick", f"tick, {n:,} patients", str(exc)[:120]))
            continue
        for m in TICK_ROW.finditer(out):
            rows[int(m.group(1))] = (float(m.group(3)), float(m.group(4)))
            if m.group(6):
                cpus[int(m.group(1))] = float(m.group(6))
    if not rows:
        return figures
    for n, (quiet, busy) in sorted(rows.items()):
        target = "< 1 s" if n == 100_000 else ""
        figures.append(
            Figure(
                "4 tick",
                f"tick, {n:,} patients, all reminders due",
                busy,
                "s",
                target=target,
                ok=(busy < 1.0) if n == 100_000 else None,
                note=f"a quiet minute: {quiet * 1000:.1f} ms; {busy / n * 1e6:.1f} us per patient"
                + (f"; CPU {cpus[n]:.2f} s" if n in cpus else ""),
            )
        )
    figures.append(prune(quick))
    if 100_000 in rows and 1_000_000 in rows:
        growth = rows[1_000_000][1] / rows[100_000][1]
        figures.append(
            Figure(
                "4 tick",
                "growth 100 000 -> 1 000 000 patients",
                growth,
                "x",
                target="<= 10x (linear; 12x allowed for noise)",
                ok=growth <= 12,
            )
        )
    elif 10_000 in rows and 100_000 in rows:
        growth = rows[100_000][1] / rows[10_000][1]
        figures.append(
            Figure(
                "4 tick",
                "growth 10 000 -> 100 000 patients",
                growth,
                "x",
                target="<= 10x (linear; 12x allowed for noise)",
                ok=growth <= 12,
            )
        )
    return figures


# -- 5 clinic pages --------------------------------------------------------------------------
def clinic(quick: bool) -> list[Figure]:
    try:
        from tests.bench import clinic_pages
    except ImportError:
        return [
            not_measured(
                "5 clinic", "inbox and patient page", "inbox/timeline not landed", target="p95 < 50 ms"
            )
        ]
    return clinic_pages.run(quick)


# -- 6 push fan-out --------------------------------------------------------------------------
def push(quick: bool) -> list[Figure]:
    if _script("push_fanout.py") is None:
        return [not_measured("6 push", "push fan-out", "tests/bench/push_fanout.py not landed")]
    from tests.bench import push_fanout

    pushes, runs = (1000, 1) if quick else (2000, 3)
    service = push_fanout.RemoteService()
    try:
        rates = [push_fanout.one_run(service, pushes) for _ in range(runs)]
        latency = _requests_while_pushing(service, pushes, quick)
    finally:
        service.stop()
    rate = median(r.rate for r in rates)
    figures = [
        Figure(
            "6 push",
            "encrypted pushes/s to the loopback stand-in",
            rate,
            "pushes/s",
            target=">= 500/s",
            ok=rate >= 500,
            runs=[r.rate for r in rates],
            note=f"{pushes} per run; sender CPU {median(r.sender_cpu_ms for r in rates):.2f} ms/push",
        ),
    ]
    idle, busy, pushed = latency
    figures.append(
        Figure(
            "6 push",
            "PUT p99 while pushing",
            busy,
            "ms",
            target=f"<= 2x idle ({idle:.0f} ms)",
            ok=busy <= 2 * idle,
            note=f"{pushed} pushes sent meanwhile; idle p99 {idle:.1f} ms",
        )
    )
    return figures


def _requests_while_pushing(service, pushes: int, quick: bool) -> tuple[float, float, int]:
    """PUT p99 on a server with and without a fan-out running beside it on this machine."""
    from tests.bench import push_fanout

    folder = workdir()
    db = folder / "push-http.db"
    creds = seed(db, patients=200, history_patients=200, days=30, tokens=200)
    load = Load(folder, creds)
    seconds = 4 if quick else 8
    with Server(db) as srv:
        wrk(srv.url, seconds=1, connections=8, script=LUA / "put.lua", args=load.args())
        idle = wrk(srv.url, seconds=seconds, connections=8, script=LUA / "put.lua", args=load.args())
        result: dict = {}

        def load_it() -> None:
            result["r"] = wrk(
                srv.url, seconds=seconds, connections=8, script=LUA / "put.lua", args=load.args()
            )

        t = threading.Thread(target=load_it)
        t.start()
        sent = 0
        while t.is_alive():
            push_fanout.one_run(service, min(pushes, 1000))
            sent += min(pushes, 1000)
            time.sleep(0.05)
        t.join()
    return idle.p99_ms, result["r"].p99_ms, sent


# -- 7 export memory -------------------------------------------------------------------------
EXPORT_RATE = re.compile(r"median ([\d,]+) rows/s")
EXPORT_RSS = re.compile(r"peak RSS (\d+) MB")


def export(quick: bool) -> list[Figure]:
    script = _script("export_long.py")
    if script is None:
        return [not_measured("7 memory", "export peak RSS", "tests/bench/export_long.py not landed")]
    out = _run_script(
        script,
        "--patients",
        "1000",
        "--days",
        "365",
        "--runs",
        "1" if quick else "3",
        "--dir",
        str(ROOT / "data" / "bench"),
        timeout=300 if quick else 600,
    )
    rate, rss = EXPORT_RATE.search(out), EXPORT_RSS.search(out)
    if rate is None or rss is None:
        raise RuntimeError(f"export_long.py printed no summary: {out[-300:]}")
    rows = float(rate.group(1).replace(",", ""))
    return [
        Figure(
            "7 memory",
            "export peak RSS (long CSV, 1 000 patients x 365 days)",
            float(rss.group(1)),
            "MB",
            target="flat (streams)",
            note=f"{rows:,.0f} answer rows/s",
        ),
    ]
