"""The questionnaire definition format of `questionnaires/*.toml`: items (what is asked, what an
answer may be) and scores (how the answers add up, with interpretation bands).

A definition is data: msgspec decodes each file into these Structs; what msgspec cannot check
is checked on loading (backend/diary/questionnaires.py), naming the file and the field.
"""

from __future__ import annotations

from typing import Literal

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
    # "answered": how many of its items were answered (what a score over the answered items
    # counted, e.g. ODI sections).
    method: Literal["sum", "mean", "percent", "function", "answered"]
    items: list[str] = []
    # For "function": the name of a scoring function of backend/diary/scoring.py (FUNCTIONS).
    function: str | None = None
    # How many items must be answered for a score; default: all of them.
    min_answered: int | None = None
    # A response whose answers do not allow this score is refused (ODI: fewer than 9 sections),
    # rather than stored without it.
    required: bool = False
    decimals: int = 1
    min: float | None = None
    max: float | None = None
    # Direction of concern: "higher" means a higher score is worse.
    worse: Literal["higher", "lower"] = "higher"
    # Minimal important change, in score points.
    mic: float | None = None
    bands: list[Band] = []
    loinc: str | None = None


class Questionnaire(msgspec.Struct, forbid_unknown_fields=True, dict=True):
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
    # The project-wide URL of this instrument: FHIR derivedFrom (the canonical is on the serving
    # instance, see fhir_questionnaire.canonical_url).
    url: str | None = None

    def item(self, item_id: str) -> Item | None:
        return self._items_by_id().get(item_id)

    def _items_by_id(self) -> dict[str, Item]:
        # Built once per definition (dict=True gives the Struct a __dict__ for the cache);
        # definitions are not changed after loading.
        cached = self.__dict__.get("_by_id")
        if cached is None:
            cached = self.__dict__["_by_id"] = {i.id: i for i in self.items}
        return cached
