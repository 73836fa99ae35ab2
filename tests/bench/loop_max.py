"""`/healthz` max while the clinic renders a heavy patient's pages in a loop (issue 17).

`python -m tests.bench.loop_max` seeds one patient (a year of diaries, 30 000 edits of today,
as `tests/bench/edits.py`) and probes `/healthz` every 20 ms for `BENCH_SECONDS` (10) under
each condition below, a fresh server each time, the conditions alternated within a round
and `BENCH_RUNS` (5) rounds; then the median over the rounds of each condition's max, p99
and count of probes >= 100 ms, with the load average (`os.getloadavg`) of each run.

Conditions (`BENCH_CONDITIONS`, comma-separated; default all of them):

- `idle`: `/healthz` alone, nothing else in the server;
- `idle+burn`: `/healthz` alone with a CPU-burning process pinned to the server's core: what
  the machine alone does to the probe (a core shared with one other busy process);
- `<code>`: `/healthz` while another process loads the timeline, consult page and consult
  CSV in a loop (gzip, as a browser asks);
- `<code>+burn`: the same with the burner beside it.

`<code>` is `after` (this checkout) and, with BENCH_BEFORE=<a checkout of older code>,
`before` (that code's server on the same file).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.common import Server, median, pinned, workdir  # noqa: E402
from tests.bench.edits import ENV, HEALTHZ_MS, PID, _server_from, build  # noqa: E402

BURNER = "while True: pass"
PROBE_GAP = 0.02
# Loads the three heaviest pages of the patient in a loop, gzip as a browser asks; one line
# per page: its milliseconds (how much page work the server did meanwhile).
CLINICIAN = """
import http.client, sys, time
port, cookie, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
headers = {"Cookie": cookie, "Accept-Encoding": "gzip"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
base = "/clinic/patients/" + pid
while True:
    for path in (base, base + "/consult", base + "/consult.csv"):
        t0 = time.perf_counter()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        print(path.rsplit("/", 1)[-1], round((time.perf_counter() - t0) * 1000, 1), flush=True)
"""


def _server_switching(seconds: float) -> list[str]:
    """This checkout's `pijnwacht serve` with the GIL switch interval at `seconds`."""
    code = (
        f"import sys; import backend.platform.storage as s; sys.setswitchinterval({seconds});"
        f" s.SWITCH_INTERVAL = {seconds}; from backend.cli import main; sys.argv[1:] = ['serve']; main()"
    )
    return [sys.executable, "-c", code]


def _probe(port: int, seconds: float) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    waits = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        waits.append((time.perf_counter() - t0) * 1000)
        time.sleep(PROBE_GAP)
    conn.close()
    return waits


def one_run(
    db: Path, cookie: str, command: list[str] | None, *, pages: int, burn: bool, seconds: float
) -> dict:
    """One fresh server: /healthz probed for `seconds`, with `pages` clinicians loading the
    heavy pages and/or a burner."""
    helpers: list[subprocess.Popen] = []
    clinicians: list[subprocess.Popen] = []
    with Server(db, env=ENV, command=command) as srv:
        try:
            if burn:  # on the server's core (Server pins it to CPU 1)
                helpers.append(subprocess.Popen(pinned([sys.executable, "-c", BURNER], 1)))
            for _ in range(pages):
                clinicians.append(
                    subprocess.Popen(
                        [sys.executable, "-c", CLINICIAN, str(srv.port), cookie, PID],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            time.sleep(1.0)
            cpu = srv.cpu_seconds()
            t0 = time.monotonic()
            waits = _probe(srv.port, seconds)
            cpu = srv.cpu_seconds() - cpu
            elapsed = time.monotonic() - t0
        finally:
            for h in helpers + clinicians:
                h.terminate()
                h.wait(30)
        rss = srv.sample_memory()
    timeline = []
    loaded = 0
    for c in clinicians:
        lines = [line.split() for line in c.stdout.read().splitlines()]  # type: ignore[union-attr]
        loaded += len(lines)
        timeline += [float(ms) for name, ms in lines if name == PID]
    ordered = sorted(waits)
    return {
        "max": ordered[-1],
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "median": median(ordered),
        "over": sum(w >= HEALTHZ_MS for w in waits),
        "probes": len(waits),
        "load": os.getloadavg()[0],
        "cpu": cpu / seconds * 100,
        "rss": rss or 0.0,
        # pages loaded a second (from 1 s before the probes: near enough) and the timeline's time
        "pages": loaded / (elapsed + 1.0),
        "timeline": median(timeline) if timeline else 0.0,
    }


def main() -> None:
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    edits = int(os.environ.get("BENCH_EDITS", "30000"))
    before = os.environ.get("BENCH_BEFORE")
    clinicians = int(os.environ.get("BENCH_CLINICIANS", "1"))
    codes: dict[str, list[str] | None] = {"after": None}
    if before:
        codes["before"] = _server_from(before)
    for ms in filter(None, os.environ.get("BENCH_SWITCH", "").split(",")):  # e.g. 5,0.2 (ms)
        codes[f"si{ms}ms"] = _server_switching(float(ms) / 1000)
    names = ["idle", "idle+burn"] + [c + s for c in codes for s in ("", "+burn")]
    wanted = os.environ.get("BENCH_CONDITIONS")
    if wanted:
        names = [n for n in names if n in wanted.split(",")]
    db, _token, cookie = build(workdir(), 1, edits)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"clinicians loading pages at once: {clinicians}")
    print(
        "round | condition | max ms | p99 ms | median ms | >= 100 ms | probes | server CPU %"
        " | pages/s | timeline ms | RSS MB | load"
    )
    results: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(runs):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: no condition always first
        for name in order:
            code, _, burn = name.partition("+")
            command = None if code == "idle" else codes[code]
            m = one_run(
                db,
                cookie,
                command,
                pages=0 if code == "idle" else clinicians,
                burn=bool(burn),
                seconds=seconds,
            )
            results[name].append(m)
            print(
                f"{r + 1} | {name} | {m['max']:.1f} | {m['p99']:.1f} | {m['median']:.1f} | {m['over']}"
                f" | {m['probes']} | {m['cpu']:.0f} | {m['pages']:.1f} | {m['timeline']:.0f}"
                f" | {m['rss']:.0f} | {m['load']:.1f}",
                flush=True,
            )
    print(f"\nmedians of {runs} rounds of {seconds:.0f} s ({edits:,} edits):")
    print("condition | max ms | p99 ms | >= 100 ms (all rounds) | probes | pages/s | timeline ms | load")
    for name in names:
        ms = results[name]
        loads = [m["load"] for m in ms]
        print(
            f"{name} | {median(m['max'] for m in ms):.1f} (range {min(m['max'] for m in ms):.0f}-"
            f"{max(m['max'] for m in ms):.0f}) | {median(m['p99'] for m in ms):.1f}"
            f" | {sum(m['over'] for m in ms)} | {sum(m['probes'] for m in ms)}"
            f" | {median(m['pages'] for m in ms):.1f} | {median(m['timeline'] for m in ms):.0f}"
            f" | {min(loads):.1f}-{max(loads):.1f}"
        )
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
