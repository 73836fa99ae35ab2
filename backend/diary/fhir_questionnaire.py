"""A questionnaire definition as a FHIR R4 Questionnaire resource (export, /fhir/Questionnaire).

Pure: a Questionnaire definition in, a JSON-ready dict out. Items keep our item ids as
linkId, so a QuestionnaireResponse in the export points straight at them. Scores become
read-only items; where a score is a plain sum or mean of all its items, it carries an SDC
calculatedExpression (FHIRPath) so a form filler can compute it too.

Canonical URLs are `<base>/Questionnaire/<id>` with `base` the serving instance's FHIR base
(`Settings.fhir_base`, from PIJNWACHT_PUBLIC_URL), so the canonical a response carries
resolves on the server that wrote it. The project-wide URL of a definition file (`url`) is
kept as `derivedFrom`: two clinics' PHQ-9 differ in canonical but share that origin.
"""

from __future__ import annotations

from typing import Any

from backend.diary.definitions import LANGUAGES, Item, Questionnaire, Score, Text
from backend.diary.scoring import item_max

# The FHIR base of library callers that have no settings (tests, scripts).
DEFAULT_BASE = "https://pijnwacht.nl/fhir"
LOINC = "http://loinc.org"
EXT_MIN = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_MAX_DECIMALS = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces"
EXT_ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
EXT_TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
EXT_ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
EXT_SLIDER_STEP = "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"
EXT_UNIT_TEXT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
EXT_CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"

# LOINC answer lists of the ordinal PHQ-9/GAD-7 questions, by answer value (0-3): the codes a
# registry reads beside our local ones. LL358-3 for the frequency items, LL359-1 for 69722-7.
_FREQUENCY = (
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
)
_DIFFICULTY = (
    ("LA6572-7", "Not difficult at all"),
    ("LA6573-5", "Somewhat difficult"),
    ("LA6575-0", "Very difficult"),
    ("LA6574-3", "Extremely difficult"),
)
_PHQ9_ITEMS = (
    "44250-9",
    "44255-8",
    "44259-0",
    "44254-1",
    "44251-7",
    "44258-2",
    "44252-5",
    "44253-3",
    "44260-8",
)
_GAD7_ITEMS = ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7")
LOINC_ANSWER_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    **{code: _FREQUENCY for code in _PHQ9_ITEMS + _GAD7_ITEMS},
    "69722-7": _DIFFICULTY,
}


def canonical_url(q: Questionnaire, base: str = DEFAULT_BASE) -> str:
    return f"{base}/Questionnaire/{q.id}"


def resource_id(q: Questionnaire) -> str:
    """The Questionnaire resource's id, one per version: `phq9-v1`."""
    return f"{q.id}-v{q.version}".replace("_", "-")


def answer_system(q: Questionnaire, item: Item, base: str = DEFAULT_BASE) -> str:
    """The code system of a choice item's answers: codes are the answer values as text.

    The one definition both the Questionnaire's answerOptions and the exported responses'
    valueCodings use, so every coded answer is one of its item's options.
    """
    return f"{canonical_url(q, base)}/answers/{item.id}"


def answer_coding(q: Questionnaire, item: Item, value: int, base: str = DEFAULT_BASE) -> dict[str, Any]:
    """The local Coding of a choice answer, exactly as the item's answerOption has it (nl display)."""
    coding: dict[str, Any] = {"system": answer_system(q, item, base), "code": str(value)}
    for option in item.options or []:
        if option.value == value:
            coding["display"] = option.text.get("nl") or option.text.get("en")
    return coding


def loinc_answer_coding(item: Item, value: int) -> dict[str, Any] | None:
    """The LOINC answer (LA code) of an ordinal LOINC question's answer value, if it has one."""
    answers = LOINC_ANSWER_LISTS.get(item.loinc or "")
    if answers is None or not 0 <= value < len(answers):
        return None
    code, display = answers[value]
    return {"system": LOINC, "code": code, "display": display}


def to_fhir(
    q: Questionnaire, lang: str = "nl", *, base: str = DEFAULT_BASE, wording: bool = True
) -> dict[str, Any]:
    """The definition as an R4 Questionnaire in `lang`, the other language as translations.

    `wording=False` leaves out the instrument's own words (intro, item and option texts,
    labels, help), keeping structure, codes and scoring: what may be published of a licensed
    instrument, whose text the clinic holds under its own licence (`copyright` says whose)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": resource_id(q),
        "url": canonical_url(q, base),
        "version": str(q.version),
        "name": _computable_name(q.id),
        "status": "active",
        "language": lang,
        "subjectType": ["Patient"],
    }
    if q.url and q.url != resource["url"]:
        resource["derivedFrom"] = [f"{q.url}|{q.version}"]
    resource.update(_text_field("title", q.title, lang))
    description = q.intro if wording else None
    if description:
        resource.update(_text_field("description", description, lang))
    if q.licence_note:
        resource["copyright"] = q.licence_note
    items = [_item(q, item, lang, base, wording) for item in q.items]
    items += [_score_item(q, score, lang) for score in q.scores]
    resource["item"] = items
    return resource


def _computable_name(qid: str) -> str:
    # FHIR's name is machine-friendly: starts upper-case, letters/digits/underscore only.
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in qid)
    return cleaned[:1].upper() + cleaned[1:]


def _text_field(field: str, text: Text, lang: str) -> dict[str, Any]:
    """`field` in `lang`, with the other languages as translation extensions on `_field`."""
    out: dict[str, Any] = {field: text[lang]}
    translations = [
        {
            "url": EXT_TRANSLATION,
            "extension": [
                {"url": "lang", "valueCode": other},
                {"url": "content", "valueString": text[other]},
            ],
        }
        for other in LANGUAGES
        if other != lang and text.get(other)
    ]
    if translations:
        out[f"_{field}"] = {"extension": translations}
    return out


def _number(value: float, integer: bool) -> dict[str, Any]:
    return {"valueInteger": int(value)} if integer else {"valueDecimal": value}


def _item(q: Questionnaire, item: Item, lang: str, base: str, wording: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.id}
    if item.loinc:
        out["code"] = [{"system": LOINC, "code": item.loinc}]
    if wording:
        out.update(_text_field("text", item.text, lang))
    extensions: list[dict[str, Any]] = []
    if item.type == "choice":
        out["type"] = "choice"
        out["answerOption"] = [
            {
                "valueCoding": {
                    "system": answer_system(q, item, base),
                    "code": str(option.value),
                    **({"display": option.text[lang]} if wording else {}),
                },
                "extension": [{"url": EXT_ORDINAL, "valueDecimal": option.value}],
            }
            for option in item.options or []
        ]
    elif item.type == "text":
        out["type"] = "text" if item.max_length > 255 else "string"
        out["maxLength"] = item.max_length
    else:
        assert item.min is not None and item.max is not None
        integer = item.type in ("scale", "count") or (
            item.step is not None and float(item.step).is_integer() and float(item.min).is_integer()
        )
        out["type"] = "integer" if integer else "decimal"
        extensions.append({"url": EXT_MIN, **_number(item.min, integer)})
        extensions.append({"url": EXT_MAX, **_number(item.max, integer)})
        if not integer:
            extensions.append({"url": EXT_MAX_DECIMALS, "valueInteger": _decimals(item.step)})
        if item.type == "scale":
            extensions.append(
                {
                    "url": EXT_ITEM_CONTROL,
                    "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "slider"}]},
                }
            )
            extensions.append({"url": EXT_SLIDER_STEP, "valueInteger": int(item.step or 1)})
        if item.unit:
            extensions.append({"url": EXT_UNIT_TEXT, "valueCoding": {"display": item.unit[lang]}})
    if extensions:
        out["extension"] = extensions
    out["required"] = item.required
    children = []
    if wording and (item.min_label or item.max_label):
        # Anchors of a scale are shown beside it: display items, as SDC form fillers expect.
        for which, label in (("lower", item.min_label), ("upper", item.max_label)):
            if label:
                children.append(
                    {
                        "linkId": f"{item.id}.{which}",
                        "type": "display",
                        **_text_field("text", label, lang),
                        "extension": [_item_control(f"{which}")],
                    }
                )
    if wording and item.help:
        children.append(
            {
                "linkId": f"{item.id}.help",
                "type": "display",
                **_text_field("text", item.help, lang),
                "extension": [_item_control("help")],
            }
        )
    if children:
        out["item"] = children
    return out


def _item_control(code: str) -> dict[str, Any]:
    return {
        "url": EXT_ITEM_CONTROL,
        "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": code}]},
    }


def _decimals(step: float | None) -> int:
    if step is None:
        return 2
    text = f"{step:f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _score_item(q: Questionnaire, score: Score, lang: str) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": score.id}
    if score.loinc:
        out["code"] = [{"system": LOINC, "code": score.loinc}]
    out.update(_text_field("text", score.label, lang))
    integer = score.decimals == 0 and score.method in ("sum", "answered")
    out["type"] = "integer" if integer else "decimal"
    out["readOnly"] = True
    out["required"] = False
    extensions: list[dict[str, Any]] = []
    if score.min is not None:
        extensions.append({"url": EXT_MIN, **_number(score.min, integer)})
    if score.max is not None:
        extensions.append({"url": EXT_MAX, **_number(score.max, integer)})
    expression = calculated_expression(q, score)
    if expression:
        extensions.append(
            {
                "url": EXT_CALCULATED,
                "valueExpression": {
                    "description": f"{score.method} of {', '.join(score.items)}",
                    "language": "text/fhirpath",
                    "expression": expression,
                },
            }
        )
    if extensions:
        out["extension"] = extensions
    return out


def calculated_expression(q: Questionnaire, score: Score) -> str | None:
    """FHIRPath computing the score as the server does (`score_value`); None where it cannot.

    Sums (prorated when items may be missing), means, percentages of the answered items'
    maximum and counts of answered items are expressed; value sets (EQ-5D) and other scoring
    functions are left to the server. Like the server, the expression gives no value (empty)
    until enough items are answered, and it does not round (FHIRPath's round() is not half-up
    everywhere): compare after rounding to the score's decimals.
    """
    items = [q.item(i) for i in score.items]
    if score.method == "function" or not items or any(i is None for i in items):
        return None
    kinds = {i.type == "choice" for i in items if i is not None}
    if len(kinds) != 1:
        return None
    n = len(items)
    needed = n if score.min_answered is None else score.min_answered
    ids = " | ".join(f"'{i}'" for i in score.items)
    answers = f"%resource.repeat(item).where(linkId in ({ids})).answer.value"
    count = f"{answers}.count()"
    if score.method == "answered":
        return count
    # A choice answer is a Coding whose code is the answer value; toInteger() takes one item,
    # so it is applied to each answer by select(). Numbers are answered as is.
    values = f"{answers}.select(code.toInteger())" if kinds == {True} else answers
    total = f"{values}.aggregate($this + $total, 0)"
    if score.method == "sum":
        result = total if needed == n else f"{total} * {n} / {count}"
    elif score.method == "mean":
        result = f"{total} / {n}" if needed == n else f"{total} / {count}"
    else:  # percent of the answered items' maximum: one expression only if they share it
        tops = {item_max(i) for i in items if i is not None}
        if len(tops) != 1:
            return None
        result = f"{total} * 100 / ({tops.pop():g} * {count})"
    # aggregate() over no answers is its init (0): without the guard an unanswered optional
    # item would score 0 where the server stores no score.
    guard = f"{count} = {n}" if needed == n else f"{count} >= {needed}"
    return f"iif({guard}, {result})"
