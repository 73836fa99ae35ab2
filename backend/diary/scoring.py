"""Scores: what a definition's `[[scores]]` make of the answers (sum, mean, percent, how many
answered, or a named function such as an EQ-5D value set), rounded as the manuals round, and
the interpretation band a score falls in.

A function is named in a definition as `method = "function"`, `function = "<name>"`; the
names are the keys of FUNCTIONS, at the end of this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from backend.diary.definitions import Band, Item, Questionnaire, Score
from backend.platform.formatting import round_half_up

ScoringFunction = Callable[[Questionnaire, Mapping[str, Any]], float | None]


def compute_scores(q: Questionnaire, answers: Mapping[str, Any]) -> dict[str, float]:
    """Every score of the definition that the answers allow (a score lacking answers is absent)."""
    out: dict[str, float] = {}
    for score in q.scores:
        value = score_value(q, score, answers)
        if value is not None:
            out[score.id] = round_half_up(value, score.decimals)
    return out


def score_value(q: Questionnaire, score: Score, answers: Mapping[str, Any]) -> float | None:
    if score.method == "function":
        assert score.function is not None
        return FUNCTIONS[score.function](q, answers)
    values = [answers[i] for i in score.items if isinstance(answers.get(i), int | float)]
    if score.method == "answered":
        return float(len(values))
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
            top += item_max(item)
    return 100.0 * sum(values) / top if top else None


def item_max(item: Item) -> float:
    if item.type == "choice":
        return max(o.value for o in item.options or [])
    return float(item.max or 0)


def band_for(score: Score, value: float) -> Band | None:
    for band in score.bands:
        if band.min <= value <= band.max:
            return band
    return None


# -- EQ-5D-5L, Dutch value set -------------------------------------------------------------
# Source: Versteegh MM, Vermeulen KM, Evers SMAA, de Wit GA, Prenger R, Stolk EA.
# Dutch Tariff for the Five-Level Version of EQ-5D. Value in Health 2016;19(4):343-352.
# doi:10.1016/j.jval.2016.01.003 (the published model, coefficients to three decimals).
#
#   index = 1 - constant - MO[l] - SC[l] - UA[l] - PD[l] - AD[l]
#   the constant (0.047) is subtracted for every state except 11111 (full health).
#
#   level:                     2      3      4      5
#   MO mobility            0.035  0.057  0.166  0.203
#   SC self-care           0.038  0.061  0.168  0.168
#   UA usual activities    0.039  0.087  0.192  0.192
#   PD pain/discomfort     0.066  0.092  0.360  0.415
#   AD anxiety/depression  0.070  0.145  0.356  0.421
#
# Range: 11111 = 1.000 ... 55555 = -0.446 (as published). The reference matched is R's eq5d
# package (eq5d5l(), the Dutch value set in its VT.csv: these same rounded coefficients):
# equal on all 3 125 states. The unrounded model behind EuroQol's value-set tables differs:
# 276 states by more than 0.001, at most 0.0018 (33333: 0.511 here, 0.5127 unrounded).
EQ5D5L_NL_CONSTANT = 0.047
EQ5D5L_NL_DECREMENTS: dict[str, tuple[float, float, float, float, float]] = {
    "eq5d_mobility": (0.0, 0.035, 0.057, 0.166, 0.203),
    "eq5d_selfcare": (0.0, 0.038, 0.061, 0.168, 0.168),
    "eq5d_activities": (0.0, 0.039, 0.087, 0.192, 0.192),
    "eq5d_pain": (0.0, 0.066, 0.092, 0.360, 0.415),
    "eq5d_anxiety": (0.0, 0.070, 0.145, 0.356, 0.421),
}


def eq5d5l_levels(answers: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The five EQ-5D-5L levels (1-5) in dimension order, or None when one is missing."""
    levels = []
    for dimension in EQ5D5L_NL_DECREMENTS:
        value = answers.get(dimension)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            return None
        if not 1 <= value <= 5:
            return None
        levels.append(int(value))
    return tuple(levels)


def eq5d5l_nl_index(levels: tuple[int, ...]) -> float:
    """The Dutch EQ-5D-5L index of a health state such as (1, 1, 1, 1, 2)."""
    if all(level == 1 for level in levels):
        return 1.0
    decrement = EQ5D5L_NL_CONSTANT + sum(
        table[level - 1] for table, level in zip(EQ5D5L_NL_DECREMENTS.values(), levels, strict=True)
    )
    # Rounded to the three decimals of the published coefficients; avoids 0.30000000000000004.
    return round_half_up(1.0 - decrement, 3)


def eq5d5l_nl(q: Questionnaire, answers: Mapping[str, Any]) -> float | None:
    """EQ-5D-5L index with the Dutch value set (Versteegh 2016); None if a dimension is missing."""
    levels = eq5d5l_levels(answers)
    return None if levels is None else eq5d5l_nl_index(levels)


# The scoring functions by the name a definition gives them.
FUNCTIONS: dict[str, ScoringFunction] = {"eq5d5l_nl": eq5d5l_nl}


def own_summary(rows: Iterable[tuple], library: Any) -> list[dict[str, Any]]:
    """The patient's own printable summary: each score of `rows` (diary.store.scored_of) with
    its label and band, oldest first."""
    out: list[dict[str, Any]] = []
    for local_date, qid, version, raw in rows:
        q = library.get(qid, version)
        values = msgspec.json.decode(raw) if isinstance(raw, str | bytes) else raw
        if q is None or not values:
            continue
        for score in q.scores:
            if score.id in values:
                band = band_for(score, values[score.id])
                out.append(
                    {
                        "questionnaire": q.id,
                        "score": score.id,
                        "label": dict(score.label),
                        "value": values[score.id],
                        "local_date": local_date,
                        "band": dict(band.label) if band else None,
                    }
                )
    return out
