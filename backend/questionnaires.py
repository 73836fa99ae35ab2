"""Questionnaires: the definition format of `questionnaires/*.toml`, loading, answer checks, scores.

A definition is data: items (what is asked, what an answer may be) and scores (how the
answers add up, with interpretation bands). Loading decodes each file with msgspec into
these Structs and checks what msgspec cannot; any problem names the file and the field.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

Text = dict[str, str]  # {"nl": ..., "en": ...}
LANGUAGES = ("nl", "en")


class DefinitionError(Exception):
    """A questionnaire or pathway file is not valid; the message names file and field."""


class Option(msgspec.Struct, forbid_unknown_fields=True):
    value: int
    text: Text


class Safety(msgspec.Struct, forbid_unknown_fields=True):
    """An answer above `above` is a safety signal: crisis contacts at once, urgent alert."""

    above: float = 0


class Item(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    type: Literal["scale", "number", "count", "choice", "text"]
    text: Text
    required: bool = True
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: Text | None = None
    min_label: Text | None = None
    max_label: Text | None = None
    options: list[Option] | None = None
    max_length: int = 2000
    help: Text | None = None
    safety: Safety | None = None
    # LOINC code of this item where one exists (FHIR export).
    loinc: str | None = None


class Band(msgspec.Struct, forbid_unknown_fields=True):
    """An interpretation band: min <= score <= max is `label`; `level` orders bands by concern."""

    min: float
    max: float
    label: Text
    level: int = 0


class Score(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    label: Text
    method: Literal["sum", "mean", "percent", "function"]
    items: list[str] = []
    # For "function": the name of a scoring function registered in SCORING_FUNCTIONS.
    function: str | None = None
    # How many items must be answered for a score; default: all of them.
    min_answered: int | None = None
    decimals: int = 1
    min: float | None = None
    max: float | None = None
    # Direction of concern: "higher" means a higher score is worse.
    worse: Literal["higher", "lower"] = "higher"
    # Minimal important change, in score points.
    mic: float | None = None
    bands: list[Band] = []
    loinc: str | None = None


class Questionnaire(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    version: int
    title: Text
    items: list[Item]
    kind: Literal["diary", "prom"] = "prom"
    short_title: Text | None = None
    intro: Text | None = None
    recall: Text | None = None
    # "open": full text may be shipped; "licensed": the clinic supplies the text (placeholder here).
    licence: Literal["open", "licensed"] = "open"
    licence_note: str | None = None
    source: str | None = None
    scores: list[Score] = []
    # Canonical URL for FHIR.
    url: str | None = None

    def item(self, item_id: str) -> Item | None:
        return self._items_by_id().get(item_id)

    def _items_by_id(self) -> dict[str, Item]:
        return {i.id: i for i in self.items}


class AnswerError(msgspec.Struct):
    item: str
    error: str


# -- scoring functions beyond sum/mean/percent (EQ-5D value sets, ...), by name ---------
ScoringFunction = Callable[[Questionnaire, Mapping[str, Any]], float | None]
SCORING_FUNCTIONS: dict[str, ScoringFunction] = {}


def scoring_function(name: str) -> Callable[[ScoringFunction], ScoringFunction]:
    def register(fn: ScoringFunction) -> ScoringFunction:
        SCORING_FUNCTIONS[name] = fn
        return fn

    return register


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
        if item.type in ("scale", "number", "count"):
            if item.min is None or item.max is None or item.min >= item.max:
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
    for n, score in enumerate(q.scores):
        at = f"{where}: scores[{n}] ({score.id})"
        for item_id in score.items:
            if item_id not in seen:
                raise DefinitionError(f"{at}: unknown item {item_id!r}")
        if score.method == "function":
            if not score.function:
                raise DefinitionError(f"{at}: method 'function' needs a function name")
            if score.function not in SCORING_FUNCTIONS:
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


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Library(msgspec.Struct):
    """Every questionnaire definition known to the server, by id and by (id, version)."""

    by_version: dict[tuple[str, int], Questionnaire]
    latest: dict[str, Questionnaire]

    def get(self, qid: str, version: int | None = None) -> Questionnaire | None:
        if version is None:
            return self.latest.get(qid)
        return self.by_version.get((qid, version))


def load_library(folder: str | Path) -> Library:
    """Load and check every definition; the file name is `<id>.toml` or `<id>.v<N>.toml`."""
    # Scoring functions live beside the definitions' logic; import registers them.
    from backend import scoring  # noqa: F401

    folder = Path(folder)
    by_version: dict[tuple[str, int], Questionnaire] = {}
    for path in definition_files(folder):
        q = load_file(path)
        stem = path.name.removesuffix(".toml")
        base = stem.split(".v")[0]
        if base != q.id:
            raise DefinitionError(f"{path.name}: id {q.id!r} does not match the file name")
        key = (q.id, q.version)
        if key in by_version:
            raise DefinitionError(f"{path.name}: {q.id} version {q.version} is defined twice")
        by_version[key] = q
    latest: dict[str, Questionnaire] = {}
    for (qid, _version), q in sorted(by_version.items()):
        latest[qid] = q
    if "diary" not in latest:
        raise DefinitionError(f"{folder}: the daily diary (diary.toml) is missing")
    return Library(by_version=by_version, latest=latest)


# -- answers ------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_answers(q: Questionnaire, answers: Mapping[str, Any]) -> list[AnswerError]:
    """Every reason the answers do not fit the definition, one per item (empty: all good)."""
    errors: list[AnswerError] = []
    items = q._items_by_id()
    for key in answers:
        if key not in items:
            errors.append(AnswerError(key, f"{q.id} has no item {key!r}"))
    for item in q.items:
        value = answers.get(item.id)
        if value is None:
            if item.required:
                errors.append(AnswerError(item.id, "an answer is required"))
            continue
        why = _check_value(item, value)
        if why:
            errors.append(AnswerError(item.id, why))
    return errors


def _check_value(item: Item, value: Any) -> str | None:
    if item.type == "text":
        if not isinstance(value, str):
            return "must be text"
        if len(value) > item.max_length:
            return f"must be at most {item.max_length} characters"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if item.type == "choice":
        allowed = [o.value for o in item.options or []]
        if value not in allowed:
            return f"must be one of {', '.join(map(str, allowed))}"
        return None
    lo, hi = item.min, item.max
    assert lo is not None and hi is not None
    if item.type in ("scale", "count") and value != int(value):
        return "must be a whole number"
    if not lo <= value <= hi:
        return f"must be between {_fmt(lo)} and {_fmt(hi)}"
    if item.step and not math.isclose((value - lo) / item.step, round((value - lo) / item.step)):
        return f"must be in steps of {_fmt(item.step)}"
    return None


def safety_items(q: Questionnaire, answers: Mapping[str, Any]) -> list[str]:
    """The items whose answers are a safety signal (e.g. PHQ-9 item 9 above 0)."""
    hits = []
    for item in q.items:
        value = answers.get(item.id)
        if item.safety is not None and isinstance(value, int | float) and value > item.safety.above:
            hits.append(item.id)
    return hits


# -- scores -------------------------------------------------------------------------------
def compute_scores(q: Questionnaire, answers: Mapping[str, Any]) -> dict[str, float]:
    """Every score of the definition that the answers allow (a score lacking answers is absent)."""
    out: dict[str, float] = {}
    for score in q.scores:
        value = score_value(q, score, answers)
        if value is not None:
            out[score.id] = round(value, score.decimals)
    return out


def score_value(q: Questionnaire, score: Score, answers: Mapping[str, Any]) -> float | None:
    if score.method == "function":
        assert score.function is not None
        return SCORING_FUNCTIONS[score.function](q, answers)
    values = [answers[i] for i in score.items if isinstance(answers.get(i), int | float)]
    needed = len(score.items) if score.min_answered is None else score.min_answered
    if not values or len(values) < needed:
        return None
    if score.method == "sum":
        # Prorated when some items may be missing, so the range stays comparable.
        total = sum(values)
        return total * len(score.items) / len(values) if len(values) < len(score.items) else total
    if score.method == "mean":
        return sum(values) / len(values)
    # percent: the sum as a percentage of the maximum possible over the answered items
    top = 0.0
    for i in score.items:
        if isinstance(answers.get(i), int | float):
            item = q.item(i)
            assert item is not None
            top += _item_max(item)
    return 100.0 * sum(values) / top if top else None


def _item_max(item: Item) -> float:
    if item.type == "choice":
        return max(o.value for o in item.options or [])
    return float(item.max or 0)


def band_for(score: Score, value: float) -> Band | None:
    for band in score.bands:
        if band.min <= value <= band.max:
            return band
    return None
