"""Benchmark: encrypted Web Push fan-out, pushes per second from flush() to a push service.

Run: .venv/bin/python tests/bench/push_fanout.py [--pushes 2000] [--runs 3]

Each run queues one reminder for N patients with one device each and times one flush: claim,
aes128gcm encryption + VAPID signature per push, HTTP to a loopback stand-in push service,
and recording the outcomes. The stand-in runs in a process of its own (as the real push
service is elsewhere) and still verifies the JWT and decrypts every body, so every counted
push is a correct one. Target: >= 500 pushes/s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.platform.settings import Settings  # noqa: E402
from backend.platform.storage import open_database  # noqa: E402
from backend.push import keys as vapid  # noqa: E402
from backend.push import queue as push_queue  # noqa: E402
from backend.push import sender as push  # noqa: E402
from backend.push import subscriptions  # noqa: E402
from tests.pushservice import PushService  # noqa: E402

MESSAGE = push_queue.PushMessage(title="Pijnwacht", body="Tijd voor uw dagboek", tag="diary")


class RemoteService:
    """The stand-in push service in a child process, driven over a pipe."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True)
        self._proc.start()

    def _call(self, *command):
        self._conn.send(command)
        return self._conn.recv()

    def new_subscriptions(self, n: int, key: str) -> list[dict]:
        return self._call("new", n, key)

    def total_received(self) -> int:
        return self._call("count")

    def cpu_seconds(self) -> float:
        return self._call("cpu")

    @property
    def errors(self) -> list[str]:
        return self._call("errors")

    def stop(self) -> None:
        self._call("stop")
        self._proc.join(10)


def _serve(conn) -> None:
    with PushService() as service:
        while True:
            command, *args = conn.recv()
            if command == "new":
                n, key = args
                conn.send([service.new_subscription(key) for _ in range(n)])
            elif command == "count":
                conn.send(service.total_received())
            elif command == "cpu":
                conn.send(time.process_time())
            elif command == "errors":
                conn.send(list(service.errors))
            else:
                conn.send(None)
                return


class Run:
    def __init__(self, rate: float, sender_cpu_ms: float, service_cpu_ms: float):
        self.rate = rate
        self.sender_cpu_ms = sender_cpu_ms
        self.service_cpu_ms = service_cpu_ms


def one_run(service: RemoteService, pushes: int) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(Path(tmp) / "bench.db")
        keys = vapid.ensure_vapid_keys(Path(tmp))
        settings = Settings(push_timeout_seconds=10.0, push_allow_loopback=True)
        subs = service.new_subscriptions(pushes, keys.public_key_b64)
        now = datetime.now(UTC)

        def setup(conn) -> None:
            for n, sub in enumerate(subs):
                conn.execute(
                    "INSERT INTO patients (id, display_name, pathway_id, anchor_date,"
                    " enrolled_at) VALUES (?, 'x', 'bench', '2026-01-01', '2026-01-01T00:00:00Z')",
                    (f"p{n}",),
                )
                subscriptions.save_subscription(
                    conn, patient_id=f"p{n}", subscription=sub, allow_loopback=True
                )
                push_queue.enqueue(conn, patient_id=f"p{n}", message=MESSAGE, now=now)

        db.write_sync(setup)
        before = service.total_received()
        service_cpu = service.cpu_seconds()
        cpu = time.process_time()
        started = time.perf_counter()
        report = push.flush_sync(db, settings, keys, now, limit=pushes)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        service_cpu = service.cpu_seconds() - service_cpu
        db.close()
    delivered = service.total_received() - before
    if report.sent != pushes or delivered != pushes or service.errors:
        raise SystemExit(f"run failed: {report}, delivered {delivered}, {service.errors[:3]}")
    return Run(pushes / elapsed, cpu / pushes * 1000, service_cpu / pushes * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    service = RemoteService()
    try:
        runs = [one_run(service, args.pushes) for _ in range(args.runs)]
    finally:
        service.stop()
    rates = [r.rate for r in runs]
    sender_ms = statistics.median(r.sender_cpu_ms for r in runs)
    service_ms = statistics.median(r.service_cpu_ms for r in runs)
    print(
        f"push fan-out: {statistics.median(rates):.0f} encrypted pushes/s"
        f" (median of {args.runs} runs of {args.pushes};"
        f" runs {', '.join(f'{r:.0f}' for r in rates)}; concurrency {push.CONCURRENCY};"
        f" target >= 500/s)"
    )
    # Wall-clock rates depend on what else the machine runs; CPU per push does not.
    print(
        f"sender CPU {sender_ms:.2f} ms/push (= {1000 / sender_ms:.0f} pushes/s on one free"
        f" core); stand-in push service CPU {service_ms:.2f} ms/push;"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
