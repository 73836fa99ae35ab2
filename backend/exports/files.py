"""How an export leaves the server: a file written whole or not at all, or an HTTP stream.

Every export is a generator of text chunks read from one snapshot of SQLite (cursor
iteration, never a list of all rows). `write_export` writes such chunks to a temporary file
beside the target and renames it when complete; `stream_from` hands them to an HTTP response
over a read-only connection of their own.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from backend.exports.scope import ExportError
from backend.platform.files import write_atomic
from backend.platform.storage import connect

BOM = "\ufeff"


def slug(text: str, limit: int = 40) -> str:
    """Text as part of a download's file name: ASCII, lower case, words joined by '-'
    ("Mevr. de Boer" -> "mevr-de-boer", "Zoë" -> "zoe"); '' when nothing of it is left."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join(re.findall(r"[a-z0-9]+", plain))[:limit].strip("-")


def spreadsheet_writer(sink: Sink, dutch: bool) -> Any:
    """The csv.writer of every CSV download: CRLF lines; for Dutch Excel (`dutch`) a BOM
    first and `;` between fields (its list separator), else `,`."""
    if dutch:
        sink.write(BOM)
    return csv.writer(sink, delimiter=";" if dutch else ",", lineterminator="\r\n")


class Sink:
    """A write-only text buffer for csv.writer that hands out what was written."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.write = self.parts.append

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def write_export(path: str | Path, chunks: Iterable[str]) -> int:
    """Write text chunks to `path` atomically (temporary file, fsync, rename); return bytes.

    On any error the temporary file is removed and an existing file at `path` is untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"the folder {folder} does not exist")
    return write_atomic(path, chunks, mode=0o600)  # health data: the exporting user only


def stream_from(db_path: str | Path, make: Callable[[sqlite3.Connection], Iterator[str]]) -> Iterator[bytes]:
    """An export for an HTTP stream, over a read-only connection of its own, as UTF-8 bytes.

    `make(conn)` runs now, so a bad request raises ExportError before any byte is sent.
    Its own connection because a stream is read in worker threads and holds a read
    transaction, while the shared per-thread readers serve other requests meanwhile.
    The connection closes when the stream ends or is abandoned.
    """
    conn = connect(db_path, readonly=True)
    try:
        chunks = make(conn)
    except BaseException:
        conn.close()
        raise

    def gen() -> Iterator[bytes]:
        try:
            for chunk in chunks:
                yield chunk.encode("utf-8")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # ends the export's read transaction before the connection
            conn.close()

    return gen()


def read_transaction(conn: sqlite3.Connection) -> Callable[[], None]:
    """Open a read transaction (one consistent snapshot) if none is open; return its closer."""
    if conn.in_transaction:
        return lambda: None
    conn.execute("BEGIN")

    def close() -> None:
        if conn.in_transaction:
            conn.execute("COMMIT")

    return close


def number_text(value: float) -> str:
    """A number as the exports write it: 6 not 6.0, 6.5 as 6.5 (the shortest exact repr)."""
    return str(int(value)) if value.is_integer() else repr(value)
