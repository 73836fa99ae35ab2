"""Questionnaires: the library of every definition the server knows, loaded from
`questionnaires/*.toml` and checked, and the check of a patient's answers against one.

The format is backend/diary/definitions.py, the scores backend/diary/scoring.py, the lock of
published versions backend/diary/lock.py. `python -m backend.diary.questionnaires lock|check`
publishes new definition files or verifies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from backend.diary import lock, scoring
from backend.diary.definitions import LANGUAGES, DefinitionError, Item, Questionnaire, Text

# band_for: detection.py still imports it from here; it lives in scoring.py.
from backend.diary.scoring import band_for, score_value  # noqa: F401
from backend.platform import messages


class AnswerError(msgspec.Struct):
    """Why one item's answer does not fit: a message key of backend.platform.messages and its parameters."""

    item: str
    key: str
    params: dict[str, Any] = {}

    def text(self, lang: str = messages.DEFAULT) -> str:
        return messages.text(self.key, lang, **self.params)


# -- loading ------------------------------------------------------------------------------
def _check_text(text: Text | None, where: str) -> None:
    if text is None:
        return
    missing = [lang for lang in LANGUAGES if not text.get(lang)]
    if missing:
        raise DefinitionError(f"{where}: text missing for language(s) {', '.join(missing)}")


def check_definition(q: Questionnaire, where: str) -> None:
    """What msgspec cannot check: unique ids, ranges, options, texts in both languages."""
    if q.version < 1:
        raise DefinitionError(f"{where}: version must be 1 or more")
    _check_text(q.title, f"{where}: title")
    seen: set[str] = set()
    for n, item in enumerate(q.items):
        at = f"{where}: items[{n}] ({item.id})"
        if item.id in seen:
            raise DefinitionError(f"{at}: duplicate item id")
        seen.add(item.id)
        _check_text(item.text, f"{at}.text")
        if item.type in ("scale", "number", "count") and (
            item.min is None or item.max is None or item.min >= item.max
        ):
            raise DefinitionError(f"{at}: a {item.type} item needs min < max")
        if item.type in ("scale", "count") and (
            item.min != int(item.min) or item.max != int(item.max)  # type: ignore[arg-type]
        ):
            raise DefinitionError(f"{at}: a {item.type} item has whole-number min and max")
        if item.type == "choice":
            if not item.options:
                raise DefinitionError(f"{at}: a choice item needs options")
            values = [o.value for o in item.options]
            if len(set(values)) != len(values):
                raise DefinitionError(f"{at}: option values repeat")
            for o in item.options:
                _check_text(o.text, f"{at}.options[{o.value}]")
    score_ids: set[str] = set()
    for n, score in enumerate(q.scores):
        at = f"{where}: scores[{n}] ({score.id})"
        # Scores and answers end up side by side in exports and FHIR linkIds: one namespace.
        if score.id in seen or score.id in score_ids:
            raise DefinitionError(f"{at}: score id repeats an item or score id")
        score_ids.add(score.id)
        _check_text(score.label, f"{at}.label")
        for band in score.bands:
            _check_text(band.label, f"{at}.bands")
        for item_id in score.items:
            if item_id not in seen:
                raise DefinitionError(f"{at}: unknown item {item_id!r}")
        if score.method == "function":
            if not score.function:
                raise DefinitionError(f"{at}: method 'function' needs a function name")
            if score.function not in scoring.FUNCTIONS:
                raise DefinitionError(f"{at}: no scoring function named {score.function!r}")


def load_file(path: Path) -> Questionnaire:
    try:
        q = msgspec.toml.decode(path.read_bytes(), type=Questionnaire)
    except msgspec.ValidationError as exc:
        raise DefinitionError(f"{path.name}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DefinitionError(f"{path.name}: not valid TOML: {exc}") from None
    check_definition(q, path.name)
    return q


def definition_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.toml") if not p.name.startswith("pathway-"))


class Library(msgspec.Struct):
    """Every questionnaire definition known to the server, by id and by (id, version)."""

    by_version: dict[tuple[str, int], Questionnaire]
    latest: dict[str, Questionnaire]
    # Licensed definitions whose text the clinic has not supplied: their files hold
    # placeholders, so they are never scheduled, served to a patient, or accepted from one.
    without_text: frozenset[tuple[str, int]] = frozenset()

    def get(self, qid: str, version: int | None = None) -> Questionnaire | None:
        if version is None:
            return self.latest.get(qid)
        return self.by_version.get((qid, version))

    def servable(self, qid: str, version: int | None = None) -> bool:
        """May a patient be asked this questionnaire (default: its latest version)?"""
        q = self.get(qid, version)
        return q is not None and (q.id, q.version) not in self.without_text

    def lacking_text(self) -> list[Questionnaire]:
        """The latest versions that wait for their licensed text, by id."""
        return [q for qid, q in sorted(self.latest.items()) if not self.servable(qid)]


def load_library(
    folder: str | Path, *, verify_lock: bool = True, licensed_dir: str | Path | None = None
) -> Library:
    """Load and check every definition; the file name is `<id>.toml` or `<id>.v<N>.toml`.

    With `verify_lock` (the default, and what the server does at start-up) every file must be
    recorded unchanged in `questionnaires.lock`: a published version never changes silently.
    `licensed_dir` (PIJNWACHT_LICENSED_DIR) holds the clinic's licensed texts: see
    `licensed_text`. A licensed definition without its text there is in `without_text`.
    """
    folder = Path(folder)
    by_version: dict[tuple[str, int], Questionnaire] = {}
    by_file: dict[str, Questionnaire] = {}
    for path in definition_files(folder):
        q = load_file(path)
        stem = path.name.removesuffix(".toml")
        base, _, suffix = stem.partition(".v")
        if base != q.id:
            raise DefinitionError(f"{path.name}: id {q.id!r} does not match the file name")
        if suffix and suffix != str(q.version):
            raise DefinitionError(f"{path.name}: the file name says version {suffix}, the file {q.version}")
        key = (q.id, q.version)
        if key in by_version:
            raise DefinitionError(f"{path.name}: {q.id} version {q.version} is defined twice")
        by_version[key] = q
        by_file[path.name] = q
    if verify_lock:
        lock.check_lock(folder, by_file)
    without_text: set[tuple[str, int]] = set()
    for name, q in by_file.items():
        if q.licence != "licensed":
            continue
        supplied = licensed_text(q, Path(licensed_dir) / name) if licensed_dir else None
        if supplied is None:
            without_text.add((q.id, q.version))
        else:
            by_version[(q.id, q.version)] = supplied
    latest: dict[str, Questionnaire] = {}
    for (qid, _version), q in sorted(by_version.items()):
        latest[qid] = q
    if "diary" not in latest:
        raise DefinitionError(f"{folder}: the daily diary (diary.toml) is missing")
    return Library(by_version=by_version, latest=latest, without_text=frozenset(without_text))


# -- licensed texts, supplied by the clinic -------------------------------------------------
PLACEHOLDER_MARKS = ("[Tekst onder licentie", "[Licensed text")


def _texts(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every {nl, en} text of a definition (as builtins), with where it sits."""
    if isinstance(value, dict):
        if value and set(value) <= set(LANGUAGES) and all(isinstance(v, str) for v in value.values()):
            return [(path, value)]
        return [t for k, v in value.items() for t in _texts(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [t for n, v in enumerate(value) for t in _texts(v, f"{path}[{n}]")]
    return []


def _structure(value: Any) -> Any:
    """The definition with every text and note blanked: what answers and scores depend on."""
    if isinstance(value, dict):
        if value and set(value) <= set(LANGUAGES) and all(isinstance(v, str) for v in value.values()):
            return "<text>"
        return {k: _structure(v) for k, v in value.items() if k not in ("licence_note", "source")}
    if isinstance(value, list):
        return [_structure(v) for v in value]
    return value


def licensed_text(template: Questionnaire, path: Path) -> Questionnaire | None:
    """The clinic's licensed version of `template` from `path`, or None when there is no file.

    The file is the template with the real texts: same id, version, items, answer values
    and scores, only the texts differ (so stored answers keep their meaning and the locked
    published version does not change); any other difference, or a placeholder left in,
    stops the start-up with the file and field named.
    """
    if not path.is_file():
        return None
    where = str(path)
    try:
        supplied = load_file(path)
    except DefinitionError as exc:
        # Named with its folder: the template of the same name is fine.
        raise DefinitionError(f"{path.parent}/{exc}") from None
    if (supplied.id, supplied.version) != (template.id, template.version):
        raise DefinitionError(
            f"{where}: holds {supplied.id} version {supplied.version}, expected {template.id} "
            f"version {template.version} (the file name says which definition it gives the text of)"
        )
    mine, theirs = msgspec.to_builtins(template), msgspec.to_builtins(supplied)
    if _structure(mine) != _structure(theirs):
        diff = next(
            (
                k
                for k in sorted(set(mine) | set(theirs))
                if _structure(mine.get(k)) != _structure(theirs.get(k))
            ),
            "?",
        )
        raise DefinitionError(
            f"{where}: {diff}: differs from {template.id}.toml beyond its texts; copy the template"
            " and change only the texts (item ids, types, answer values and scores stay)"
        )
    for at, text in _texts(theirs):
        for lang, value in text.items():
            if value.startswith(PLACEHOLDER_MARKS):
                raise DefinitionError(f"{where}: {at}.{lang}: still the placeholder text")
    return supplied


def lock_new_files(folder: str | Path) -> tuple[list[str], list[str]]:
    """Add every definition file not yet in the lock; never change an entry that is there.

    Returns (added file names, problems that stop the lock from being written). Every file
    is loaded and checked first, so a broken definition is never published.
    """
    folder = Path(folder)
    load_library(folder, verify_lock=False)
    by_file = {p.name: load_file(p) for p in definition_files(folder)}
    return lock.add_new(folder, lock.read_lock(folder) or lock.Lock(), by_file)


def main(argv: list[str] | None = None) -> int:
    """`python -m backend.diary.questionnaires lock|check [FOLDER]`: publish new files, or verify."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m backend.diary.questionnaires")
    parser.add_argument("command", choices=["lock", "check"])
    parser.add_argument("folder", nargs="?", default="questionnaires")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            library = load_library(args.folder)
            print(f"{len(library.by_version)} definitions match {lock.LOCK_FILE}")
            return 0
        added, problems = lock_new_files(args.folder)
    except DefinitionError as exc:
        print(f"error: {exc}")
        return 1
    for msg in problems:
        print(f"error: {msg}")
    if problems:
        return 1
    for name in added:
        print(f"locked {name}")
    if not added:
        print(f"nothing new to lock; {lock.LOCK_FILE} unchanged")
    return 0


# -- answers ------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_answers(q: Questionnaire, answers: Mapping[str, Any]) -> list[AnswerError]:
    """Every reason the answers do not fit the definition, one per item (empty: all good)."""
    errors: list[AnswerError] = []
    items = q._items_by_id()
    for key in answers:
        if key not in items:
            errors.append(AnswerError(key, "answer.unknown_item", {"questionnaire": q.id, "item": repr(key)}))
    accepted = _accepted_values(q)
    for item in q.items:
        value = answers.get(item.id)
        if value is None:
            if item.required:
                errors.append(AnswerError(item.id, "answer.required"))
            continue
        if type(value) in _NUMBERS and value in accepted[item.id]:
            continue  # one of the item's answers (found as `_check_value` takes them)
        why = _check_value(item, value)
        if why:
            errors.append(AnswerError(item.id, *why))
    if not errors:
        errors += _unscored(q, answers)
    return errors


def _unscored(q: Questionnaire, answers: Mapping[str, Any]) -> list[AnswerError]:
    """A required score the answers do not allow, named at its first unanswered item."""
    errors = []
    for score in q.scores:
        if score.required and score_value(q, score, answers) is None:
            missing = [i for i in score.items if answers.get(i) is None]
            answered = len(score.items) - len(missing)
            needed = score.min_answered or len(score.items)
            params = {
                # Scored instruments go by one name in both languages (ODI, BPI, PHQ-9).
                "name": (q.short_title or q.title)["nl"],
                "needed": needed,
                "total": len(score.items),
                "answered": answered,
                "more": needed - answered,
            }
            errors.append(AnswerError(missing[0] if missing else score.id, "answer.too_few_scored", params))
    return errors


# A JSON number as msgspec decodes it (a bool is not one: True == 1 would pass a set lookup).
_NUMBERS = (int, float)
# An item with at most this many answers on its grid has them listed (`_accepted_values`).
ACCEPTED_LISTED = 1001


def _accepted_values(q: Questionnaire) -> dict[str, frozenset[float]]:
    """Per item, the answers on its grid that `_check_value` takes (a choice's options, a
    scale's whole numbers, a number's steps from its minimum; empty: none listed), so the
    common answer is one set lookup. Built once per definition from `_check_value` itself:
    a value not listed (0.3 on a 0.1 grid is not 3 × 0.1 in floating point) is checked in full."""
    cached = q.__dict__.get("_accepted")
    if cached is None:
        cached = q.__dict__["_accepted"] = {item.id: _grid(item) for item in q.items}
    return cached


def _grid(item: Item) -> frozenset[float]:
    if item.type == "choice":
        candidates = [o.value for o in item.options or []]
    elif item.type == "text" or item.min is None or item.max is None:
        return frozenset()
    else:
        step = 1.0 if item.type in ("scale", "count") else item.step
        if not step or step <= 0 or (item.max - item.min) / step >= ACCEPTED_LISTED:
            return frozenset()
        candidates = [item.min + k * step for k in range(int((item.max - item.min) / step) + 1)]
    return frozenset(v for v in candidates if type(v) in _NUMBERS and _check_value(item, v) is None)


def _check_value(item: Item, value: Any) -> tuple[str, dict[str, Any]] | None:
    if item.type == "text":
        if not isinstance(value, str):
            return "answer.text", {}
        if len(value) > item.max_length:
            return "answer.max_length", {"max": item.max_length}
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "answer.number", {}
    if isinstance(value, float) and not math.isfinite(value):
        return "answer.finite", {}
    if item.type == "choice":
        allowed = [o.value for o in item.options or []]
        if value not in allowed:
            return "answer.one_of", {"allowed": ", ".join(map(str, allowed))}
        return None
    lo, hi = item.min, item.max
    assert lo is not None and hi is not None
    if item.type in ("scale", "count") and value != int(value):
        return "answer.whole", {}
    if not lo <= value <= hi:
        return "answer.between", {"lo": _fmt(lo), "hi": _fmt(hi)}
    if item.step and not math.isclose((value - lo) / item.step, round((value - lo) / item.step)):
        return "answer.step", {"step": _fmt(item.step)}
    return None


def safety_items(q: Questionnaire, answers: Mapping[str, Any]) -> list[str]:
    """The items whose answers are a safety signal (e.g. PHQ-9 item 9 above 0)."""
    hits = []
    for item in q.items:
        value = answers.get(item.id)
        if item.safety is not None and isinstance(value, int | float) and value > item.safety.above:
            hits.append(item.id)
    return hits


if __name__ == "__main__":
    raise SystemExit(main())
