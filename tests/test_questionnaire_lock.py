"""questionnaires.lock: a published questionnaire version never changes silently."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.diary.definitions import DefinitionError
from backend.diary.lock import LOCK_FILE, definition_checksum, read_lock
from backend.diary.questionnaires import definition_files, load_library, lock_new_files

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "questionnaires"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped definitions and their lock (pathway files are not ours)."""
    target = tmp_path / "questionnaires"
    target.mkdir()
    for path in definition_files(FOLDER):
        shutil.copy(path, target / path.name)
    shutil.copy(FOLDER / LOCK_FILE, target / LOCK_FILE)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_lock_covers_every_definition_unchanged() -> None:
    lock = read_lock(FOLDER)
    assert lock is not None
    names = {p.name for p in definition_files(FOLDER)}
    assert set(lock.files) == names
    for name in names:
        assert lock.files[name].sha256 == definition_checksum(FOLDER / name), name
    load_library(FOLDER)  # the server's start-up check passes


def test_editing_a_published_file_stops_start_up_naming_the_file(folder: Path) -> None:
    edit(folder / "phq9.toml", "Weinig eetlust", "Geen eetlust")
    with pytest.raises(DefinitionError) as err:
        load_library(folder)
    assert str(err.value) == (
        "phq9.toml changed but its version did not: publish a new version (phq9.v2.toml) instead"
    )


def test_bumping_the_version_inside_a_published_file_is_refused(folder: Path) -> None:
    edit(folder / "peg.toml", "version = 1", "version = 2")
    with pytest.raises(DefinitionError, match=r"peg\.toml was published as peg version 1"):
        load_library(folder)


def test_a_new_version_file_is_locked_and_the_old_version_stays_loadable(folder: Path) -> None:
    text = (folder / "phq9.toml").read_text(encoding="utf-8")
    v2 = text.replace("version = 1", "version = 2", 1).replace("Weinig eetlust", "Geen eetlust")
    (folder / "phq9.v2.toml").write_text(v2, encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"phq9\.v2\.toml is not in questionnaires\.lock"):
        load_library(folder)
    before = json.loads((folder / LOCK_FILE).read_text())
    added, problems = lock_new_files(folder)
    assert (added, problems) == (["phq9.v2.toml"], [])
    after = json.loads((folder / LOCK_FILE).read_text())
    assert {k: v for k, v in after["files"].items() if k != "phq9.v2.toml"} == before["files"]
    library = load_library(folder)
    assert library.get("phq9").version == 2
    old = library.get("phq9", 1)
    assert old is not None and old.item("phq9_5").text["nl"].startswith("Weinig eetlust")
    assert library.get("phq9", 2).item("phq9_5").text["nl"].startswith("Geen eetlust")


def test_the_lock_command_refuses_to_change_an_existing_entry(folder: Path) -> None:
    edit(folder / "gad7.toml", "Moeite om te ontspannen", "Moeite met ontspannen")
    lock_bytes = (folder / LOCK_FILE).read_bytes()
    added, problems = lock_new_files(folder)
    assert added == []
    assert problems == [
        "gad7.toml changed but its version did not: publish a new version (gad7.v2.toml) instead"
    ]
    assert (folder / LOCK_FILE).read_bytes() == lock_bytes


def test_a_published_file_may_not_disappear(folder: Path) -> None:
    (folder / "odi.toml").unlink()
    with pytest.raises(DefinitionError, match=r"odi\.toml \(odi version 1\) is published"):
        load_library(folder)


def test_the_file_name_version_must_match_the_file(folder: Path) -> None:
    text = (folder / "pgic.toml").read_text(encoding="utf-8")
    (folder / "pgic.v3.toml").write_text(text.replace("version = 1", "version = 2", 1))
    with pytest.raises(DefinitionError, match=r"pgic\.v3\.toml: the file name says version 3"):
        load_library(folder, verify_lock=False)


def test_a_missing_lock_is_an_error_until_the_files_are_locked(folder: Path) -> None:
    (folder / LOCK_FILE).unlink()
    with pytest.raises(DefinitionError, match="questionnaires.lock is missing"):
        load_library(folder)
    added, problems = lock_new_files(folder)
    assert problems == [] and "diary.toml" in added
    load_library(folder)


def test_a_broken_definition_is_never_locked(folder: Path) -> None:
    (folder / "broken.toml").write_text('id = "broken"\nversion = 1\nitems = []\n')
    lock_bytes = (folder / LOCK_FILE).read_bytes()
    with pytest.raises(DefinitionError, match="broken.toml"):
        lock_new_files(folder)
    assert (folder / LOCK_FILE).read_bytes() == lock_bytes


def test_windows_line_endings_do_not_count_as_a_change(folder: Path) -> None:
    path = folder / "esas.toml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    load_library(folder)


def test_the_lock_command_line(folder: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.diary.questionnaires", *args, str(folder)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = run("check")
    assert ok.returncode == 0 and "match questionnaires.lock" in ok.stdout
    edit(folder / "dn4.toml", "version = 1", "version = 1 # edited")
    refused = run("lock")
    assert refused.returncode == 1
    assert "dn4.toml changed but its version did not" in refused.stdout
