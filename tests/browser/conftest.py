"""Fixtures for driving the patient PWA in Debian's Chromium against the real server."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.licensed import write_licensed

ROOT = Path(__file__).resolve().parents[2]
PIJNWACHT = ROOT / ".venv" / "bin" / "pijnwacht"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
# Screenshots of the main screens: docs/screenshots/ is refreshed on purpose (`make screenshots`),
# not by every test run.
SCREENSHOTS = Path(
    os.environ.get("PIJNWACHT_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "pijnwacht-screenshots"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DUTCH = {"LANG": "nl_NL.UTF-8", "LANGUAGE": "nl"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real `pijnwacht serve` on a loopback port, with its own database file."""

    def __init__(self, tmp: Path):
        self.db = tmp / "t.db"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The clinic supplied BPI-SF's licensed text; EQ-5D-5L, ODI and DN4 wait for theirs.
        licensed = write_licensed(tmp / "licensed", "bpi")
        self.env = {
            **os.environ,
            "PIJNWACHT_DB": str(self.db),
            "PIJNWACHT_SCHEDULER": "false",
            "PIJNWACHT_LICENSED_DIR": str(licensed),
        }
        self.log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(PIJNWACHT), "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {(tmp / 'server.log').read_text()[-2000:]}")

    def enrol_many(self, count: int, name: str = "Test", pathway: str = "chronic-pain") -> list[dict]:
        """Enrol patients with `pijnwacht enrol --json`, a few commands at once (24 at once
        starve a loaded two-core machine past any timeout)."""
        enrolled = []
        for start in range(0, count, 4):
            procs = [
                subprocess.Popen(
                    [str(PIJNWACHT), "enrol", "--name", name, "--pathway", pathway, "--json"],
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(min(4, count - start))
            ]
            for proc in procs:
                out, err = proc.communicate(timeout=180)
                assert proc.returncode == 0, err
                enrolled.append(json.loads(out))
        return enrolled

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def responses(self, patient_id: str, questionnaire: str = "diary") -> list[dict]:
        rows = self.query(
            "SELECT id, local_date, answers, authored_at FROM responses"
            " WHERE patient_id = ? AND questionnaire_id = ? ORDER BY authored_at",
            (patient_id, questionnaire),
        )
        return [{**dict(r), "answers": json.loads(r["answers"])} for r in rows]

    def wait_for_responses(
        self, patient_id: str, count: int, questionnaire: str = "diary", timeout: float = 15
    ) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.responses(patient_id, questionnaire)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def execute(self, sql: str, params: tuple = ()) -> None:
        conn = sqlite3.connect(self.db, timeout=10)
        try:
            with conn:
                conn.execute(sql, params)
        finally:
            conn.close()

    def backdate(self, patient_id: str, days: int) -> None:
        """Enrolled `days` ago: the app offers diary days back to then."""
        self.execute(
            "UPDATE patients SET enrolled_at = strftime('%Y-%m-%dT%H:%M:%SZ', enrolled_at, ?) WHERE id = ?",
            (f"-{days} days", patient_id),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


# Package scope: Playwright's sync API keeps an event loop running in the main thread while it
# is started; it must be stopped before the other suites (which use asyncio.run) begin.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # A Dutch browser (chromium-l10n): the time and date fields show 20:00 and 09-12-2026
        # as on a Dutch phone, not 08:00 PM.
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={**os.environ, **DUTCH})
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=server.url,
        viewport=PHONE,
        locale="nl-NL",
        timezone_id="Europe/Amsterdam",
        service_workers="allow",
    )
    ctx.grant_permissions(["notifications"], origin=server.url)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A CSP refusal shows up only as a console error: collect those too.
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture(scope="session")
def enrolled(server: Server) -> list[dict]:
    # The command takes seconds (a fresh Python each time): make them for all tests at once.
    return server.enrol_many(24)


@pytest.fixture
def patient(enrolled: list[dict]) -> dict:
    """A freshly enrolled patient (name Test, chronic-pain) with an unused code."""
    return enrolled.pop()


def join(page: Page, code: str) -> None:
    """Open the enrolment link, join, and finish the three set-up choices."""
    page.goto(f"/#code={code}")
    page.get_by_role("button", name="Aanmelden").click()
    page.get_by_role("heading", name="Welkom, Test").wait_for()
    page.get_by_role("button", name="Klaar").click()
    page.get_by_role("heading", name="Dagboek").wait_for()
    # The shell is offline-ready once the service worker controls the page.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def pick(page: Page, item_id: str, name: str) -> None:
    """Choose an answer (radio button by its accessible name) of one diary item."""
    page.locator(f'[data-item="{item_id}"]').get_by_role("radio", name=name, exact=True).check()


def worker_registration(context: BrowserContext, page: Page) -> tuple[Any, str]:
    """A DevTools session on `page` and the id of its service worker's registration, to fire
    the events a browser fires (push, sync) at will."""
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(50):
        if registrations:
            break
        page.wait_for_timeout(100)
    return cdp, registrations[0]["registrationId"]


def push_to_worker(context: BrowserContext, page: Page, server: Server, payload: dict) -> None:
    """Deliver `payload` into the page's service worker as a push service would (DevTools)."""
    cdp, registration = worker_registration(context, page)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": server.url, "registrationId": registration, "data": json.dumps(payload)},
    )


def axe(page: Page) -> list[dict]:
    """Violations axe-core finds on the page as it is now (WCAG 2.x A/AA rules)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Not add_script_tag: the strict CSP (no inline script) rightly refuses that; an
        # evaluate from the test driver is not subject to the page's CSP.
        page.evaluate(AXE.read_text())
    return page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary).slice(0, 5)}));
        }"""
    )
