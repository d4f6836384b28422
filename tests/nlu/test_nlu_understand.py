"""understand() on sentences that are not in the seed data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assistant.intents import INTENTS, OUT_OF_SCOPE
from assistant.nlu import understand
from assistant.nlu.seed import seed_examples
from assistant.registry import ModelUnavailable as NluUnavailable
from assistant.text import normalise
from assistant.turns import TurnContext

CTX = TurnContext(
    user_id=1, home_id=1, device_id=None, room=None, has_screen=False, now=datetime(2026, 1, 1, tzinfo=UTC)
)

DECLINED = "<an intent no skill handles>"
NEW_SENTENCES = [
    ("Switch off the kitchen lights", "iot_hue_lightoff", {"room": "kitchen", "device": "lights"}),
    ("Set a timer for 10 minutes", "timer_set", {"duration": "10 minutes"}),
    ("What's the weather in Paris tomorrow?", "weather_query", {"place": "paris", "date": "tomorrow"}),
    # Requests no skill handles are named by a public intent (the fallback says "I can't book tickets yet").
    ("I need a plane ticket to Rome please", DECLINED, {}),
    ("it's very dark in here", "iot_hue_lightup", {}),
    ("I can barely hear it", "audio_volume_up", {}),
    ("it's freezing in the lounge", "iot_thermostat_set", {"room": "lounge"}),
    ("turn on the fan in the bedroom", "iot_wemo_on", {"device": "fan", "room": "bedroom"}),
    ("wake me up at 6:30 am on friday", "alarm_set", {"time": "6:30 am", "date": "friday"}),
    ("add eggs to my shopping list", "lists_createoradd", {"list_item": "eggs", "list_name": "shopping"}),
    ("play some jazz in the kitchen", "play_music", {"genre": "jazz"}),
    ("dim the living room lights to 30 percent", "iot_hue_lightdim", {"room": "living room", "level": "30 percent"}),
    ("preheat the oven to 200 degrees", "iot_oven_on", {"temperature": "200 degrees"}),
    ("how do I make pancakes", DECLINED, {}),
    ("water the plants in the garden", OUT_OF_SCOPE, {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("raw", "intent", "slots"), NEW_SENTENCES)
def test_new_sentences(nlu_model, raw, intent, slots):
    text = normalise(raw)
    assert text not in {e.text for e in seed_examples()}
    result = understand(text, CTX)
    if intent == DECLINED:
        assert result.intent not in INTENTS, result
        intent = result.intent
    assert result.intent == intent
    assert result.slots == slots
    assert result.out_of_scope == (intent == OUT_OF_SCOPE)
    assert 0.0 <= result.confidence <= 1.0
    assert result.model_version == nlu_model.version
    for span in result.spans:
        assert text[span.start : span.end] == span.value
        assert span.type in INTENTS[result.intent].slots


@pytest.mark.django_db
def test_alternatives_are_calibrated_probabilities(nlu_model):
    result = understand("please turn the volume down", CTX)
    assert len(result.alternatives) == 3
    probs = [p for _, p in result.alternatives]
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert sum(probs) <= 1.0 + 1e-6
    assert result.alternatives[0][0] == result.intent == "audio_volume_down"
    assert result.as_dict()["intent"] == "audio_volume_down"


@pytest.mark.django_db
def test_low_confidence_is_out_of_scope(nlu_model, settings):
    settings.NLU_OOS_THRESHOLD = 1.01  # nothing is confident enough
    result = understand("switch off the kitchen lights", CTX)
    assert result.intent == OUT_OF_SCOPE and result.out_of_scope
    assert result.alternatives[0][0] == "iot_hue_lightoff"
    assert result.slots == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "<script>alert(1)</script>",
        "a" * 5000,
        "lights " * 400,
        "\u00e9\u00e8 \u4f60\u597d \U0001f600",
        "0 0 0",
    ],
)
def test_odd_input_never_crashes(nlu_model, text):
    result = understand(text, CTX)
    assert result.intent in INTENTS
    assert 0.0 <= result.confidence <= 1.0
    for span in result.spans:
        assert text[span.start : span.end] == span.value


@pytest.mark.django_db
def test_no_model_raises_clear_error():
    from assistant.nlu import NLU_MODELS

    NLU_MODELS.reset_loaded()
    with pytest.raises(NluUnavailable, match="train_nlu"):
        understand("hello", CTX)


@pytest.mark.django_db
def test_no_active_version_raises_even_with_a_model_in_memory(nlu_model):
    assert understand("hello", CTX).intent == "general_greet"
    nlu_model.status = "retired"
    nlu_model.save()
    with pytest.raises(NluUnavailable):
        understand("hello", CTX)
