"""Care pathway files: the five shipped pathways load, and a broken file says where it is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backend.alerts.detection import thresholds_for
from backend.diary.definitions import DefinitionError
from backend.diary.questionnaires import load_library
from backend.patients.pathways import SuccessRule, load_pathways, success_outcome

QUESTIONNAIRES = Path(__file__).resolve().parent.parent / "questionnaires"


@pytest.fixture(scope="module")
def shipped():
    library = load_library(QUESTIONNAIRES)
    return load_pathways(QUESTIONNAIRES, library)


def test_the_five_contract_pathways_ship_and_each_has_the_daily_diary(shipped):
    # contract.md: the pathway ids the PWA, exports and the clinic rely on.
    assert sorted(shipped) == ["chronic-pain", "opioid", "palliative", "tps", "treatment-followup"]
    for p in shipped.values():
        diary = [e for e in p.schedule if e.questionnaire == "diary"]
        assert diary and diary[0].daily, p.id
        assert p.title["nl"] and p.title["en"]
        assert {"quiet_days", "silence_alert_days", "change_points", "change_percent"} <= set(p.detection), (
            p.id
        )


def test_pathway_thresholds_are_accepted_by_the_detection_rules(shipped):
    for p in shipped.values():
        thresholds_for(p.detection, None)  # raises on an unknown key or bad value


def test_chronic_pain_proms_at_intake_6w_3m_6m_12m(shipped):
    bpi = next(e for e in shipped["chronic-pain"].schedule if e.questionnaire == "bpi")
    assert bpi.at_days == [0, 42, 91, 182, 365]
    assert bpi.labels == ["intake", "6w", "3m", "6m", "12m"]


def test_opioid_pathway_alerts_sooner_on_persisting_side_effects(shipped):
    assert shipped["opioid"].detection["side_effect_persist_days"] < shipped["chronic-pain"].detection.get(
        "side_effect_persist_days", 3
    )


def test_scs_trial_success_rule_is_fifty_percent_less_pain(shipped):
    rule = shipped["treatment-followup"].success
    assert rule is not None and rule.min_reduction_percent == 50
    baseline = {d: 6.0 for d in range(-7, 0)}
    good = success_outcome(rule, baseline | {d: 2.5 for d in range(1, 15)})
    assert good is not None and good.success and good.reduction_percent == pytest.approx(58.3)
    poor = success_outcome(rule, baseline | {d: 4.0 for d in range(1, 15)})
    assert poor is not None and not poor.success


def test_success_rule_says_nothing_on_too_few_days():
    rule = SuccessRule(label={"nl": "x", "en": "x"}, min_reduction_percent=50, min_days=3)
    assert success_outcome(rule, {-3: 6.0, 2: 1.0, 3: 1.0, 4: 1.0}) is None


# -- broken files: the message names the file and the field ---------------------------------
DIARY_ENTRY = '[[schedule]]\nquestionnaire = "diary"\ndaily = true\n'
HEAD = (
    'id = "{id}"\nanchor = "enrolment"\ntitle = {{ nl = "T", en = "T" }}\n'
    'description = {{ nl = "D", en = "D" }}\n'
)


def _folder(tmp_path: Path, body: str, *, pathway_id: str = "test", name: str | None = None):
    shutil.copy(QUESTIONNAIRES / "diary.toml", tmp_path / "diary.toml")
    (tmp_path / (name or f"pathway-{pathway_id}.toml")).write_text(
        HEAD.format(id=pathway_id) + body, encoding="utf-8"
    )
    return load_library(tmp_path, verify_lock=False)


def _error(tmp_path: Path, body: str, **kw) -> str:
    library = _folder(tmp_path, body, **kw)
    with pytest.raises(DefinitionError) as err:
        load_pathways(tmp_path, library)
    return str(err.value)


def test_a_minimal_pathway_loads(tmp_path):
    library = _folder(tmp_path, DIARY_ENTRY + "[detection]\nquiet_days = 3\n")
    p = load_pathways(tmp_path, library)["test"]
    assert p.detection == {"quiet_days": 3} and p.checksum


def test_unknown_questionnaire_names_file_and_field(tmp_path):
    msg = _error(tmp_path, DIARY_ENTRY + '[[schedule]]\nquestionnaire = "nope"\nat_days = [0]\n')
    assert "pathway-test.toml" in msg and "schedule[1]" in msg and "questionnaire" in msg
    assert "nope" in msg


def test_an_entry_must_have_exactly_one_kind(tmp_path):
    msg = _error(
        tmp_path, DIARY_ENTRY + '[[schedule]]\nquestionnaire = "diary"\nat_days = [0]\nevery_days = 7\n'
    )
    assert "schedule[1]" in msg and "exactly one of" in msg


def test_labels_must_match_the_days(tmp_path):
    msg = _error(
        tmp_path,
        DIARY_ENTRY + '[[schedule]]\nquestionnaire = "diary"\nat_days = [0, 42]\nlabels = ["a"]\n',
    )
    assert "schedule[1]" in msg and "labels" in msg


def test_every_pathway_needs_the_daily_diary(tmp_path):
    msg = _error(tmp_path, '[[schedule]]\nquestionnaire = "diary"\nat_days = [0]\n')
    assert "pathway-test.toml" in msg and "daily diary" in msg


def test_unknown_field_is_named(tmp_path):
    msg = _error(tmp_path, DIARY_ENTRY + "window = 3\n")
    assert "pathway-test.toml" in msg and "window" in msg


def test_id_must_match_file_name(tmp_path):
    msg = _error(tmp_path, DIARY_ENTRY, pathway_id="other", name="pathway-test.toml")
    assert "pathway-test.toml" in msg and "id" in msg


def test_bad_anchor_is_named(tmp_path):
    library = _folder(tmp_path, DIARY_ENTRY)
    path = tmp_path / "pathway-test.toml"
    path.write_text(path.read_text().replace('"enrolment"', '"birthday"'))
    with pytest.raises(DefinitionError, match=r"pathway-test\.toml.*anchor"):
        load_pathways(tmp_path, library)


@pytest.mark.parametrize(("pathway", "first_day"), [("tps", 0), ("treatment-followup", -7)])
def test_short_diary_pathways_still_catch_a_sustained_rise(shipped, pathway, first_day):
    """Pathways with a diary of a few weeks: pain that climbs and stays up alerts within them."""
    from datetime import date, timedelta

    from backend.alerts.detection import Entry, evaluate

    anchor = date(2026, 3, 2)
    t = thresholds_for(shipped[pathway].detection, {})
    entries, fired = [], None
    for day in range(first_day, 14):
        d = anchor + timedelta(days=day)
        pain = 3 if day < 7 else 7
        entries.append(
            Entry("diary", d, {"pain_avg": pain, "pain_worst": pain + 1}, {}, f"{d.isoformat()}T19:00:00Z")
        )
        if any(f.rule_id == "pain_rise" for f in evaluate(entries, t, d, anchor)):
            fired = day
            break
    assert fired is not None and fired <= 12, (pathway, fired)
