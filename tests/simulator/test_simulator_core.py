"""The simulator's pure parts: goal files, the label mapping, the learned noise model, the judge."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from assistant.intents import INTENTS, SLOTS
from assistant.nlu.labels import SLURP_INTENTS as INTENT_MAP
from assistant.nlu.labels import SLURP_SLOTS as SLOT_MAP
from simulator.data import AsrPair, DataError, load_goals, parse_annotation
from simulator.noise import NoiseModel, transmit
from simulator.truth import judge, slot_matches
from simulator.users import Behaviour, make_user

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "slurp"


def test_mapping_targets_are_our_labels():
    assert all(v is None or v in INTENTS for v in INTENT_MAP.values())
    assert all(v is None or v in SLOTS for v in SLOT_MAP.values())


@pytest.mark.skipif(not (SHARED / "paraphrase_groups.jsonl").exists(), reason="shared data missing")
def test_every_shared_goal_intent_and_slot_type_is_in_the_tables():
    goals = load_goals(SHARED / "paraphrase_groups.jsonl", tier=None)
    assert {g.slurp_intent for g in goals} <= set(INTENT_MAP)
    assert {t for g in goals for p in g.phrasings for t, _ in p.gold_slots} <= set(SLOT_MAP)


def test_parse_annotation():
    assert parse_annotation("wake me at [time : six am] [date : tomorrow]") == [
        ("time", "six am"),
        ("date", "tomorrow"),
    ]


def _goal_file(tmp_path, rows):
    path = tmp_path / "goals.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_load_goals_filters_tier_and_rejects_bad_files(tmp_path):
    rows = [
        {
            "intent": "iot_hue_lightoff",
            "slots": [["house_place", "kitchen"]],
            "tier": "t",
            "paraphrases": [
                {"sentence": "lights off in the kitchen", "annotation": "lights off in the [house_place : kitchen]"}
            ],
        },
        {"intent": "qa_stock", "slots": [], "tier": "other", "paraphrases": [{"sentence": "x"}]},
    ]
    goals = load_goals(_goal_file(tmp_path, rows), tier="t")
    assert len(goals) == 1 and goals[0].intent == "iot_hue_lightoff"
    assert goals[0].checked_slots(goals[0].phrasings[0]) == [("room", "kitchen")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(DataError):
        load_goals(bad)
    with pytest.raises(DataError):
        load_goals(tmp_path / "missing.jsonl")


def test_noise_model_learns_substitutions_deletions_and_replays():
    pairs = [AsrPair("turn on the lights", "turn on the lice", False)] * 5
    pairs += [AsrPair("please play jazz", "play jazz", False)] * 4
    model = NoiseModel.learn(pairs)
    assert model.subs["lights"]["lice"] == 5
    assert model.dels["please"] == 4
    rng = random.Random(1)
    outs = [model.corrupt("dim the lights please", rng) for _ in range(200)]
    assert any("lice" in o for o in outs)  # the learned substitution is applied…
    assert any(not o.endswith("please") for o in outs)  # …and the learned deletion
    assert any(o == "dim the lights please" for o in outs)  # unseen words mostly survive
    # A sentence the pairs recorded is replayed from the real recognitions.
    heard = transmit("turn on the lights", model, random.Random(0), noisy=True, noise_level=1.0)
    assert heard.source == "replay" and heard.text == "turn on the lice"
    assert transmit("hello", model, random.Random(0), noisy=False, noise_level=0).source == "clean"


def test_noise_is_deterministic_for_a_seed():
    model = NoiseModel.learn([AsrPair("a b c d", "a x c", False), AsrPair("b c", "b c e", False)])
    one = [model.corrupt("a b c d b c", random.Random(7)) for _ in range(5)]
    two = [model.corrupt("a b c d b c", random.Random(7)) for _ in range(5)]
    assert one == two


def _turn(intent, slots, *, asr="turn off the kitchen lights", error=None, ok=True, rewrite=None, original=None):
    original = original or {"intent": intent, "slots": slots}
    return {
        "asr": {"text": asr},
        "nlu": {"intent": intent, "slots": slots},
        "trace": [
            {"stage": "nlu", "output": original},
            {"stage": "rewrite", "output": rewrite},
            {"stage": "resolve", "output": {"params": {"error": error} if error else {}}},
            {"stage": "execute", "output": {"ok": ok}},
        ],
    }


def test_judge_failure_points(tmp_path):
    rows = [
        {
            "intent": "iot_hue_lightoff",
            "slots": [["house_place", "kitchen"]],
            "tier": "t",
            "paraphrases": [
                {"sentence": "turn off the kitchen lights", "annotation": "turn off the [house_place : kitchen] lights"}
            ],
        }
    ]
    goal = load_goals(_goal_file(tmp_path, rows), tier="t")[0]
    ph = goal.phrasings[0]
    right = ("iot_hue_lightoff", {"room": "kitchen"})
    wrong = ("iot_hue_lighton", {"room": "kitchen"})
    read_right = lambda text: right  # noqa: E731
    read_wrong = lambda text: wrong  # noqa: E731
    assert judge(_turn(*right), goal, ph, read_right).failure_point == "correct"
    assert judge(_turn("iot_hue_lightoff", {"room": "bedroom"}), goal, ph, read_right).failure_point == "nlu"
    assert judge(_turn(*wrong, asr="turn of the kitchen lice"), goal, ph, read_right).failure_point == "asr"
    assert judge(_turn(*wrong, asr="turn of the kitchen lice"), goal, ph, read_wrong).failure_point == "nlu"
    assert judge(_turn(*right, error="no such room"), goal, ph, read_right).failure_point == "resolve"
    assert judge(_turn(*right, ok=False), goal, ph, read_right).failure_point == "execute"
    fired = {"kept": True}
    loss = judge(_turn(*wrong, rewrite=fired, original={"intent": right[0], "slots": right[1]}), goal, ph, read_right)
    assert (loss.failure_point, loss.rewrite_effect, loss.would_have_succeeded) == ("rewrite", "loss", True)
    win = judge(_turn(*right, rewrite=fired, original={"intent": wrong[0], "slots": wrong[1]}), goal, ph, read_right)
    assert (win.met, win.rewrite_effect) == (True, "win")


def test_slot_matching_is_lenient_on_determiners_and_spelling():
    assert slot_matches("the kitchen", "kitchen")
    assert slot_matches("6 am", "six am")
    assert not slot_matches("bedroom", "kitchen")
    assert not slot_matches(None, "kitchen")


def test_users_depend_only_on_seed_and_index(tmp_path):
    rows = [
        {
            "intent": "general_joke",
            "slots": [],
            "tier": "t",
            "paraphrases": [{"sentence": f"joke number {i}"} for i in range(4)],
        }
        for _ in range(12)
    ]
    goals = load_goals(_goal_file(tmp_path, rows), tier="t")
    a = make_user(3, "x", goals, Behaviour(), seed=5)
    b = make_user(3, "x", goals, Behaviour(), seed=5)
    assert a == b and a.username == "sim-x-u0003" and len(a.repertoire) == 8


def test_behaviour_overrides_are_checked():
    assert Behaviour.with_overrides({"barge_in": "0.9", "max_attempts": "2"}).max_attempts == 2
    for bad in ({"nope": "1"}, {"barge_in": "lots"}, {"max_attempts": "0"}, {"give_up": "-1"}):
        with pytest.raises(ValueError):
            Behaviour.with_overrides(bad)


def test_a_voice_hears_a_sentence_through_one_speakers_recordings():
    pairs = [
        AsrPair("play jazz", "play chess", True, speaker="s1"),
        AsrPair("play jazz", "play chest", False, speaker="s1"),
        AsrPair("play jazz", "pay jazz", True, speaker="s2"),
        AsrPair("play jazz", "play jams", True, speaker="s3"),
    ]
    model = NoiseModel.learn(pairs)
    assert sorted(model.real_recognitions("play jazz")) == ["pay jazz", "play chess", "play chest", "play jams"]
    for voice in ("v1", "v2", "v3", "v4"):
        own = model.real_recognitions("play jazz", voice)
        heard = {
            transmit("play jazz", model, random.Random(i), noisy=True, noise_level=1, voice=voice).text
            for i in range(30)
        }
        assert heard <= set(own) and own in (["play chess", "play chest"], ["pay jazz"], ["play jams"])
    # Voices differ: not every voice gets the same speaker.
    assert len({tuple(model.real_recognitions("play jazz", f"v{i}")) for i in range(20)}) > 1


def test_a_voice_mostly_mishears_a_sentence_the_same_way():
    pairs = [AsrPair(f"turn on the lights {w}", f"turn on the lice {w}", False) for w in "abcdefgh"]
    pairs += [AsrPair(f"turn on the lights {w}", f"turn on the lights {w}", False) for w in "ijklmnop"]
    model = NoiseModel.learn(pairs)
    heard = [
        transmit("please turn on the lights now", model, random.Random(i), noisy=True, noise_level=1, voice="v").text
        for i in range(100)
    ]
    most = max(heard.count(h) for h in set(heard))
    assert most >= 70  # the voice's own rendition, about VOICE_CONSISTENCY of the time


def test_the_reduction_interval_resamples_users_and_covers_the_estimate():
    from simulator.report import reduction_interval

    def turns(user, defects, n):
        return [{"user": user, "met": i >= defects} for i in range(n)]

    control = [t for u in range(30) for t in turns(u, 5 if u % 2 else 4, 10)]  # 45% defects
    arm = [t for u in range(30, 60) for t in turns(u, 3 if u % 2 else 2, 10)]  # 25% defects
    low, high = reduction_interval(arm, control, seed=0)
    assert low < 1 - 0.25 / 0.45 < high
    assert low > 0.3 and high < 0.6
    assert reduction_interval(arm, control, seed=0) == [low, high]  # seeded: the same every run
    assert reduction_interval(arm[:10], control, seed=0) is None  # one user: no interval


def test_the_reduction_from_day1_takes_each_arms_own_start_out():
    from simulator.report import reduction_from_day1

    def turns(user, defects, n):
        return [{"user": user, "met": i >= defects} for i in range(n)]

    # The arm starts worse than control (50% against 40% defects) and ends at 25% where control stays.
    arm_first = [t for u in range(30) for t in turns(u, 5, 10)]
    arm_last = [t for u in range(30) for t in turns(u, 3 if u % 2 else 2, 10)]
    control = [t for u in range(30, 60) for t in turns(u, 4, 10)]
    estimate, (low, high) = reduction_from_day1(arm_first, arm_last, control, control, seed=0)
    assert estimate == 0.5  # 1 - (0.25 / 0.5) / (0.4 / 0.4)
    assert low < estimate < high and low > 0.35 and high < 0.65
    assert reduction_from_day1(arm_first, arm_last, control, control, seed=0) == (estimate, [low, high])
    assert reduction_from_day1(arm_first[:10], arm_last[:10], control, control, seed=0) == (None, None)


def test_the_adjusted_reduction_takes_out_who_drew_which_arm_and_narrows_the_interval():
    """Users keep their own defect rate from day to day; the arm happened to draw the worse ones, and learning
    took 30% of its defects away by the last day. The plain last-day comparison sees mostly the draw; the
    adjusted one most of the 30% (a day's 20 turns measure a start roughly, so the slopes, and the correction,
    fall a little short), with a narrower interval."""
    import random

    from simulator.report import adjusted_reduction, reduction_interval

    rng = random.Random(3)

    def days(users: range, worse: float, kept: float) -> tuple[list[dict], list[dict]]:
        first, last = [], []
        for u in users:
            rate = min(0.95, rng.uniform(0.1, 0.7) + worse)
            first += [{"user": u, "met": rng.random() >= rate} for _ in range(20)]
            last += [{"user": u, "met": rng.random() >= rate * kept} for _ in range(20)]
        return first, last

    arm_first, arm_last = days(range(200), worse=0.1, kept=0.7)
    control_first, control_last = days(range(200, 400), worse=0.0, kept=1.0)
    estimate, (low, high) = adjusted_reduction(arm_first, arm_last, control_first, control_last, seed=0)
    assert low < 0.3 < high and abs(estimate - 0.3) < 0.05
    plain_low, plain_high = reduction_interval(arm_last, control_last, seed=0)
    assert plain_high < 0.25  # the worse draw hides most of the effect
    assert high - low < 0.8 * (plain_high - plain_low)
    same = adjusted_reduction(arm_first, arm_last, control_first, control_last, seed=0)
    assert same == (estimate, [low, high])  # seeded
    # A user seen on the last day only is not adjusted; too few users: nothing to say.
    newcomer = [{"user": 999, "met": False}] * 20
    assert adjusted_reduction(arm_first, arm_last + newcomer, control_first, control_last, seed=0)[0] is not None
    assert adjusted_reduction(arm_first[:20], arm_last[:20], control_first, control_last, seed=0) == (None, None)


def test_defect_probabilities_are_scored_by_auc_and_calibration():
    from simulator.report import score_probabilities

    perfect = score_probabilities([True, False, True, False], [0.9, 0.1, 0.8, 0.2])
    assert perfect["auc"] == 1.0 and perfect["n"] == 4
    calibrated = score_probabilities([True] * 3 + [False] * 7, [0.3] * 10)
    assert calibrated["ece"] == 0.0
    overconfident = score_probabilities([True] * 3 + [False] * 7, [0.9] * 10)
    assert overconfident["ece"] == 0.6 and overconfident["auc"] == 0.5
    assert score_probabilities([], [])["auc"] is None


def test_some_users_call_things_by_names_of_their_own():
    from simulator.users import PERSONAL_NAMES, SimUser

    behaviour = Behaviour()
    users = [make_user(i, "t", [], behaviour, seed=0) for i in range(200)]
    named = [u for u in users if u.own_names]
    assert 0.25 < len(named) / len(users) < 0.55
    assert all(set(u.own_names) <= set(PERSONAL_NAMES) for u in named)
    sim = SimUser(0, "u", False, 0, "kitchen", {}, [], [], own_names={"living room": "den"})
    assert sim.in_own_words("turn off the living room lights") == "turn off the den lights"
    assert sim.in_own_words("what's the weather") == "what's the weather"
