"""Detection rules: what a clinician would see (or not) for a given diary history."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import msgspec
import pytest

from backend.alerts import detection
from backend.alerts.detection import Entry, Finding, Thresholds, evaluate, thresholds_for
from backend.diary.baseline import pain_baseline
from backend.diary.questionnaires import load_library
from backend.diary.scoring import compute_scores

ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 1, 5)


@pytest.fixture(scope="module")
def library():
    return load_library(ROOT / "questionnaires")


def diary(day: int, pain: float, **answers) -> Entry:
    d = START + timedelta(days=day)
    return Entry("diary", d, {"pain_avg": pain, **answers}, {}, f"{d.isoformat()}T19:00:00Z")


def stable_history(days: int, seed: int = 7, level: float = 4.0, sd: float = 1.0) -> list[Entry]:
    rng = random.Random(seed)
    return [diary(i, min(10, max(0, round(rng.gauss(level, sd))))) for i in range(days)]


def rules(findings) -> set[str]:
    # Only what would open an alert (a finding that merely keeps one open does not).
    return {f.rule_id for f in findings if f.opens}


def day(n: int) -> date:
    return START + timedelta(days=n)


# -- pain ------------------------------------------------------------------------------------
def test_a_sustained_rise_alerts_with_the_numbers_in_the_reason():
    entries = stable_history(60) + [diary(60 + i, 7) for i in range(5)]
    found = [f for f in evaluate(entries, Thresholds(), day(64), START) if f.rule_id == "pain_rise"]
    assert len(found) == 1
    f = found[0]
    assert f.category == "pain" and f.severity in ("routine", "high")
    assert "baseline 3,8" in f.reason and "gemiddelde pijn 7,0" in f.reason and "%" in f.reason


def test_a_two_day_flare_does_not_alert():
    entries = stable_history(60) + [diary(60, 9), diary(61, 9), diary(62, 4), diary(63, 4)]
    for today in (61, 62, 63):
        assert "pain_rise" not in rules(evaluate(entries, Thresholds(), day(today), START))


def test_no_pain_judgement_before_ten_diary_days():
    entries = stable_history(9) + [diary(9 + i, 8) for i in range(7)]
    for today in range(9, 16):
        assert "pain_rise" not in rules(evaluate(entries, Thresholds(), day(today), START))


def test_a_step_in_the_first_weeks_is_caught_within_a_week_by_the_warm_up_baseline():
    entries = stable_history(20) + [diary(20 + i, 8) for i in range(7)]
    opened = [
        n
        for n in range(20, 27)
        if "pain_rise" in rules(evaluate(entries[: n + 1], Thresholds(), day(n), START))
    ]
    assert opened and opened[0] <= 24
    found = next(
        f for f in evaluate(entries, Thresholds(), day(opened[0]), START) if f.rule_id == "pain_rise"
    )
    assert "baseline 3," in found.reason or "baseline 4," in found.reason
    # Without the warm-up the first alert waits for six weeks of diary.
    no_warmup = thresholds_for({"warmup_days": 0}, {})
    assert "pain_rise" not in rules(evaluate(entries, no_warmup, day(26), START))


def test_the_warm_up_baseline_is_stricter_than_the_full_one():
    """A rise of 2 points over a noisy first fortnight: too uncertain to alert yet."""
    rng = random.Random(5)
    entries = [diary(i, min(10, max(0, round(rng.gauss(4, 1.6))))) for i in range(20)]
    entries += [diary(20 + i, 6) for i in range(4)]
    assert "pain_rise" not in rules(evaluate(entries, Thresholds(), day(23), START))


def test_a_second_rise_ten_days_after_the_first_ended_is_news():
    """Re-armed: the 42-day baseline still holds the first episode, but the ten days since it
    ended are the patient's usual pain, and the next rise is judged against them."""
    rng = random.Random(11)

    def usual() -> float:
        return min(10, max(0, round(rng.gauss(4, 0.8))))

    days = [usual() for _ in range(56)] + [7.0] * 35 + [usual() for _ in range(10)] + [7.0] * 7
    entries = [diary(i, v) for i, v in enumerate(days)]
    onset = 56 + 35 + 10

    def opened(t: Thresholds) -> list[str]:
        return [
            f.reason
            for n in range(onset, onset + 7)
            for f in evaluate(entries[: n + 1], t, day(n), START)
            if f.rule_id == "pain_rise" and f.opens
        ]

    found = opened(Thresholds())
    assert found and "baseline 4," in found[0], found
    assert not opened(thresholds_for({"rearm_share": 0}, {}))


def test_a_rise_weeks_after_an_episode_alerts_as_it_would_after_a_quiet_time():
    """The blind spot after an episode: two raised weeks that ended two weeks ago are left
    out of the baseline, so the next rise is judged against the patient's usual pain."""
    rng = random.Random(3)

    def usual() -> float:
        return min(10, max(0, round(rng.gauss(4, 0.8))))

    days = [usual() for _ in range(56)] + [7.0] * 14 + [usual() for _ in range(14)] + [6.0] * 5
    entries = [diary(i, v) for i, v in enumerate(days)]
    today = day(len(days) - 1)
    assert "pain_rise" in rules(evaluate(entries, Thresholds(), today, START))
    # Every day counted, the episode lifts the baseline and hides the new rise.
    every_day = thresholds_for({"baseline_raised_share": 0}, {})
    assert "pain_rise" not in rules(evaluate(entries, every_day, today, START))
    # The baseline the clinic is shown is that same one, without the episode.
    found = pain_baseline(Thresholds(), [(e.local_date, e.answers["pain_avg"]) for e in entries], today)
    assert found is not None and found.value < 4.6
    assert sum(v >= 7 for v in found.values) <= 4  # at most its first and last days remain


def test_a_noisy_patient_needs_a_bigger_rise_than_a_steady_one():
    rise = [diary(60 + i, v) for i, v in enumerate((6, 6, 7, 6))]
    # Both have baseline 4; one swings between 1 and 8 for days at a time.
    steady = [diary(i, (4, 3, 4, 5, 4)[i % 5]) for i in range(60)] + rise
    swings = (1, 2, 2, 4, 7, 8, 7, 4, 2, 1, 4, 6, 8, 6)
    noisy = [diary(i, swings[i % len(swings)]) for i in range(60)] + rise
    t = Thresholds()
    assert "pain_rise" in rules(evaluate(steady, t, day(63), START))
    assert "pain_rise" not in rules(evaluate(noisy, t, day(63), START))


def opioid_thresholds(library) -> Thresholds:
    from backend.patients.pathways import load_pathways

    return thresholds_for(load_pathways(ROOT / "questionnaires", library)["opioid"].detection, {})


def on_rescue(usual: list[int], recent: list[int], pain=lambda i: (4, 3, 4, 5, 4)[i % 5]) -> list[Entry]:
    """60 diary days on `usual` rescue doses a day (repeating), then `recent` ones."""
    doses = [usual[i % len(usual)] for i in range(60)] + recent
    return [diary(i, pain(i), rescue_doses=n) for i, n in enumerate(doses)]


def rescue_alert(entries: list[Entry], t: Thresholds, today: int) -> Finding | None:
    """The pain alert's finding if escalating rescue use is (part of) its reason."""
    found = [f for f in evaluate(entries, t, day(today), START) if f.rule_id == "pain_rise" and f.opens]
    return next((f for f in found if "noodmedicatie" in f.reason), None)


def test_escalating_rescue_use_alerts_on_the_opioid_pathway_with_the_numbers(library):
    t = opioid_thresholds(library)
    entries = on_rescue([1, 1, 0, 2, 1], [3, 3, 4, 3, 3, 4])
    found = rescue_alert(entries, t, 65)
    # More rescue medication is more pain: it is the pain alert, its reason the doses.
    assert found is not None and (found.category, found.severity) == ("pain", "routine")
    assert found.reason == (
        "noodmedicatie gemiddeld 2,9 keer per dag over 8 dagen tegenover baseline 1,0; 7 van 8 dagen ≥ 2,0"
    )
    # A patient who never needed rescue medication and now takes it daily: escalation too,
    # also when "none" was left empty (the app shows no 0 in the optional question).
    assert rescue_alert(on_rescue([0], [2, 1, 2, 2, 1, 2]), t, 65)
    blank = [diary(i, (4, 3, 4, 5, 4)[i % 5]) for i in range(60)] + on_rescue([0], [3, 3, 4, 3, 3, 4])[60:]
    assert rescue_alert(blank, t, 65) and "baseline 0,0;" in rescue_alert(blank, t, 65).reason
    # Ten or more a day more than usual is high.
    assert rescue_alert(on_rescue([1], [5, 6, 5, 6, 5, 6]), t, 65).severity == "high"
    # Other pathways do not judge rescue use (they set no `rescue_rise_doses`).
    assert rescue_alert(entries, Thresholds(), 65) is None


def test_a_bad_weekend_a_small_rise_or_one_odd_day_is_no_escalation(library):
    t = opioid_thresholds(library)
    assert rescue_alert(on_rescue([1, 1, 0, 2, 1], [1, 6, 6, 1, 1, 1]), t, 65) is None
    # Usually 3 a day, now 4-5: a dose more, but not twice the usual.
    assert rescue_alert(on_rescue([3, 3, 2, 4, 3], [4, 5, 4, 5, 4, 4]), t, 65) is None
    # One day of 30 doses in the baseline (a typing slip) does not hide the escalation after it.
    odd = on_rescue([1, 1, 0, 2, 1], [3, 3, 4, 3, 3, 4])
    odd[40] = diary(40, 4, rescue_doses=30)
    assert rescue_alert(odd, t, 65)


def test_the_rescue_rule_survives_the_smallest_settings_a_clinician_may_choose(caplog):
    # One-day windows on a warm-up baseline of one diary day (every value inside RANGES).
    t = thresholds_for({"rescue_rise_doses": 1, "min_window_days": 1, "warmup_days": 1}, {})
    entries = [diary(0, 4, rescue_doses=0)] + [diary(i, 4, rescue_doses=4) for i in range(10, 16)]
    for today in range(10, 16):
        evaluate(entries, t, day(today), START)
    assert "failed" not in caplog.text


def test_more_pain_and_more_rescue_medication_together_are_one_pain_alert(library):
    t = opioid_thresholds(library)
    entries = on_rescue(
        [1, 1, 0, 2, 1], [3, 3, 4, 3, 3, 4], pain=lambda i: 7 if i >= 60 else (4, 3, 4, 5)[i % 4]
    )
    found = [f for f in evaluate(entries, t, day(65), START) if f.category == "pain"]
    assert [f.rule_id for f in found] == ["pain_rise"]
    assert (
        found[0].reason.startswith("gemiddelde pijn 7,0")
        and "; noodmedicatie gemiddeld 2,9 keer" in found[0].reason
    )


def test_a_nurses_expected_pain_level_does_not_hide_escalating_rescue_use(library):
    t = msgspec.structs.replace(opioid_thresholds(library), expected_pain_level=6.0)
    entries = on_rescue([1, 1, 0, 2, 1], [4, 4, 4, 4, 4, 4])
    assert rescue_alert(entries, t, 65)
    # ... while the pain itself, up to the level expected, raises nothing.
    up = on_rescue([1], [1] * 6, pain=lambda i: 6 if i >= 60 else (4, 3, 4, 5)[i % 4])
    assert not [f for f in evaluate(up, t, day(65), START) if f.rule_id == "pain_rise"]


def test_gaps_duplicates_missing_items_and_a_single_entry_never_crash():
    t = Thresholds()
    # A new patient without any diary: only the silence rule may speak.
    assert rules(evaluate([], t, START + timedelta(days=9), START)) == {"silence"}
    one = [diary(0, 5)]
    assert "pain_rise" not in rules(evaluate(one, t, START, START))
    messy = stable_history(50)
    messy = messy[::3] + [Entry("diary", day(50), {}, {}, "")] + [diary(50, 9), diary(50, 3)]
    messy.sort(key=lambda e: e.local_date)
    evaluate(messy, t, day(50), START)
    evaluate([Entry("diary", day(3), {"pain_avg": "veel"}, {}, "")], t, day(3), START)


def test_two_entries_on_one_day_the_last_wins():
    base = stable_history(60)
    edited = base + [diary(60 + i, 8) for i in range(5)] + [diary(64, 4)]
    # Day 64 corrected to 4: only 4 of 5 days raised, rule still judges the corrected value.
    f = [x for x in evaluate(edited, Thresholds(), day(64), START) if x.rule_id == "pain_rise"]
    assert f and "4 van 5" in f[0].reason


def test_a_broken_rule_is_logged_without_health_data_and_the_others_still_run(caplog):
    def broken(ctx):
        raise RuntimeError("pain_avg=9 for this patient")

    entries = [diary(0, 5, se_drowsiness=3)]
    found = evaluate(entries, Thresholds(), START, START, rules=(broken, detection.side_effects))
    assert "drowsiness_severe" in rules(found)
    assert "broken" in caplog.text and "pain_avg=9" not in caplog.text


# -- side effects, safety, questionnaires, silence --------------------------------------------
def test_severe_drowsiness_is_urgent_the_same_day():
    entries = [diary(i, 4, se_drowsiness=0) for i in range(10)] + [diary(10, 4, se_drowsiness=3)]
    f = [x for x in evaluate(entries, Thresholds(), day(10), START) if x.rule_id == "drowsiness_severe"]
    assert f and f[0].severity == "urgent" and f[0].category == "side_effect"


def test_constipation_for_days_on_end_alerts_and_one_bad_day_does_not():
    t = Thresholds()
    one = [diary(i, 4, se_constipation=0) for i in range(5)] + [diary(5, 4, se_constipation=2)]
    assert "side_effect_persistent.se_constipation" not in rules(evaluate(one, t, day(5), START))
    run = [diary(i, 4, se_constipation=2) for i in range(4)]
    found = [f for f in evaluate(run, t, day(3), START) if f.rule_id.endswith("se_constipation")]
    assert found and "4 dagen" in found[0].reason


def test_phq9_item_9_is_urgent(library):
    q = library.get("phq9")
    answers = {f"phq9_{i}": 0 for i in range(1, 10)} | {"phq9_9": 1}
    e = Entry("phq9", day(0), answers, compute_scores(q, answers), "")
    found = evaluate([e], Thresholds(), day(0), START, library)
    safety = [f for f in found if f.category == "safety"]
    assert safety and safety[0].severity == "urgent"
    # In the clinic's words, from the questionnaire's own Dutch text and answer label; no ids.
    assert safety[0].reason == (
        "gedachten dat u beter dood zou kunnen zijn of gedachten om uzelf op een of andere manier"
        " iets aan te doen: meerdere dagen (PHQ-9 vraag 9) op 5 jan. 2026"
    )
    assert "phq9" not in safety[0].reason and "\n" not in safety[0].reason


def test_phq9_into_moderately_severe_and_pgic_much_worse_alert(library):
    phq, pgic = library.get("phq9"), library.get("pgic")

    def phq9(n: int, total: int) -> Entry:
        answers = {f"phq9_{i}": 0 for i in range(1, 10)}
        for i in range(total):
            answers[f"phq9_{i % 8 + 1}"] += 1
        return Entry("phq9", day(n), answers, compute_scores(phq, answers), "")

    found = evaluate([phq9(0, 8), phq9(42, 16)], Thresholds(), day(42), START, library)
    q = [f for f in found if f.category == "questionnaire"]
    assert q and q[0].severity == "high" and "16" in q[0].reason
    assert not [
        f
        for f in evaluate([phq9(0, 8), phq9(42, 9)], Thresholds(), day(42), START, library)
        if f.category == "questionnaire"
    ]
    worse = Entry("pgic", day(14), {"pgic": 6}, compute_scores(pgic, {"pgic": 6}), "")
    assert any(
        f.category == "questionnaire" for f in evaluate([worse], Thresholds(), day(14), START, library)
    )


def test_silence_reminds_the_patient_first_then_alerts_the_team():
    entries = [diary(i, 4) for i in range(10)]
    t = Thresholds()
    assert not rules(evaluate(entries, t, day(10), START)) & {"silence", "silence_reminder"}
    assert "silence_reminder" in rules(evaluate(entries, t, day(9 + t.silence_reminder_days), START))
    f = [x for x in evaluate(entries, t, day(9 + t.silence_alert_days), START) if x.rule_id == "silence"]
    assert f and f[0].category == "adherence" and "5 dagen" in f[0].reason
    # A pathway whose diary ended stops expecting it.
    ended = thresholds_for({"diary_days": 7}, {})
    assert not rules(evaluate(entries, ended, day(20), START)) & {"silence", "silence_reminder"}


def test_thresholds_merge_pathway_then_patient_and_name_bad_keys():
    t = thresholds_for({"silence_alert_days": 3, "change_points": 2.5}, {"silence_alert_days": 4})
    assert t.silence_alert_days == 4 and t.change_points == 2.5
    with pytest.raises(ValueError, match="silence_alarm_days"):
        thresholds_for({"silence_alarm_days": 3}, {})
    with pytest.raises(ValueError, match="quiet_days"):
        thresholds_for({}, {"quiet_days": "soon"})
    with pytest.raises(ValueError, match="min_baseline_days"):
        thresholds_for({"min_baseline_days": 2.5}, {})


def test_every_shipped_pathway_has_valid_detection_settings(library):
    from backend.patients.pathways import load_pathways

    for pid, p in load_pathways(ROOT / "questionnaires", library).items():
        thresholds_for(p.detection, {})  # raises naming the key if one is wrong
        assert pid
