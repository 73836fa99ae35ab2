"""The message catalogue: every text the server says to a person about a refusal, in Dutch and English.

A message is a key with a Dutch and an English text; `{name}` parameters are filled in by
`text(key, lang, name=...)`. The language is picked in one place, `pick`: the patient's own
language for patient requests, else the request's Accept-Language, Dutch by default
(contract.md v2, "Errors").

Code that refuses something raises `Refusal(key, status, **params)` (or a subclass such as
`EnrolmentError`); the web layer renders it in the language of the request. Field problems
are `Problem(field, key, params)` and render as `{"field", "error", "code"}` in `extra`.
The texts are in `catalogue.py`: add keys there rather than writing texts elsewhere. A first
argument that is not a key is shown as written (untranslated): that keeps older call sites
working until they get a key.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from backend.platform.catalogue import MESSAGES

LANGUAGES = ("nl", "en")
DEFAULT = "nl"
# An answer that lists 150 000 problems helps nobody and costs megabytes (review L8).
MAX_PROBLEMS = 20


class Problem(NamedTuple):
    """One field that is wrong: its name, the message key saying why, and the key's parameters."""

    field: str
    key: str
    params: dict[str, Any] = {}


def text(key: str, lang: str = DEFAULT, /, **params: Any) -> str:
    """The message `key` in `lang` (Dutch when the language is unknown), parameters filled in."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key.format(**params) if params else key
    return entry.get(lang, entry[DEFAULT]).format(**params)


def pick(patient_language: str | None = None, accept_language: str | None = None) -> str:
    """The one rule for the language of an answer: the patient's, else Accept-Language, else Dutch."""
    if patient_language in LANGUAGES:
        return patient_language
    best, best_q = DEFAULT, 0.0
    for part in (accept_language or "")[:200].split(","):
        tag, _, q = part.strip().partition(";q=")
        lang = tag.split("-")[0].strip().lower()
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if lang in LANGUAGES and weight > best_q:
            best, best_q = lang, weight
    return best


def problems_out(problems: list[Problem], lang: str) -> list[dict[str, str]]:
    """Problems as `extra` shows them (at most MAX_PROBLEMS; the detail gives the count)."""
    return [
        {"field": p.field, "error": text(p.key, lang, **p.params), "code": p.key}
        for p in problems[:MAX_PROBLEMS]
    ]


def problems_detail(problems: list[Problem], lang: str) -> str:
    """One line for a list of problems: the first, and how many more."""
    first = problems[0]
    error = text(first.key, lang, **first.params)
    if len(problems) == 1:
        return text("body.invalid", lang, field=first.field, error=error)
    return text("body.invalid_more", lang, field=first.field, error=error, more=len(problems) - 1)


_TYPE = re.compile(r"Expected `([^`]+)`, got `([^`]+)`")
_BOUND = re.compile(r"Expected `[^`]+` (of length )?(>=|<=|<|>) (-?\d+)")
_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")
_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_TYPES = {
    "int": "type.int",
    "float": "type.float",
    "str": "type.str",
    "bool": "type.bool",
    "null": "type.null",
    "object": "type.object",
    "array": "type.array",
}


def _type_name(name: str, lang: str) -> str:
    names = [text(_TYPES[n], lang) if n in _TYPES else n for n in name.split(" | ")]
    return " of ".join(names) if lang == "nl" else " or ".join(names)


def from_validation(message: str, field: str | None = None, lang: str = DEFAULT) -> Problem:
    """One of msgspec's validation messages ("Expected `int`, got `str` - at `$.version`") as a
    Problem in words; `field` is where Litestar says it was, when the message does not."""
    at = _AT.search(message)
    if at:
        field, message = at.group(1) or field, message[: at.start()]
    field = field or "body"
    if m := _MISSING.fullmatch(message):
        return Problem(
            f"{field}.{m.group(1)}" if field not in ("body", "data") else m.group(1), "field.missing"
        )
    if m := _UNKNOWN.fullmatch(message):
        return Problem(
            f"{field}.{m.group(1)}" if field not in ("body", "data") else m.group(1), "field.unknown"
        )
    if m := _TYPE.fullmatch(message):
        return Problem(
            field,
            "field.type",
            {"expected": _type_name(m.group(1), lang), "got": _type_name(m.group(2), lang)},
        )
    if m := _BOUND.fullmatch(message):
        return Problem(field, "field.bound", {"bound": f"{m.group(2)} {m.group(3)}"})
    return Problem(field, "field.invalid", {"why": message[:200]})


class Refusal(Exception):
    """A request refused for a reason a person can act on: a status, a message key, its parameters.

    `str()` is the Dutch text (the clinic's language, and what logs of the CLI show).
    """

    def __init__(
        self,
        key: str,
        status: int = 422,
        /,
        *,
        problems: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ):
        self.key = key
        self.status = status
        self.params = params
        self.problems = problems or []
        self.headers = headers
        super().__init__(self.detail(DEFAULT))

    def detail(self, lang: str) -> str:
        if self.problems and self.key == "body.invalid":
            return problems_detail(self.problems, lang)
        return text(self.key, lang, **self.params)

    def extra(self, lang: str) -> list[dict[str, str]] | None:
        return problems_out(self.problems, lang) if self.problems else None
