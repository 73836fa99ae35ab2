"""Benchmark plumbing: figures and their table, medians, a real server subprocess, wrk, seeding.

Every benchmark part returns a list of `Figure`s; `__main__` prints them as one table and
writes them to bench-results/bench.json. The HTTP parts drive a real `pijnwacht serve`
process with Debian's wrk, each pinned to its own core when `taskset` exists, so the load
generator and the server do not fight for the same CPU.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
BIN = Path(sys.executable).parent
PASS, SHORT, INFO = "PASS", "FALL SHORT", ""


@dataclass
class Figure:
    """One measured number, with its target and verdict (None = no target, information only)."""

    part: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""
    runs: list[float] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        return INFO if self.ok is None else (PASS if self.ok else SHORT)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict
        return d


def not_measured(part: str, name: str, why: str, target: str = "") -> Figure:
    return Figure(part, name, None, "", target=target, note=f"not measured: {why}")


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(figures: Sequence[Figure]) -> str:
    rows = [("part", "figure", "value", "unit", "target", "verdict", "note")]
    for f in figures:
        rows.append((f.part, f.name, fmt(f.value), f.unit, f.target, f.verdict, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r[:6], widths, strict=False)) + "  " + r[6])
        if n == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(out)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "taskset": bool(shutil.which("taskset")),
        "wrk": shutil.which("wrk"),
        "load_average": os.getloadavg()[0],
    }


# -- processes -----------------------------------------------------------------------------
def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """`cmd` pinned to one CPU when taskset exists and the machine has more than one.

    Run as root, the pinned processes (server and wrk) also get a higher priority, so that
    background work on a shared machine disturbs the measurement less.
    """
    if cpu is None or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return cmd
    boost = ["nice", "-n", "-5"] if os.geteuid() == 0 and shutil.which("nice") else []
    return [*boost, "taskset", "-c", str(cpu), *cmd]


def peak_rss_mb(pid: int) -> float | None:
    """The peak resident memory (VmHWM) of a running process, in MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `pijnwacht serve` subprocess on a database file, pinned to `cpu`."""

    def __init__(
        self,
        db: Path,
        *,
        log_level: str = "warning",
        cpu: int | None = 1,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_suffix(f".{log_level}.log")
        self.env = {
            **os.environ,
            "PIJNWACHT_DB": str(db),
            "PIJNWACHT_SCHEDULER": "false",
            "PIJNWACHT_LOG_LEVEL": log_level,
            "PIJNWACHT_PORT": str(self.port),
            **(env or {}),
        }
        self.command = pinned(command or [str(BIN / "pijnwacht"), "serve"], cpu)
        self.proc: subprocess.Popen | None = None
        self.peak_mb: float | None = None

    def __enter__(self) -> Server:
        # The access log goes to a file, as it would go to the journal in production.
        self._logfile = open(self.log, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdout=self._logfile, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer /healthz within 60 s")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (all its threads)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sample_memory(self) -> float | None:
        if self.proc is not None:
            self.peak_mb = peak_rss_mb(self.proc.pid)
        return self.peak_mb

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.sample_memory()
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logfile.close()


@dataclass
class WrkResult:
    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    busy: float = float("nan")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    script: Path | None = None,
    args: Sequence[str] = (),
    cpu: int | None = 0,
    threads: int = 1,
) -> WrkResult:
    """Run wrk against `url` and parse requests/s, latency percentiles and errors."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if args:
        cmd += ["--", *args]
    out = subprocess.run(pinned(cmd, cpu), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps=rps,
        requests=requests,
        p50_ms=p50,
        p99_ms=p99,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(g) for g in errs.groups()) if errs else 0,
    )


# -- data ------------------------------------------------------------------------------------
def token_hash(token: str) -> str:
    """As backend.patients.enrolment stores device tokens (sha256 hex), so seeded tokens work."""
    return hashlib.sha256(token.encode()).hexdigest()


def diary_answers(rng: random.Random, pain: int | None = None) -> dict[str, Any]:
    pain = rng.randint(2, 7) if pain is None else pain
    return {
        "pain_avg": pain,
        "pain_worst": min(10, pain + rng.randint(0, 2)),
        "sleep_hours": rng.randint(10, 17) / 2,
        "sleep_quality": rng.randint(3, 8),
        "activity": rng.randint(3, 8),
        "mood": rng.randint(3, 8),
        "rescue_doses": rng.randint(0, 1),
        "se_drowsiness": 0,
        "se_nausea": rng.randint(0, 1),
        "se_constipation": 0,
        "se_dizziness": 0,
    }


RESPONSE_INSERT = (
    "INSERT INTO responses (id, patient_id, questionnaire_id, questionnaire_version, authored_at,"
    " authored_at_client, local_date, task_id, answers, scores, content_hash, received_at)"
    " VALUES (?, ?, 'diary', 1, ?, ?, ?, NULL, ?, '{}', ?, ?)"
)


def diary_row(rng: random.Random, patient_id: str, day: date, answers_json: str) -> tuple:
    authored = f"{day.isoformat()}T19:{rng.randrange(60):02d}:00Z"
    return (
        str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        patient_id,
        authored,
        authored.replace("Z", "+00:00"),
        day.isoformat(),
        answers_json,
        hashlib.sha256(answers_json.encode()).hexdigest(),
        authored,
    )


def seed(
    path: Path,
    *,
    patients: int,
    history_patients: int = 0,
    days: int = 0,
    tokens: int = 0,
    today: date | None = None,
    seed_: int = 7,
) -> list[tuple[str, str]]:
    """A migrated database with bulk-inserted patients, diaries and device tokens.

    `history_patients` of the `patients` get `days` of daily diaries up to yesterday; the
    first `tokens` patients get a device token. Returns [(patient_id, token)].
    """
    from backend.platform import migrations
    from backend.platform.storage import connect

    today = today or datetime.now(UTC).date()
    rng = random.Random(seed_)
    conn = connect(path)
    conn.execute("PRAGMA synchronous = OFF")  # a throw-away benchmark file
    migrations.apply(conn)
    pool = [msgspec.json.encode(diary_answers(rng)).decode() for _ in range(2000)]
    enrolled = (today - timedelta(days=max(days, 1) + 1)).isoformat()
    out: list[tuple[str, str]] = []
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO patients (id, display_name, pathway_id, anchor_date, enrolled_at)"
        " VALUES (?, ?, 'chronic-pain', ?, ?)",
        ((f"p{n:07d}", f"Patient {n}", enrolled, enrolled + "T09:00:00Z") for n in range(patients)),
    )
    for n in range(tokens):
        token = f"bench-token-{n:07d}-{uuid.UUID(int=rng.getrandbits(128)).hex}"
        out.append((f"p{n:07d}", token))
        conn.execute(
            "INSERT INTO devices (token_hash, patient_id, created_at) VALUES (?, ?, ?)",
            (token_hash(token), f"p{n:07d}", enrolled + "T09:00:00Z"),
        )
    for n in range(history_patients):
        pid = f"p{n:07d}"
        conn.executemany(
            RESPONSE_INSERT,
            (diary_row(rng, pid, today - timedelta(days=d), rng.choice(pool)) for d in range(days, 0, -1)),
        )
        if n % 200 == 199:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    return out


_SCRATCH: list[Path] = []


def workdir() -> Path:
    """A scratch folder on the same disk as the project (tmpfs would flatter fsync)."""
    base = ROOT / "data" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    _SCRATCH.append(folder)
    return folder


def clean_scratch() -> None:
    """Remove the scratch folders this process made (the databases are large)."""
    while _SCRATCH:
        shutil.rmtree(_SCRATCH.pop(), ignore_errors=True)


class Load:
    """What the wrk scripts need: a tokens file, a run prefix, a write time and diary days."""

    def __init__(self, folder: Path, creds: Sequence[tuple[str, str]], *, days_back: int = 10):
        self.tokens_file = folder / "tokens.txt"
        self.tokens_file.write_text("".join(t + "\n" for _, t in creds))
        now = datetime.now(UTC)
        self.authored_at = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        from zoneinfo import ZoneInfo

        today = now.astimezone(ZoneInfo("Europe/Amsterdam")).date()
        # Days up to `days_back` ago: a late entry is allowed, and spreading the days keeps
        # each patient's day from collecting hundreds of edits.
        self.days = ",".join((today - timedelta(days=d)).isoformat() for d in range(days_back))

    def args(self, *extra: str) -> list[str]:
        prefix = uuid.uuid4().hex[:8]  # unique per wrk run: never a duplicate id
        return [str(self.tokens_file), prefix, self.authored_at, self.days, *extra]


LUA = Path(__file__).with_name("lua")


def wrk_on(srv: Server, path: str = "", **kw: Any) -> tuple[WrkResult, float]:
    """wrk against the server, and the server's CPU-bound ceiling: requests per CPU second.

    Requests/s depends on what else the machine runs; requests per CPU second of the server
    process does much less, so both are reported. `result.busy` is the share of one core
    the server used: below ~85 % the server was not the bottleneck (wrk or the machine was).
    """
    cpu = srv.cpu_seconds()
    t0 = time.perf_counter()
    result = wrk(srv.url + path, **kw)
    used = srv.cpu_seconds() - cpu
    result.busy = used / (time.perf_counter() - t0)
    return result, (result.requests / used if used > 0 else float("nan"))
