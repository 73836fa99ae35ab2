"""A phone heals a restored server: what the restore lost comes back from the phone, exactly once.

The phone confirms 30 diary days; the server is restored from a backup taken before the last 10
(`pijnwacht backup`, `pijnwacht restore`, the file moved into place as the README's drill says);
the phone comes online, sees the new database generation in GET /api/v1/me, and sends its kept
history again through the batch endpoint. The server ends with all 30, each once, as first sent.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser

from tests.browser.conftest import CHROMIUM_ARGS, PHONE, join  # noqa: F401 - the same phone
from tests.conftest import diary
from tests.server import Server

AMS = ZoneInfo("Europe/Amsterdam")


def stored(db: Path) -> list[tuple[str, str, dict]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, local_date, answers FROM responses ORDER BY local_date").fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]
    finally:
        conn.close()


def confirm_on_phone(page, bodies: list[dict]) -> None:
    """The phone's own outbox path (core.js): enqueue each day's diary, send, wait for the server."""
    page.evaluate(
        """async (bodies) => {
            for (const b of bodies) await self.Pijnwacht.enqueue(b);
            const summary = await self.Pijnwacht.flush();
            if (summary.sent !== bodies.length) throw new Error(JSON.stringify(summary));
        }""",
        bodies,
    )


def test_a_phone_sends_again_what_a_restore_lost(browser: Browser, tmp_path: Path):
    server = Server(tmp_path / "data" / "pijnwacht.db").start()
    context = browser.new_context(
        base_url=server.url, viewport=PHONE, locale="nl-NL", timezone_id="Europe/Amsterdam"
    )
    try:
        page = context.new_page()
        _pid, code = server.enrol(name="Test")
        join(page, code)
        today = datetime.now(AMS).date()
        days = [diary((today - timedelta(days=29 - i)).isoformat(), pain_avg=i % 11) for i in range(30)]

        confirm_on_phone(page, days[:20])
        copy = tmp_path / "backups" / "before-the-last-10.db"
        assert server.run("backup", str(copy)).returncode == 0
        confirm_on_phone(page, days[20:])
        sent = stored(server.db)
        assert len(sent) == 30
        generation = page.evaluate("async () => self.Pijnwacht.store.get('kv', 'generation')")
        assert generation and len(generation) == 32, "the phone did not keep the server's generation"

        # The machine is lost; the admin restores the copy while the phone is out of reach.
        context.set_offline(True)
        server.stop()
        restored = tmp_path / "restored.db"
        done = server.run("restore", "--from", str(copy), "-o", str(restored))
        assert done.returncode == 0, done.stderr
        for suffix in ("", "-wal", "-shm"):
            Path(f"{server.db}{suffix}").unlink(missing_ok=True)
        restored.rename(server.db)
        server.start()
        assert len(stored(server.db)) == 20

        context.set_offline(False)  # the phone comes online: refresh() sees the new generation
        healed = stored(server.db)
        for _ in range(75):
            if len(healed) >= 30:
                break
            page.wait_for_timeout(200)
            healed = stored(server.db)
        assert len(healed) == 30, f"the server has {len(healed)} of 30 after the phone came online"
        assert len({rid for rid, _d, _a in healed}) == 30
        assert healed == sent, "a response came back other than the phone first sent it"
        # Not a conflict nor a problem for the patient: nothing is left marked in the outbox.
        # (The server stores a batch before the phone hears back: give the phone that moment.)
        outbox = "async () => (await self.Pijnwacht.store.all('outbox')).length"
        for _ in range(50):
            if page.evaluate(outbox) == 0:
                break
            page.wait_for_timeout(200)
        assert page.evaluate(outbox) == 0, page.evaluate(
            "async () => JSON.stringify(await self.Pijnwacht.store.all('outbox')).slice(0, 600)"
        )
    finally:
        context.close()
        server.stop()
