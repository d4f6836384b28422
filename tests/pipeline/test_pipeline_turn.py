"""handle_turn(): one utterance through every stage, stored with its trace."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assistant import skills
from assistant.models import Device
from assistant.pipeline.turn import SORRY, TurnInputError, handle_turn
from feedback.models import RewriteRule, Session, Turn

STAGES = ["asr", "nlu", "rewrite", "resolve", "execute", "respond"]
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _speaker(user, room: str) -> Device:
    return Device.objects.get(home__owner=user, kind="speaker", room=room)


def test_a_turn_runs_every_stage_and_is_stored(alice, nlu_model):
    turn = handle_turn(alice, text="Switch off the kitchen lights, please!", now=NOON)
    stored = Turn.objects.get(pk=turn.pk)
    assert [s["stage"] for s in stored.trace] == STAGES
    for stage in stored.trace:
        assert stage["ms"] >= 0
        assert "input" in stage and "output" in stage and "model_version" in stage
    assert stored.asr_text == "switch off the kitchen lights please"
    assert stored.intent == "iot_hue_lightoff"
    assert stored.trace[1]["model_version"] == nlu_model.version
    assert stored.status == Turn.Status.OK
    assert stored.response
    assert stored.created_at == NOON


def test_turn_on_the_lights_means_the_room_of_the_device_spoken_to(alice, nlu_model):
    speaker = _speaker(alice, "kitchen")
    turn = handle_turn(alice, text="turn on the lights", device=speaker)
    assert turn.context["room"] == "kitchen"
    lights = Device.objects.filter(home__owner=alice, kind="light")
    assert all(d.state["on"] for d in lights if d.room == "kitchen")
    assert not any(d.state["on"] for d in lights if d.room == "bedroom")


def test_the_most_confident_hypothesis_of_an_nbest_list_is_used(alice, nlu_model):
    turn = handle_turn(
        alice, nbest=[{"text": "turn of the lie", "confidence": 0.3}, {"text": "what time is it", "confidence": 0.8}]
    )
    assert turn.asr_text == "what time is it"
    assert turn.asr_confidence == 0.8
    assert turn.nbest[0]["text"] == "turn of the lie"


def test_an_nbest_reading_is_chosen_over_hypotheses_and_intents(alice, nlu_model):
    """The recogniser's favourite is noise; the runner-up is a request: the runner-up is acted on, and the
    trace shows both readings."""
    turn = handle_turn(
        alice,
        nbest=[
            {"text": "turn of the kitten lied", "confidence": 0.5},
            {"text": "turn off the kitchen lights", "confidence": 0.45},
            {"text": "turn off the kitchen light", "confidence": 0.05},
        ],
    )
    assert turn.asr_text == "turn off the kitchen lights"
    assert turn.asr_confidence == 0.45
    assert turn.intent == "iot_hue_lightoff"
    nlu_stage = turn.trace[1]
    assert nlu_stage["stage"] == "nlu" and nlu_stage["input"]["chosen"] == 1
    assert [r["text"] for r in nlu_stage["input"]["hypotheses"]][:2] == [
        "turn of the kitten lied",
        "turn off the kitchen lights",
    ]


def test_a_failing_stage_gives_an_apology_and_the_turn_is_still_stored(alice, nlu_model, monkeypatch):
    def broken(action, ctx, home=None):
        raise RuntimeError("the oven is on fire")

    monkeypatch.setattr(skills, "execute", broken)
    turn = handle_turn(alice, text="turn on the oven")
    stored = Turn.objects.get(pk=turn.pk)
    assert stored.status == Turn.Status.ERROR
    assert stored.response == SORRY
    assert stored.trace[-1]["stage"] == "execute"
    assert "the oven is on fire" in stored.trace[-1]["error"]


def test_a_missing_model_is_a_stage_error_not_a_crash(alice):
    from assistant.nlu import NLU_MODELS

    NLU_MODELS.reset_loaded()  # a fresh process that has never loaded a model
    turn = handle_turn(alice, text="play some jazz")
    assert turn.status == Turn.Status.ERROR
    assert turn.response == SORRY
    assert turn.trace[1]["stage"] == "nlu"
    assert turn.trace[1]["error"]


def test_an_active_rewrite_rule_is_applied_and_traced(alice, nlu_model):
    RewriteRule.objects.create(source_text="make it bright", target_text="turn on the kitchen lights", status="active")
    turn = handle_turn(alice, text="make it bright")
    assert turn.rewrite["to"] == "turn on the kitchen lights"
    assert turn.trace[2]["output"]["rule_id"] == turn.rewrite["rule_id"]
    if turn.rewrite["kept"]:
        assert turn.intent == "iot_hue_lighton"


def test_a_session_continues_with_its_device(alice, nlu_model):
    first = handle_turn(alice, text="what time is it", device=_speaker(alice, "bedroom"))
    second = handle_turn(alice, text="tell me a joke", session=first.session)
    assert second.session_id == first.session_id
    assert second.context["room"] == "bedroom"


def test_another_users_session_is_refused(alice, bob, nlu_model):
    bobs = handle_turn(bob, text="hello")
    with pytest.raises(TurnInputError) as excinfo:
        handle_turn(alice, text="hello", session=bobs.session)
    assert excinfo.value.code == "wrong_session"
    assert Turn.objects.filter(user=alice).count() == 0


def test_another_users_device_is_refused(alice, bob, nlu_model):
    with pytest.raises(TurnInputError) as excinfo:
        handle_turn(alice, text="hello", device=_speaker(bob, "kitchen"))
    assert excinfo.value.code == "wrong_device"
    assert Session.objects.filter(user=alice).count() == 0


def test_html_is_stored_as_typed(alice, nlu_model):
    turn = handle_turn(alice, text="<script>alert(1)</script>")
    assert Turn.objects.get(pk=turn.pk).raw_text == "<script>alert(1)</script>"


def test_as_dict_has_the_public_shape(alice, nlu_model):
    data = handle_turn(alice, text="set a timer for 10 minutes").as_dict()
    assert {"turn_id", "asr", "nlu", "rewrite", "action", "response", "trace"} <= set(data)
    assert set(data["nlu"]) >= {"intent", "slots", "confidence"}
    assert all({"stage", "ms"} <= set(s) for s in data["trace"])


# Context takes part through resolution: the same words, understood the same way, act on
# what the device spoken to and the home's state make them mean.
@pytest.mark.parametrize(
    ("room", "kind", "reply"),
    [("living room", "film", "Playing the film The Hunger Games."), ("kitchen", "audiobook", "Playing the audiobook")],
)
def test_play_hunger_games_is_the_film_on_a_screen_and_the_audiobook_elsewhere(alice, nlu_model, room, kind, reply):
    turn = handle_turn(alice, text="play hunger games", device=_speaker(alice, room), now=NOON)
    assert turn.context["has_screen"] == (kind == "film")
    assert turn.intent == "play_media" and turn.slots == {"title": "hunger games"}
    assert turn.action["params"]["kind"] == kind
    assert turn.response.startswith(reply)


def test_whats_the_temperature_is_the_ovens_while_it_is_on(alice, nlu_model):
    kitchen = _speaker(alice, "kitchen")
    assert handle_turn(alice, text="what's the temperature", device=kitchen).action["params"]["source"] == "thermostat"
    handle_turn(alice, text="preheat the oven to 180 degrees", device=kitchen)
    turn = handle_turn(alice, text="what's the temperature", device=kitchen)
    assert turn.intent == "iot_temperature_query" and turn.action["params"]["source"] == "oven"
    assert turn.response == "The oven is set to 180 degrees."
