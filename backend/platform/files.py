"""Files written whole or not at all: the one atomic writer (exports, backups, restores,
the VAPID keys, Litestream's configuration).

The content goes to a temporary file beside the target, is flushed to disk, gets its mode,
and is then renamed into place (or linked, when an existing file must win), and the folder
is flushed so the rename survives a power cut. On any error the temporary file is removed
and an existing file at the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, mode: int = 0o600, exclusive: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` to write to; when the block ends without an error it
    becomes `path`, with `mode` (health data and keys: the server's user only, 0600).

    `exclusive`: never overwrite; FileExistsError if `path` exists by then (someone else
    made it meanwhile, e.g. another process's key). SQLite's -wal, -shm and -journal files
    of the temporary path are removed too (a database built there).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    try:
        yield tmp
        _fsync(tmp, os.O_RDONLY)
        os.chmod(tmp, mode)  # whatever the umask made of it
        if exclusive:
            os.link(tmp, target)  # fails if the target exists, unlike a rename
        else:
            os.replace(tmp, target)
        _fsync(target.parent, os.O_RDONLY)
    finally:
        for leftover in (tmp, *(tmp.with_name(f"{tmp.name}-{end}") for end in ("wal", "shm", "journal"))):
            leftover.unlink(missing_ok=True)


def write_atomic(
    path: str | Path, content: str | bytes | Iterable[str], *, mode: int = 0o600, exclusive: bool = False
) -> int:
    """Write text (UTF-8, newlines as given), bytes or text chunks to `path` atomically;
    return the characters (or bytes) written. `mode`, `exclusive`: as `atomic_path`."""
    written = 0
    with atomic_path(path, mode=mode, exclusive=exclusive) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        if isinstance(content, bytes):
            with os.fdopen(fd, "wb") as fb:
                written = fb.write(content)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                for chunk in [content] if isinstance(content, str) else content:
                    written += fh.write(chunk)
    return written
