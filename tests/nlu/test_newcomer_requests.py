"""What a new user tries in the first minutes, through the real seed model and the whole pipeline
(issue 13: help and small talk, whole-home requests, device questions)."""

from __future__ import annotations

import pytest

from assistant.pipeline.turn import handle_turn

pytestmark = pytest.mark.django_db


def speaker(user, name: str = "Kitchen speaker"):
    return user.home.devices.get(name=name)


@pytest.mark.parametrize("text", ["help", "what can you do", "what can i say"])
def test_help_answers_with_examples(alice, nlu_model, text):
    turn = handle_turn(alice, text=text, device=speaker(alice))
    assert turn.intent == "general_help"
    assert turn.response.startswith("I can help around the home. Try") and "kitchen lights" in turn.response


@pytest.mark.parametrize("text", ["thanks", "thank you"])
def test_thanks_is_not_a_greeting(alice, nlu_model, text):
    turn = handle_turn(alice, text=text, device=speaker(alice))
    assert turn.intent == "general_thanks" and "Good" not in turn.response


@pytest.mark.parametrize("text", ["never mind", "cancel", "forget it"])
def test_never_mind_ends_it(alice, nlu_model, text):
    turn = handle_turn(alice, text=text, device=speaker(alice))
    assert turn.intent == "general_stop" and turn.response == "OK."


def test_turn_off_all_the_lights_means_every_light_in_the_home(alice, nlu_model):
    handle_turn(alice, text="turn on the lights in the living room", device=speaker(alice))
    handle_turn(alice, text="turn on the lights in the office", device=speaker(alice))
    turn = handle_turn(alice, text="turn off all the lights", device=speaker(alice))
    assert turn.intent == "iot_hue_lightoff"
    assert not [d.room for d in alice.home.devices.filter(kind="light") if d.state.get("on")]
    turn = handle_turn(alice, text="turn on the lights everywhere", device=speaker(alice))
    assert turn.response == "Turning on all the lights."


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("is the garage door open", "The garage door is closed."),
        ("is the oven on", "The oven is off."),
        ("what's the status of the vacuum", "The robot vacuum is docked."),
    ],
)
def test_device_questions_answer_from_the_home(alice, nlu_model, text, answer):
    turn = handle_turn(alice, text=text, device=speaker(alice))
    assert turn.intent == "iot_device_query" and turn.response == answer
