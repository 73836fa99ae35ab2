"""The HTTP server's guards. A deadline for the request head: a connection that has not sent
its request line and headers within `header_timeout` seconds is closed (slowloris, review L7).

uvicorn has no such deadline: it arms its keep-alive timeout only after a request's headers
are complete, so a client that opens a connection and sends a byte now and then holds it
(and a file descriptor) for ever; 300 of them were still held after 20 s. The deadline runs
from the connection's start, and again from the first byte of each later request on a
kept-alive connection; it ends when the headers are complete (a slow body is the app's
`request_max_body_size` and the client's business).

And the access log's lines without query strings or patient ids (QueryRedactor).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on the request head."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol(header_timeout: float) -> Any:
    """The `http=` argument for uvicorn.run."""
    return functools.partial(HeaderDeadlineProtocol, header_timeout=header_timeout)


_PATIENT_IN_PATH = re.compile(r"^(/clinic/(?:patients|audit)/)[^/?]+")


class QueryRedactor(logging.Filter):
    """Drops the query string from uvicorn's access log lines (a patient search term,
    /clinic/patients?q=Jansen, or an old-style enrolment link's code, /?code=...) and the
    patient's id from a clinic path (/clinic/patients/…/consult): the log says what was asked
    for, never of whom."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, query = args[2].partition("?")[::2]
            path = _PATIENT_IN_PATH.sub(r"\1…", path)
            record.args = (args[0], args[1], path + ("?…" if query else ""), *args[3:])
        return True
