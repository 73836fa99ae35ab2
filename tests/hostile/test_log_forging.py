"""Nobody can write a line of their own into the server's log (review L2).

Before: `GET /x%00%0AERROR - database refused a write` made the server log an unhandled error
with the decoded path, so the log showed a forged "ERROR - database refused a write" line. Now
a NUL in a path is a plain 404 (test_bad_bytes.py), uvicorn's access log writes the path
percent-encoded, and the server's own error lines write a path as repr() (escaped).
"""

from __future__ import annotations

import logging
import socket

from backend.patients import enrolment
from tests.server import Server

FORGED = "ERROR - database refused a write"
PATHS = [
    "/x%00%0AERROR%20-%20database%20refused%20a%20write",
    "/x%0AERROR%20-%20database%20refused%20a%20write",
    "/x%0D%0AERROR%20-%20database%20refused%20a%20write",
    "/api/v1/me%0A%1B[31mERROR%20-%20database%20refused%20a%20write",
]


def test_forged_lines_never_start_a_line_of_the_real_servers_log(tmp_path):
    with Server(tmp_path / "pw.db", env={"PIJNWACHT_LOG_LEVEL": "info"}) as server:
        for path in PATHS:
            with socket.create_connection(("127.0.0.1", server.port)) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                s.settimeout(5)
                assert s.recv(4096).startswith(b"HTTP/1.1 404")
    log = server.log.read_text(errors="replace")
    assert log.count("/x%") >= 3, log  # the requests were logged, percent-encoded
    assert not [line for line in log.splitlines() if line.lstrip().startswith(FORGED)]
    assert "\x1b" not in log


def test_the_servers_own_error_line_escapes_the_path(client, patient, monkeypatch, caplog):
    _pid, headers = patient

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(enrolment, "patient_for_token", broken)
    with caplog.at_level(logging.ERROR, logger="backend.web.app"):
        r = client.put(
            "/api/v1/responses/x%0AERROR%20-%20database%20refused%20a%20write", json={}, headers=headers
        )
    assert r.status_code == 500
    [line] = [rec.getMessage() for rec in caplog.records if "unhandled" in rec.getMessage()]
    assert "\n" not in line and "x\\nERROR" in line
