"""Crash during sync: SIGKILL the real server while 20 phones empty their outboxes.

Each client behaves like the PWA's outbox: it keeps an item until the server confirmed it
(201/200 for a single PUT; "created" or "duplicate" in a batch answer) and retries on network
errors and 5xx. However the kill falls — before a commit, between commit and answer, while a
batch is half-read — every response must end up stored exactly once, with its own content.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest

from tests.server import Server, enrol_direct, redeem

pytestmark = pytest.mark.timeout(90)

AMS = ZoneInfo("Europe/Amsterdam")
CLIENTS = 20
PER_CLIENT = 60
BATCH = 10


def outbox_for(client_no: int) -> list[dict]:
    """60 responses: diaries for the last 14 days, several edits per day, a few PEGs."""
    now = datetime.now(AMS)
    items = []
    for k in range(PER_CLIENT):
        # Distinct authored_at per item (edits of one day differ in time), local_date up to
        # 13 days late: all valid, all distinct rows.
        authored = now - timedelta(minutes=k + 1, seconds=client_no)
        local = (now.date() - timedelta(days=k % 14)).isoformat()
        if k % 15 == 14:
            body = {
                "questionnaire": "peg",
                "version": 1,
                "answers": {"peg_pain": k % 11, "peg_enjoyment": 3, "peg_activity": 4},
            }
        else:
            body = {
                "questionnaire": "diary",
                "version": 1,
                "answers": {
                    "pain_avg": (k + client_no) % 11,
                    "pain_worst": 10,
                    "sleep_hours": 0.5 * (k % 20),
                    "note": f"c{client_no} k{k}",
                },
            }
        items.append(
            {
                "id": str(uuid.uuid4()),
                "authored_at": authored.isoformat(),
                "local_date": local,
                "task_id": None,
                **body,
            }
        )
    return items


class Phone:
    """One PWA outbox, sent in batches of 10 (most) or one PUT per item (every fifth client)."""

    def __init__(self, no: int, url: str, headers: dict[str, str], counter: Counter):
        self.no, self.url, self.headers, self.counter = no, url, headers, counter
        self.outbox = outbox_for(no)
        self.sent = list(self.outbox)
        self.problems: list[str] = []
        self.retries = 0
        self.single = no % 5 == 1

    def run(self, deadline: float) -> None:
        rng = random.Random(self.no)
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as http:
            while self.outbox and time.monotonic() < deadline:
                chunk = self.outbox[:1] if self.single else self.outbox[:BATCH]
                self.counter.tick()
                try:
                    confirmed = self._send(http, chunk)
                except (httpx.TransportError, ServerError):
                    self.retries += 1
                    time.sleep(0.02 + rng.random() * 0.08)
                    continue
                self.outbox = [i for i in self.outbox if i["id"] not in confirmed]
        if self.outbox:
            self.problems.append(f"client {self.no}: {len(self.outbox)} items never confirmed")

    def _send(self, http: httpx.Client, chunk: list[dict]) -> set[str]:
        if not self.single:
            r = http.post("/api/v1/responses:batch", json={"responses": chunk})
            if r.status_code >= 500:
                raise ServerError(r.status_code)
            assert r.status_code == 200, r.text
            confirmed = set()
            for res in r.json()["results"]:
                if res["status"] in ("created", "duplicate"):
                    confirmed.add(res["id"])
                else:  # a conflict or invalid here would mean the server mixed something up
                    self.problems.append(f"client {self.no}: {res}")
                    confirmed.add(res["id"])
            return confirmed
        item = chunk[0]
        body = {k: v for k, v in item.items() if k != "id"}
        r = http.put(f"/api/v1/responses/{item['id']}", json=body)
        if r.status_code >= 500:
            raise ServerError(r.status_code)
        if r.status_code not in (200, 201):
            self.problems.append(f"client {self.no}: {r.status_code} {r.text}")
        return {item["id"]}


class ServerError(Exception):
    pass


class Counter:
    """Requests started by all clients; the test kills the server when it reaches a mark."""

    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()
        self.reached = threading.Condition(self.lock)

    def tick(self) -> None:
        with self.lock:
            self.n += 1
            self.reached.notify_all()

    def wait_for(self, n: int, timeout: float) -> bool:
        with self.lock:
            return self.reached.wait_for(lambda: self.n >= n, timeout)


@pytest.mark.parametrize(
    "kill_after",
    [[3], [80, 220]],
    ids=["kill-at-start", "kill-mid-sync-twice"],
)
def test_sigkill_during_sync_loses_and_doubles_nothing(tmp_path, kill_after):
    server = Server(tmp_path / "crash.db").start()
    try:
        codes = enrol_direct(server.db, CLIENTS)
        patients = [redeem(server.url, code) for code in codes]
        counter = Counter()
        phones = [Phone(i, server.url, headers, counter) for i, (_pid, headers) in enumerate(patients)]
        deadline = time.monotonic() + 40
        threads = [threading.Thread(target=p.run, args=(deadline,)) for p in phones]
        for t in threads:
            t.start()
        kills = 0
        for mark in kill_after:
            if counter.wait_for(mark, timeout=20):
                server.kill()
                kills += 1
                time.sleep(0.1)  # let clients hit the dead port and queue retries
                server.start()
        for t in threads:
            t.join()
        assert kills == len(kill_after), "the clients finished before the planned kill"
        problems = [p for phone in phones for p in phone.problems]
        assert problems == []
        assert sum(p.retries for p in phones) > 0, "the kill never interrupted a request"

        # What each phone sees after the crash (its history on a new phone) ...
        for phone, (pid, headers) in zip(phones, patients, strict=True):
            got = httpx.get(server.url + "/api/v1/responses", headers=headers, timeout=10).json()
            ids = [r["id"] for r in got["responses"]]
            assert sorted(ids) == sorted(i["id"] for i in phone.sent), pid
    finally:
        server.stop()

    # ... and what the file holds: each response once, with the content sent, file intact.
    conn = sqlite3.connect(server.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, patient_id, answers FROM responses").fetchall()
        assert len(rows) == CLIENTS * PER_CLIENT
        by_id = {r[0]: r for r in rows}
        for phone, (pid, _h) in zip(phones, patients, strict=True):
            for item in phone.sent:
                stored = by_id[item["id"]]
                assert stored[1] == pid
                assert msgspec.json.decode(stored[2]) == {
                    k: (int(v) if isinstance(v, float) and v.is_integer() else v)
                    for k, v in item["answers"].items()
                }
    finally:
        conn.close()
