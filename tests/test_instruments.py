"""The instrument library: scores, bands, safety items, answer checks, texts, licences, FHIR."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire

from backend.diary.definitions import LANGUAGES, Item, Questionnaire
from backend.diary.fhir_questionnaire import calculated_expression, to_fhir
from backend.diary.questionnaires import Library, check_answers, load_library, safety_items
from backend.diary.scoring import band_for, compute_scores, eq5d5l_nl_index

FOLDER = Path(__file__).resolve().parent.parent / "questionnaires"
PLACEHOLDER = {
    "nl": "[Tekst onder licentie — vervangen door de kliniek]",
    "en": "[Licensed text — to be supplied by the clinic]",
}
INSTRUMENTS = ["peg", "phq9", "gad7", "pgic", "esas", "dn4", "bpi", "eq5d5l", "odi"]
LICENSED = {"bpi", "eq5d5l", "odi", "dn4"}


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(FOLDER)


def q_(library: Library, qid: str) -> Questionnaire:
    q = library.get(qid)
    assert q is not None, f"{qid} is not in the library"
    return q


def band_of(q: Questionnaire, score_id: str, value: float) -> tuple[int, str]:
    score = next(s for s in q.scores if s.id == score_id)
    band = band_for(score, value)
    assert band is not None, f"{score_id} = {value} falls outside every band"
    return band.level, band.label["en"]


def lowest_valid(item: Item) -> Any:
    """A valid answer to any item (its lowest), to build complete answer sets."""
    if item.type == "choice":
        return min(o.value for o in item.options or [])
    if item.type == "text":
        return "x"
    return int(item.min) if float(item.min or 0).is_integer() else item.min


def complete(q: Questionnaire, **answers: Any) -> dict[str, Any]:
    scored = {i for score in q.scores if score.required for i in score.items}
    out = {i.id: lowest_valid(i) for i in q.items if i.required or i.id in scored}
    out.update(answers)
    return out


# -- the library ---------------------------------------------------------------------------
def test_every_instrument_loads_with_the_ids_other_parts_rely_on(library: Library) -> None:
    for qid in INSTRUMENTS:
        q = q_(library, qid)
        assert q.kind == "prom" and q.version >= 1
    items = {qid: [i.id for i in q_(library, qid).items] for qid in INSTRUMENTS}
    assert items["peg"] == ["peg_pain", "peg_enjoyment", "peg_activity"]
    assert items["phq9"][:9] == [f"phq9_{n}" for n in range(1, 10)]
    assert items["gad7"] == [f"gad7_{n}" for n in range(1, 8)]
    assert items["pgic"] == ["pgic"]
    assert items["dn4"] == [f"dn4_{n}" for n in range(1, 8)]
    assert items["odi"] == [f"odi_{n}" for n in range(1, 11)]
    assert {"bpi_worst", "bpi_least", "bpi_avg", "bpi_now", "bpi_int_general"} <= set(items["bpi"])
    assert items["eq5d5l"] == [
        "eq5d_mobility",
        "eq5d_selfcare",
        "eq5d_activities",
        "eq5d_pain",
        "eq5d_anxiety",
        "eq5d_vas",
    ]
    assert {"esas_pain", "esas_tiredness", "esas_drowsiness", "esas_wellbeing"} <= set(items["esas"])


# -- scores from hand-computed answer sets -------------------------------------------------
def test_peg_is_the_mean_of_its_three_items(library: Library) -> None:
    peg = q_(library, "peg")
    scores = compute_scores(peg, {"peg_pain": 6, "peg_enjoyment": 7, "peg_activity": 8})
    assert scores == {"peg_score": 7.0}
    assert band_of(peg, "peg_score", 7.0) == (2, "severe")
    scores = compute_scores(peg, {"peg_pain": 3, "peg_enjoyment": 4, "peg_activity": 4})
    assert scores["peg_score"] == 3.7  # 11 / 3
    assert band_of(peg, "peg_score", scores["peg_score"]) == (0, "mild")


def test_phq9_total_bands_and_the_safety_item(library: Library) -> None:
    phq9 = q_(library, "phq9")
    answers = {f"phq9_{n}": v for n, v in enumerate([1, 2, 1, 0, 3, 2, 1, 0, 0], 1)}
    assert check_answers(phq9, answers) == []
    assert compute_scores(phq9, answers) == {"phq9_total": 10}
    assert band_of(phq9, "phq9_total", 10) == (2, "moderate")
    assert safety_items(phq9, answers) == []
    answers["phq9_9"] = 1
    assert safety_items(phq9, answers) == ["phq9_9"]
    assert compute_scores(phq9, answers) == {"phq9_total": 11}
    total = next(s for s in phq9.scores if s.id == "phq9_total")
    assert (total.loinc, total.mic, total.worse) == ("44261-6", 5, "higher")
    expected = {0: 0, 4: 0, 5: 1, 9: 1, 10: 2, 14: 2, 15: 3, 19: 3, 20: 4, 27: 4}
    assert {v: band_of(phq9, "phq9_total", v)[0] for v in expected} == expected
    # The unscored difficulty question changes nothing.
    answers["phq9_difficulty"] = 3
    assert compute_scores(phq9, answers) == {"phq9_total": 11}


def test_gad7_total_and_bands(library: Library) -> None:
    gad7 = q_(library, "gad7")
    answers = {f"gad7_{n}": v for n, v in enumerate([3, 3, 2, 2, 1, 1, 3], 1)}
    assert compute_scores(gad7, answers) == {"gad7_total": 15}
    assert band_of(gad7, "gad7_total", 15) == (3, "severe")
    total = next(s for s in gad7.scores if s.id == "gad7_total")
    assert (total.loinc, total.mic) == ("70274-6", 4)
    expected = {4: 0, 5: 1, 9: 1, 10: 2, 14: 2, 21: 3}
    assert {v: band_of(gad7, "gad7_total", v)[0] for v in expected} == expected
    assert safety_items(gad7, answers) == []


def test_pgic_much_worse_is_a_concern(library: Library) -> None:
    pgic = q_(library, "pgic")
    levels = {
        v: band_of(pgic, "pgic_score", compute_scores(pgic, {"pgic": v})["pgic_score"])[0]
        for v in range(1, 8)
    }
    assert levels[1] == levels[2] == levels[4] == 0
    assert levels[6] == levels[7] > levels[5] > 0


def test_esas_symptoms_relevant_from_4_severe_from_7(library: Library) -> None:
    esas = q_(library, "esas")
    answers = complete(esas, esas_pain=7, esas_tiredness=4, esas_nausea=3, esas_wellbeing=5)
    assert check_answers(esas, answers) == []
    scores = compute_scores(esas, answers)
    assert scores["esas_pain_score"] == 7 and scores["esas_total"] == 7 + 4 + 3 + 5
    assert band_of(esas, "esas_pain_score", 7)[0] == 2
    assert band_of(esas, "esas_tiredness_score", 4)[0] == 1
    assert band_of(esas, "esas_nausea_score", 3)[0] == 0
    assert "esas_sleep_score" not in scores  # optional symptom not answered: no score


def test_dn4_three_of_seven_suggests_neuropathic_pain(library: Library) -> None:
    dn4 = q_(library, "dn4")
    yes = {f"dn4_{n}": v for n, v in enumerate([1, 1, 0, 1, 0, 0, 0], 1)}
    assert compute_scores(dn4, yes) == {"dn4_score": 3}
    assert band_of(dn4, "dn4_score", 3) == (1, "suggests neuropathic pain")
    yes["dn4_4"] = 0
    assert band_of(dn4, "dn4_score", compute_scores(dn4, yes)["dn4_score"])[0] == 0


def test_bpi_severity_and_interference_with_the_user_guide_missing_rule(library: Library) -> None:
    bpi = q_(library, "bpi")
    answers = {"bpi_worst": 8, "bpi_least": 2, "bpi_avg": 5, "bpi_now": 7}
    answers |= {"bpi_int_general": 6, "bpi_int_mood": 4, "bpi_int_walking": 5, "bpi_int_work": 7}
    assert check_answers(bpi, answers) == []
    assert compute_scores(bpi, answers) == {"bpi_severity": 5.5, "bpi_interference": 5.5}
    assert band_of(bpi, "bpi_severity", 5.5)[0] == 1
    del answers["bpi_int_work"]  # 3 of 7 interference items: no interference score
    assert compute_scores(bpi, answers) == {"bpi_severity": 5.5}
    answers |= {
        "bpi_int_work": 7,
        "bpi_int_relations": 2,
        "bpi_int_sleep": 9,
        "bpi_int_enjoyment": 1,
    }
    assert compute_scores(bpi, answers)["bpi_interference"] == round(34 / 7, 1)


def test_bpi_means_round_half_up_as_the_manual_does(library: Library) -> None:
    # 8/3/5/1 has mean 4.25: the manual (and SPSS, Excel ROUND) give 4.3; round() gave 4.2.
    bpi = q_(library, "bpi")
    answers = {"bpi_worst": 8, "bpi_least": 3, "bpi_avg": 5, "bpi_now": 1}
    answers |= {"bpi_int_general": 4, "bpi_int_mood": 4, "bpi_int_walking": 5, "bpi_int_work": 4}
    assert compute_scores(bpi, answers) == {"bpi_severity": 4.3, "bpi_interference": 4.3}


@pytest.mark.parametrize(
    ("state", "index"),
    [
        # The values of R's eq5d package (eq5d5l(), Dutch value set VT.csv: the published
        # coefficients to three decimals), the reference matched on all 3 125 states. The
        # unrounded EuroQol model differs by up to 0.0018 (33333: 0.5127).
        ("11111", 1.0),
        ("55555", -0.446),
        ("11112", 0.883),
        ("21111", 0.918),
        ("12345", 0.047),
        ("54321", 0.429),
        ("33333", 0.511),
        ("44444", -0.289),
    ],
)
def test_eq5d5l_dutch_index_matches_published_values(library: Library, state: str, index: float) -> None:
    eq5d = q_(library, "eq5d5l")
    dims = ["eq5d_mobility", "eq5d_selfcare", "eq5d_activities", "eq5d_pain", "eq5d_anxiety"]
    answers = {d: int(c) for d, c in zip(dims, state, strict=True)} | {"eq5d_vas": 65}
    assert check_answers(eq5d, answers) == []
    scores = compute_scores(eq5d, answers)
    assert scores["eq5d_index"] == index
    assert scores["eq5d_vas_score"] == 65


def test_eq5d5l_hand_computed_state_and_missing_dimension(library: Library) -> None:
    # 32143: 1 - 0.047 - 0.057 (MO3) - 0.038 (SC2) - 0 (UA1) - 0.360 (PD4) - 0.145 (AD3)
    assert eq5d5l_nl_index((3, 2, 1, 4, 3)) == 0.353
    eq5d = q_(library, "eq5d5l")
    scores = compute_scores(eq5d, {"eq5d_mobility": 2, "eq5d_vas": 40})
    assert scores == {"eq5d_vas_score": 40}


def test_odi_percentage_allows_one_missing_section(library: Library) -> None:
    odi = q_(library, "odi")
    assert odi.version == 2
    values = [2, 1, 3, 2, 2, 1, 2, 0, 1, 2]  # sum 16
    answers = {f"odi_{n}": v for n, v in enumerate(values, 1)}
    assert compute_scores(odi, answers) == {"odi_score": 32, "odi_sections": 10}  # 16 / 50
    assert band_of(odi, "odi_score", 32) == (1, "moderate disability")
    del answers["odi_3"]  # any one section may be left out, not only section 8 (version 1)
    assert check_answers(odi, answers) == []
    assert compute_scores(odi, answers) == {"odi_score": 29, "odi_sections": 9}  # 13 / 45 = 28.9
    del answers["odi_8"]  # two sections missing: the manual gives no score, so it is refused
    [error] = check_answers(odi, answers)
    assert error.item == "odi_3"
    assert error.text("nl") == (
        "de ODI-score kan alleen worden berekend als minstens 9 van de 10 onderdelen beantwoord"
        " zijn (nu 8): beantwoord er nog 1"
    )
    assert (
        error.text("en")
        == "the ODI score needs at least 9 of the 10 sections answered (8 now): answer 1 more"
    )
    at_20 = {f"odi_{n}": 1 for n in range(1, 11)}
    assert band_of(odi, "odi_score", compute_scores(odi, at_20)["odi_score"])[0] == 0
    odi_mic = next(s for s in odi.scores if s.id == "odi_score").mic
    assert odi_mic == 10


def test_odi_accepts_exactly_what_fairbank_and_pynsent_score(library: Library) -> None:
    # Every way of leaving out 0, 1 or 2 of the 10 sections, answers varied per case.
    odi = q_(library, "odi")
    sections = [f"odi_{n}" for n in range(1, 11)]
    cases = [()] + [(a,) for a in sections] + list(itertools.combinations(sections, 2))
    for n, missing in enumerate(cases):
        answers = {s: (n + k) % 6 for k, s in enumerate(sections) if s not in missing}
        answered = len(answers)
        errors = check_answers(odi, answers)
        if answered >= 9:
            expected = float(Decimal(100 * sum(answers.values())) / (5 * answered))
            expected = float(Decimal(str(expected)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            assert errors == [], missing
            assert compute_scores(odi, answers) == {"odi_score": expected, "odi_sections": answered}
        else:
            assert [e.item for e in errors] == [missing[0]], missing


def test_odi_version_1_still_scores_its_stored_responses(library: Library) -> None:
    odi1 = library.get("odi", 1)
    assert odi1 is not None
    answers = {f"odi_{n}": 2 for n in range(1, 11) if n != 8}
    assert compute_scores(odi1, answers) == {"odi_score": 40}
    del answers["odi_3"]
    assert [e.item for e in check_answers(odi1, answers)] == ["odi_3"]  # published: unchanged


def test_every_score_value_falls_in_exactly_one_band(library: Library) -> None:
    """No gaps and no overlaps at the score's own resolution; concern grows with 'worse'."""
    for q in library.latest.values():
        for score in q.scores:
            if not score.bands:
                continue
            assert score.min is not None and score.max is not None, score.id
            step = Decimal(1).scaleb(-score.decimals)
            value = Decimal(str(score.min))
            levels = []
            while value <= Decimal(str(score.max)):
                hits = [b for b in score.bands if b.min <= float(value) <= b.max]
                assert len(hits) == 1, f"{q.id}.{score.id} = {value}: {len(hits)} bands"
                levels.append(hits[0].level)
                value += step
            if score.worse == "lower":
                levels.reverse()
            assert levels == sorted(levels), f"{q.id}.{score.id}: concern not monotonic"


# -- answer checks -------------------------------------------------------------------------
@pytest.mark.parametrize("qid", INSTRUMENTS)
def test_check_answers_rejects_out_of_range_answers(library: Library, qid: str) -> None:
    q = q_(library, qid)
    good = complete(q)
    assert check_answers(q, good) == []
    for item in q.items:
        if item.type == "text":
            bad_values: list[Any] = [123, "x" * (item.max_length + 1)]
        elif item.type == "choice":
            values = [o.value for o in item.options or []]
            bad_values = [min(values) - 1, max(values) + 1, "1"]
        else:
            assert item.min is not None and item.max is not None
            bad_values = [item.min - 1, item.max + 1, "5", True]
        for bad in bad_values:
            errors = check_answers(q, good | {item.id: bad})
            assert [e.item for e in errors] == [item.id], f"{qid}.{item.id} accepted {bad!r}"


@pytest.mark.parametrize("qid", [*INSTRUMENTS, "diary"])
def test_an_answer_found_on_the_item_s_grid_is_judged_as_the_full_check_judges_it(
    library: Library, qid: str
) -> None:
    """issue 17: the common answer is a set lookup (`_accepted_values`); whatever it lets
    through, the full check takes too, and what it refuses is refused for the same reason:
    bools (True == 1), NaN, infinities, off-grid and out-of-range values, 3.0 for 3."""
    from backend.diary.questionnaires import _check_value

    q = q_(library, qid)
    good = complete(q)
    for item in q.items:
        if item.type == "text":
            continue
        if item.type == "choice":
            grid = [float(o.value) for o in item.options or []]
            step = 1.0
        else:
            assert item.min is not None and item.max is not None
            step = item.step or 1.0
            grid = [item.min + k * step for k in range(int((item.max - item.min) / step) + 1)]
        tried = 0
        for v in grid:
            for value in (v, int(v) if v.is_integer() else v, v + step / 2, v + 1e-9, -v - step):
                want = _check_value(item, value)
                errors = check_answers(q, good | {item.id: value})
                got = [(e.item, e.key) for e in errors if e.item == item.id]
                assert got == ([(item.id, want[0])] if want else []), f"{qid}.{item.id} = {value!r}"
                tried += 1
        for odd in (True, False, float("nan"), float("inf"), -float("inf"), "3", None):
            errors = [e for e in check_answers(q, good | {item.id: odd}) if e.item == item.id]
            if odd is None:
                assert [e.key for e in errors] == (["answer.required"] if item.required else [])
            else:
                assert errors and errors[0].key == _check_value(item, odd)[0], f"{qid}.{item.id} = {odd!r}"
        assert tried >= 5 * len(grid)


def test_specific_wrong_answers_are_explained(library: Library) -> None:
    phq9 = q_(library, "phq9")
    errors = check_answers(phq9, complete(phq9, phq9_1=4))
    assert errors[0].item == "phq9_1" and "0, 1, 2, 3" in errors[0].text("en")
    bpi = q_(library, "bpi")
    errors = check_answers(bpi, complete(bpi, bpi_relief=55))
    assert errors[0].item == "bpi_relief" and "steps of 10" in errors[0].text("en")
    peg = q_(library, "peg")
    errors = check_answers(peg, complete(peg, peg_pain=7.5))
    assert errors[0].text("en") == "must be a whole number"
    missing = check_answers(peg, {"peg_pain": 3})
    assert {e.item for e in missing} == {"peg_enjoyment", "peg_activity"}
    assert check_answers(peg, complete(peg, peg_other=1))[0].item == "peg_other"


# -- texts and licences --------------------------------------------------------------------
def all_texts(q: Questionnaire) -> list[tuple[str, dict[str, str]]]:
    texts: list[tuple[str, dict[str, str]]] = [("title", q.title)]
    texts += [("intro", q.intro)] if q.intro else []
    for item in q.items:
        texts.append((item.id, item.text))
        for name in ("min_label", "max_label", "help", "unit"):
            if getattr(item, name):
                texts.append((f"{item.id}.{name}", getattr(item, name)))
        texts += [(f"{item.id}[{o.value}]", o.text) for o in item.options or []]
    for score in q.scores:
        texts.append((score.id, score.label))
        texts += [(f"{score.id} band", b.label) for b in score.bands]
    return texts


@pytest.mark.parametrize("qid", INSTRUMENTS + ["diary"])
def test_every_text_is_in_dutch_and_english(library: Library, qid: str) -> None:
    q = q_(library, qid)
    for where, text in all_texts(q):
        for lang in LANGUAGES:
            assert text.get(lang, "").strip(), f"{qid} {where}: no {lang} text"
    for item in q.items:
        if q.licence == "open":
            # A copy-paste slip would show one language twice.
            assert item.text["nl"] != item.text["en"], f"{qid}.{item.id}: nl and en are equal"


@pytest.mark.parametrize("qid", INSTRUMENTS)
def test_licensed_files_are_marked_and_hold_placeholder_text_only(library: Library, qid: str) -> None:
    q = q_(library, qid)
    assert (q.licence == "licensed") == (qid in LICENSED)
    # Yes/no answers and units are nobody's licensed text; the title, score labels and bands
    # are ours (the instrument's name and its published scoring).
    generic = {"ja", "nee", "yes", "no", "%"}
    ours = {"title"} | {s.id for s in q.scores} | {f"{s.id} band" for s in q.scores}
    for where, text in all_texts(q):
        for lang in LANGUAGES:
            placeholder = text[lang].startswith(PLACEHOLDER[lang])
            if q.licence == "open":
                assert not placeholder, f"{qid} {where}: placeholder in an open instrument"
            elif where not in ours:
                assert placeholder or text[lang] in generic, f"{qid} {where}: not a placeholder"
    if q.licence == "licensed":
        assert q.licence_note and "licen" in q.licence_note
        assert f"{qid}.v{q.version + 1}.toml" in q.licence_note  # says how the clinic replaces the text
        # Scoring works without the text: every score is computable from a complete set.
        answers = {i.id: lowest_valid(i) for i in q.items if i.type != "text"}
        assert set(compute_scores(q, answers)) == {s.id for s in q.scores}


# -- FHIR ----------------------------------------------------------------------------------
@pytest.mark.parametrize("qid", INSTRUMENTS + ["diary"])
@pytest.mark.parametrize("lang", ["nl", "en"])
def test_fhir_questionnaire_is_valid_r4(library: Library, qid: str, lang: str) -> None:
    q = q_(library, qid)
    resource = to_fhir(q, lang)
    # fhir.resources 8 has no separate R4 package; R4B's Questionnaire is R4's, unchanged.
    FhirQuestionnaire.model_validate(resource)
    assert resource["version"] == str(q.version) and resource["language"] == lang
    by_link = {i["linkId"]: i for i in resource["item"]}
    for item in q.items:
        fhir_item = by_link[item.id]
        assert fhir_item["text"] == item.text[lang]
        assert fhir_item["required"] == item.required
        if item.type == "choice":
            assert fhir_item["type"] == "choice"
            codes = [o["valueCoding"]["code"] for o in fhir_item["answerOption"]]
            assert codes == [str(o.value) for o in item.options or []]
        elif item.type in ("scale", "count"):
            assert fhir_item["type"] == "integer"
            limits = {e["url"].rsplit("/", 1)[1]: e.get("valueInteger") for e in fhir_item["extension"]}
            assert (limits["minValue"], limits["maxValue"]) == (item.min, item.max)
    for score in q.scores:
        assert by_link[score.id]["readOnly"] is True


def test_fhir_scores_carry_calculated_expressions_where_simple(library: Library) -> None:
    phq9 = to_fhir(q_(library, "phq9"), "en")
    total = next(i for i in phq9["item"] if i["linkId"] == "phq9_total")
    assert total["code"] == [{"system": "http://loinc.org", "code": "44261-6"}]
    expression = next(e for e in total["extension"] if "calculatedExpression" in e["url"])
    assert "'phq9_9'" in expression["valueExpression"]["expression"]
    assert "phq9_difficulty" not in expression["valueExpression"]["expression"]
    nine = next(i for i in phq9["item"] if i["linkId"] == "phq9_9")
    assert nine["code"][0]["code"] == "44260-8"
    # "At least 4 of 7" is said as such; value sets are left to the server.
    bpi = q_(library, "bpi")
    assert calculated_expression(bpi, bpi.scores[1]).startswith("iif(%resource") and ".count() >= 4," in (
        calculated_expression(bpi, bpi.scores[1])
    )
    eq5d = q_(library, "eq5d5l")
    assert calculated_expression(eq5d, eq5d.scores[0]) is None
    peg = q_(library, "peg")
    assert calculated_expression(peg, peg.scores[0]).endswith("/ 3)")


def test_fhir_translations_carry_the_other_language(library: Library) -> None:
    resource = to_fhir(q_(library, "gad7"), "nl")
    first = next(i for i in resource["item"] if i["linkId"] == "gad7_1")
    translation = first["_text"]["extension"][0]["extension"]
    assert {"url": "lang", "valueCode": "en"} in translation
    assert first["text"].startswith("Zich nerveus")
    with pytest.raises(ValueError):
        to_fhir(q_(library, "gad7"), "de")
