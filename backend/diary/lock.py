"""questionnaires.lock: published questionnaire versions do not change.

The lock holds the checksum of every published definition file; the server refuses to start
when a file differs from it (a changed text would silently change what stored answers mean).
`python -m backend.diary.questionnaires lock` adds new files; it never changes an entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import msgspec

from backend.diary.definitions import DefinitionError, Questionnaire

LOCK_FILE = "questionnaires.lock"
LOCK_COMMAND = "python -m backend.diary.questionnaires lock"


class LockEntry(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    version: int
    sha256: str


class Lock(msgspec.Struct, forbid_unknown_fields=True):
    """questionnaires.lock: the checksum of every published definition file, by file name."""

    files: dict[str, LockEntry] = {}
    note: str = (
        "Checksums of published questionnaire definitions. Never edit a published file: "
        f"publish <id>.v<N>.toml and run `{LOCK_COMMAND}` (it adds new files only)."
    )


def definition_checksum(path: Path) -> str:
    """sha256 of a definition file, with line endings normalised (a CRLF checkout still matches)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def read_lock(folder: str | Path) -> Lock | None:
    """The folder's lock, or None when there is none."""
    path = Path(folder) / LOCK_FILE
    if not path.exists():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=Lock)
    except msgspec.DecodeError as exc:
        raise DefinitionError(f"{LOCK_FILE}: not a valid lock file: {exc}") from None


def write_lock(folder: str | Path, lock: Lock) -> None:
    data = msgspec.json.format(msgspec.json.encode(lock), indent=2)
    (Path(folder) / LOCK_FILE).write_bytes(data + b"\n")


def _next_version_file(qid: str, versions: set[int]) -> str:
    return f"{qid}.v{max(versions, default=1) + 1}.toml"


def _compare_with_lock(
    folder: Path, lock: Lock, by_file: Mapping[str, Questionnaire]
) -> tuple[list[str], list[str]]:
    """(files not yet in the lock, problems with published files), one message per problem."""
    versions: dict[str, set[int]] = {}
    for entry in lock.files.values():
        versions.setdefault(entry.id, set()).add(entry.version)
    for q in by_file.values():
        versions.setdefault(q.id, set()).add(q.version)
    unlocked, problems = [], []
    for name, q in sorted(by_file.items()):
        entry = lock.files.get(name)
        if entry is None:
            unlocked.append(name)
        elif definition_checksum(folder / name) == entry.sha256:
            continue
        elif (entry.id, entry.version) == (q.id, q.version):
            problems.append(
                f"{name} changed but its version did not: publish a new version "
                f"({_next_version_file(q.id, versions[q.id])}) instead"
            )
        else:
            problems.append(
                f"{name} was published as {entry.id} version {entry.version} and has changed: "
                f"restore it and publish the new version as its own file "
                f"({_next_version_file(q.id, versions[q.id])})"
            )
    for name, entry in sorted(lock.files.items()):
        if name not in by_file:
            problems.append(
                f"{name} ({entry.id} version {entry.version}) is published in {LOCK_FILE} but "
                "missing: published versions stay, so stored responses keep their meaning"
            )
    return unlocked, problems


def lock_problems(folder: str | Path, by_file: Mapping[str, Questionnaire]) -> list[str]:
    """Every way the definition files differ from the lock, one message per file."""
    folder = Path(folder)
    lock = read_lock(folder)
    if lock is None:
        return [f"{LOCK_FILE} is missing in {folder}: run `{LOCK_COMMAND}` to publish the files"]
    unlocked, problems = _compare_with_lock(folder, lock, by_file)
    return problems + [
        f"{name} is not in {LOCK_FILE}: run `{LOCK_COMMAND}` to publish it" for name in unlocked
    ]


def check_lock(folder: str | Path, by_file: Mapping[str, Questionnaire]) -> None:
    """Fail, naming each file, when a definition file does not match questionnaires.lock."""
    problems = lock_problems(folder, by_file)
    if problems:
        raise DefinitionError("; ".join(problems))


def add_new(folder: Path, lock: Lock, by_file: Mapping[str, Questionnaire]) -> tuple[list[str], list[str]]:
    """Add the files of `by_file` not yet in `lock` (and write it); never change an entry.

    Returns (added file names, problems that stop the lock from being written)."""
    unlocked, problems = _compare_with_lock(folder, lock, by_file)
    if problems:
        return [], problems
    for name in unlocked:
        q = by_file[name]
        lock.files[name] = LockEntry(id=q.id, version=q.version, sha256=definition_checksum(folder / name))
    lock.files = dict(sorted(lock.files.items()))
    if unlocked or not (folder / LOCK_FILE).exists():
        write_lock(folder, lock)
    return unlocked, []
