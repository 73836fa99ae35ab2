"""Scoring functions that are more than a sum or a mean (value sets, special rules).

Each is registered by name with `@scoring_function(name)` and named in a definition's
`[[scores]]` as `method = "function"`, `function = "<name>"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.diary.questionnaires import Questionnaire, round_half_up, scoring_function

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


@scoring_function("eq5d5l_nl")
def eq5d5l_nl(q: Questionnaire, answers: Mapping[str, Any]) -> float | None:
    """EQ-5D-5L index with the Dutch value set (Versteegh 2016); None if a dimension is missing."""
    levels = eq5d5l_levels(answers)
    return None if levels is None else eq5d5l_nl_index(levels)
