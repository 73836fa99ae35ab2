"""A `pijnwacht serve` with part of the PUT write path taken out: benchmark 1's breakdown.

Run by http_ceiling.py as `python -m tests.bench.stripped_server MODE` with the same
PIJNWACHT_* environment as the real server. The app, middleware, device-token check, body
parsing and validation are the real ones; what MODE takes out of `PUT /api/v1/responses/{uuid}`:

- `no-detection`: the response is stored and its task marked done, no rules run;
- `empty-write`: the write job goes through the writer thread's group commit, storing nothing;
- `no-write`: the handler answers "created" without going to the writer at all.

Never for production: it exists to show how much of a PUT each part costs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend import intake  # noqa: E402
from backend.cli import serve  # noqa: E402
from backend.platform.settings import load_settings  # noqa: E402
from backend.system import build  # noqa: E402
from backend.web.app import create_app  # noqa: E402

MODES = ("no-detection", "empty-write", "no-write")


def main(mode: str) -> None:
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {', '.join(MODES)}")
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper())
    services = build(settings)
    if mode == "no-detection":
        # intake.receive calls its steps by name: the last one, detection, does nothing here.
        intake.judge_alerts = lambda *args, **kwargs: None
    else:
        real_write = services.db.write

        async def write(fn, **kw):  # the PUT handler unpacks one outcome
            if mode == "empty-write":
                return await real_write(lambda conn: ["created"], **kw)
            return ["created"]

        services.db.write = write
    serve(settings, create_app(settings, services))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
