"""Context in understanding: the situation of a turn, the re-ranker's candidates and features, its
training and gate, and the pipeline choosing readings with it ("turn it up" while music plays versus
after the heating was mentioned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from assistant.models import Device, MediaPlayer, ModelVersion, Timer
from assistant.nlu import NLU_MODELS, understand
from assistant.nlu.context import (
    CONTEXT_CANDIDATES,
    CONTEXT_MODELS,
    FEATURES,
    candidates,
    choose,
    feature_rows,
    serving_ranker,
    situation_of,
)
from assistant.nlu.context_seed import context_examples, held_out, is_context_phrasing
from assistant.pipeline.turn import build_context, handle_turn
from assistant.turns import TurnContext
from assistant.world.situation import home_situation
from feedback.models import Session, Turn
from learning.nlu.context import gate, train_and_register

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def _ctx(**fields) -> TurnContext:
    return TurnContext(user_id=1, home_id=1, device_id=None, room=None, has_screen=False, now=NOW, **fields)


# -- the situation ---------------------------------------------------------------------------
def test_a_stored_context_from_before_situations_reads_as_nothing_going_on():
    old = {"user_id": 1, "home_id": 1, "device_id": None, "room": None, "has_screen": True, "now": NOW.isoformat()}
    situation = situation_of(old)
    assert situation["has_screen"] and situation["media"] == "" and situation["on"] == ()
    assert situation["recent_intents"] == () and situation["alarm_minutes_ago"] is None
    assert situation_of({"now": "not a date"})["hour"] != situation_of({"now": "not a date"})["hour"]  # NaN
    assert situation_of(_ctx(on=("oven",))) == situation_of(_ctx(on=("oven",)).as_dict())


def test_home_situation_says_what_is_on_playing_and_when_the_alarm_went_off(alice):
    home = alice.home
    oven = Device.objects.get(home=home, kind=Device.Kind.OVEN)
    oven.state = {**oven.state, "on": True}
    oven.save()
    kitchen_light = Device.objects.get(home=home, name="Kitchen light")
    kitchen_light.state = {**kitchen_light.state, "on": True}
    kitchen_light.save()
    MediaPlayer.objects.filter(home=home).update(status="playing", item={"title": "So What", "type": "song"})
    Timer.objects.create(home=home, kind=Timer.Kind.ALARM, fires_at=NOW - timedelta(minutes=7))
    Timer.objects.create(home=home, kind=Timer.Kind.ALARM, fires_at=NOW - timedelta(hours=3))

    kitchen = home_situation(home.pk, "kitchen", NOW)
    assert {"oven", "light", "light_here"} <= set(kitchen["on"])
    assert (kitchen["media"], kitchen["media_kind"], kitchen["alarm_minutes_ago"]) == ("playing", "song", 7)
    assert "light_here" not in home_situation(home.pk, "office", NOW)["on"]
    assert home_situation(home.pk, None, NOW + timedelta(hours=2))["alarm_minutes_ago"] is None


def test_the_turn_context_holds_the_sessions_recent_intents(alice, nlu_model):
    session = Session.objects.create(user=alice, channel=Session.Channel.CLI, started_at=NOW)
    handle_turn(alice, text="set the heating to 20 degrees", session=session, now=NOW)
    ctx = build_context(alice, None, NOW + timedelta(seconds=20), session)
    assert ctx.recent_intents == ("iot_thermostat_set",)
    assert build_context(alice, None, NOW + timedelta(hours=1), session).recent_intents == ()
    assert build_context(alice, None, NOW, None).recent_intents == ()
    stored = Turn.objects.get(session=session).context
    assert {"media", "media_kind", "on", "recent_intents", "alarm_minutes_ago"} <= set(stored)


# -- candidates and features -----------------------------------------------------------------
INTENTS = ["audio_volume_up", "iot_hue_lightup", "out_of_scope", "general_joke", "timer_set", "iot_thermostat_set"]


def test_the_same_action_on_what_the_situation_is_about_joins_the_candidates():
    probs = np.array([0.8, 0.1, 0.05, 0.03, 0.015, 0.005])
    nothing = situation_of(_ctx())
    assert [i for i, _ in candidates(probs, INTENTS, nothing)] == INTENTS[:CONTEXT_CANDIDATES]
    heating = situation_of(_ctx(recent_intents=("iot_temperature_query",)))
    chosen = candidates(probs, INTENTS, heating)
    assert chosen[-1] == ("iot_thermostat_set", 0.005) and len(chosen) == CONTEXT_CANDIDATES + 1
    rows = feature_rows("turn it up", chosen, heating, INTENTS)
    assert rows.shape == (len(chosen), len(FEATURES))
    column = {name: rows[:, i] for i, name in enumerate(FEATURES)}
    assert column["carried"].tolist() == [0.0] * CONTEXT_CANDIDATES + [1.0]
    assert column["in_question"][-1] == 1.0 and column["same_action_as_best"][-1] == 1.0
    assert column["pronoun"][0] == 1.0
    assert feature_rows("louder please", chosen, heating, INTENTS)[0, FEATURES.index("pronoun")] == 0.0
    # An intent the ranker never saw (a public one of a newer NLU) still gets a row.
    assert feature_rows("x", [("email_query", 0.9)], nothing, INTENTS).shape == (1, len(FEATURES))


def test_context_chooses_only_readings_about_what_it_is_about_and_keeps_the_nlus_confidence():
    readings = [("audio_volume_up", 0.8), ("iot_hue_lightup", 0.1), ("iot_thermostat_set", 0.01)]
    heating = situation_of(_ctx(recent_intents=("iot_thermostat_set",)))
    assert choose(readings, np.array([0.3, 0.1, 0.9]), heating)[0] == ("iot_thermostat_set", 0.9)
    # ...but not with less confidence than the NLU has in its own reading.
    assert choose(readings, np.array([0.3, 0.1, 0.7]), heating)[0] == ("audio_volume_up", 0.8)
    # Nothing is about the heating: the words decide, with the NLU's confidence when it is the surer.
    nothing = situation_of(_ctx())
    assert choose(readings, np.array([0.3, 0.1, 0.9]), nothing)[0] == ("audio_volume_up", 0.8)
    assert choose(readings, np.array([0.95, 0.1, 0.2]), nothing)[0] == ("audio_volume_up", 0.95)
    assert [i for i, _ in choose(readings, np.array([0.3, 0.1, 0.9]), nothing)] == [
        "audio_volume_up",
        "iot_thermostat_set",
        "iot_hue_lightup",
    ]


def test_context_examples_hold_out_whole_phrasings():
    examples = context_examples()
    groups = {e.group for e in examples}
    held = {g for g in groups if held_out(g)}
    assert 0.1 < len(held) / len(groups) < 0.4
    assert {e.intent for e in examples if e.group == "up:turn it up"} >= {"audio_volume_up", "iot_thermostat_set"}
    assert is_context_phrasing("Turn it  up") and is_context_phrasing("set it to 21 degrees")
    assert not is_context_phrasing("turn up the volume")


# -- the gate ----------------------------------------------------------------------------------
def _manifest(context, ordinary, works=None):
    return {
        "metrics": {
            "context": {"n": 100, "nlu_accuracy": context[0], "accuracy": context[1]},
            "ordinary": {"n": 100, "nlu_accuracy": ordinary[0], "accuracy": ordinary[1]},
            "works": {"n": 50, "nlu_accuracy": works[0], "accuracy": works[1]} if works else {"n": 0},
        }
    }


def test_the_gate_wants_context_read_better_and_nothing_else_worse(settings):
    settings.NLU_PROMOTION_TOLERANCE = 0.01
    assert gate(_manifest((0.3, 0.9), (0.9, 0.9)), None).promote
    assert not gate(_manifest((0.3, 0.3), (0.9, 0.95)), None).promote
    refused = gate(_manifest((0.3, 0.9), (0.9, 0.85)), None)
    assert not refused.promote and "ordinary" in refused.note
    assert not gate(_manifest((0.3, 0.9), (0.9, 0.9), works=(0.98, 0.9)), None).promote
    assert not gate({"metrics": {}}, None).promote


# -- trained, and in the pipeline -------------------------------------------------------------
@pytest.fixture
def ranker(nlu_model):
    result = train_and_register()
    assert result["status"] == ModelVersion.Status.ACTIVE, result["note"]
    return result


def _reading(turn: Turn) -> dict:
    return next(r for r in turn.trace if r["stage"] == "nlu")["output"]


def test_the_situation_chooses_what_turn_it_up_means(alice, ranker):
    metrics = ranker["metrics"]
    assert metrics["context"]["accuracy"] > metrics["context"]["nlu_accuracy"]
    assert ranker["nlu_version"] == NLU_MODELS.active_version().version

    heating = Session.objects.create(user=alice, channel=Session.Channel.CLI, started_at=NOW)
    handle_turn(alice, text="set the heating to 20 degrees", session=heating, now=NOW)
    turn = handle_turn(alice, text="turn it up", session=heating, now=NOW + timedelta(seconds=15))
    assert turn.intent == "iot_thermostat_set"
    reading = _reading(turn)
    assert reading["context_version"] == ranker["version"]
    assert reading["before_context"][0][0] != "iot_thermostat_set"  # the words alone said otherwise
    assert reading["alternatives"][0][0] == "iot_thermostat_set"
    # "Up", said of the heating: a degree above where it was set.
    assert Device.objects.get(home=alice.home, kind=Device.Kind.THERMOSTAT).state["target_c"] == 21.0
    assert "21" in turn.response

    music = Session.objects.create(user=alice, channel=Session.Channel.CLI, started_at=NOW)
    handle_turn(alice, text="play some jazz", session=music, now=NOW + timedelta(minutes=10))
    assert MediaPlayer.objects.get(home=alice.home).status == "playing"
    turn = handle_turn(alice, text="turn it up", session=music, now=NOW + timedelta(minutes=10, seconds=20))
    assert turn.intent == "audio_volume_up"

    tv = Session.objects.create(user=alice, channel=Session.Channel.CLI, started_at=NOW)
    handle_turn(alice, text="turn on the tv", session=tv, now=NOW + timedelta(minutes=20))
    turn = handle_turn(alice, text="switch it off", session=tv, now=NOW + timedelta(minutes=20, seconds=9))
    assert turn.intent == "iot_tv_off"


def test_words_that_say_all_mean_the_same_in_any_situation(alice, ranker):
    busy = _ctx(media="playing", media_kind="song", on=("oven", "tv"), recent_intents=("iot_thermostat_set",))
    for text, intent in (
        ("set a timer for ten minutes", "timer_set"),
        ("add eggs to my shopping list", "lists_createoradd"),
        ("switch off the kitchen lights", "iot_hue_lightoff"),
    ):
        assert understand(text, busy).intent == intent
        assert understand(text, busy).context_version == ranker["version"]
        assert understand(text).context_version == ""  # no context: the NLU alone


def test_a_re_ranker_serves_only_the_nlu_version_it_was_trained_for(alice, ranker, nlu_model):
    assert serving_ranker(nlu_model.version) is not None
    assert serving_ranker("nlu-some-other-version") is None
    row = CONTEXT_MODELS.active_version()
    row.status = ModelVersion.Status.RETIRED
    row.save()
    CONTEXT_MODELS.reset_loaded()
    assert understand("turn it up", _ctx(recent_intents=("iot_thermostat_set",))).context_version == ""


def test_a_broken_re_ranker_artifact_leaves_the_nlu_serving_alone(alice, ranker, caplog):
    row = CONTEXT_MODELS.active_version()
    with open(Path(row.path) / "ranker.txt", "a") as weights:
        weights.write("garbage\n")
    CONTEXT_MODELS.reset_loaded()
    result = understand("turn it up", _ctx(media="playing", media_kind="song"))
    assert result.intent == "audio_volume_up" and result.context_version == ""
    turn = handle_turn(alice, text="turn it up", now=timezone.now())
    assert turn.status == Turn.Status.OK


def test_train_nlu_context_trains_skips_and_refuses_clearly(alice, nlu_model):
    out = StringIO()
    call_command("train_nlu", "--context", stdout=out)
    assert "Held-out context examples" in out.getvalue() and "(active)" in out.getvalue()
    out = StringIO()
    call_command("train_nlu", "--context", "--if-missing", stdout=out)
    assert "nothing to do" in out.getvalue()
    out = StringIO()
    call_command("train_nlu", "--context", stdout=out)
    assert "Skipped" in out.getvalue()


def test_train_nlu_context_without_an_nlu_says_what_to_do(db):
    with pytest.raises(CommandError, match="No NLU version serves"):
        call_command("train_nlu", "--context")


def test_the_learning_cycle_trains_the_re_ranker_after_the_nlu():
    from learning.cycle import LEARNING_STEPS, steps_for

    names = [step.name for step in LEARNING_STEPS]
    assert names.index("context") == names.index("nlu") + 1
    assert "context" in [step.name for step in steps_for("nlu")]


def test_a_skill_hears_up_or_down_only_when_the_situation_chose_what_of(alice):
    from assistant.skills.base import Request

    def request(intent: str, read_as: str) -> Request:
        return Request(intent, "smart_home", {}, "turn it up", _ctx(), alice.home, words_read_as=read_as)

    assert request("iot_thermostat_set", "audio_volume_up").direction() == "up"
    assert request("iot_oven_set", "audio_volume_down").direction() == "down"
    assert request("iot_thermostat_set", "iot_thermostat_set").direction() is None  # up, down or set: unsaid
    assert request("iot_thermostat_set", "timer_set").direction() is None
