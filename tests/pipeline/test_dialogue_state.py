"""Dialogue state through handle_turn(): a question the assistant asks is pending on the session, and
the next utterance is read as its answer first (teaching/dialogue.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from assistant.models import Device
from assistant.pipeline.turn import SURVEY_QUESTION, TurnInputError, handle_turn
from feedback.models import Feedback, Turn
from teaching.models import PendingQuestion

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _garage(user) -> Device:
    return Device.objects.get(home__owner=user, kind="garage_door")


def _conversation(user, *utterances: str, start=NOON, gap=timedelta(seconds=5)) -> list[Turn]:
    """Say each utterance in one session, a few seconds apart."""
    turns: list[Turn] = []
    session = None
    for index, text in enumerate(utterances):
        turn = handle_turn(user, text=text, session=session, now=start + index * gap)
        session = turn.session
        turns.append(turn)
    return turns


def test_the_garage_door_answers_which_device_and_never_opens_the_garage(alice, nlu_model):
    asked, answered = _conversation(alice, "is it on", "the garage door")
    assert asked.response == "Which device do you want to know about?"
    assert answered.intent == "iot_device_query"
    assert answered.slots["device"]
    assert "garage door is closed" in answered.response.lower()
    assert _garage(alice).state["open"] is False
    assert not PendingQuestion.objects.filter(session=answered.session).exists()
    dialogue = next(s for s in answered.trace if s["stage"] == "dialogue")
    assert dialogue["input"]["needs"] == "device" and dialogue["output"]["reading"] == "fill"


def test_a_temperature_answers_what_temperature(alice, nlu_model):
    asked, answered = _conversation(alice, "i'm cold", "22 degrees")
    assert asked.response == "What temperature would you like the heating at?"
    assert answered.intent == "iot_thermostat_set"
    thermostat = Device.objects.get(home__owner=alice, kind="thermostat")
    assert thermostat.state["target_c"] == 22


def test_a_room_answers_which_room(alice, nlu_model):
    asked, answered = _conversation(alice, "turn on the lights", "the kitchen")
    assert asked.response.startswith("Which room?")
    assert answered.intent == "iot_hue_lighton"
    lights = Device.objects.filter(home__owner=alice, kind="light")
    assert all(d.state["on"] for d in lights if d.room == "kitchen")
    assert not any(d.state["on"] for d in lights if d.room == "bedroom")


def test_never_mind_drops_the_question(alice, nlu_model):
    asked, cancelled, later = _conversation(alice, "set a timer", "never mind", "ten minutes")
    assert asked.response == "For how long should I set the timer?"
    assert cancelled.response == "OK, never mind."
    # With nothing pending a bare value is not acted on: nothing asked for a timer any more.
    assert later.intent != "timer_set"
    assert not alice.home.timers.exists()


def test_a_clear_new_request_is_taken_as_one(alice, nlu_model):
    asked, other = _conversation(alice, "set a timer", "what's the weather like today")
    assert asked.response == "For how long should I set the timer?"
    assert other.intent == "weather_query"
    assert not PendingQuestion.objects.filter(session=other.session).exists()


def test_an_answer_it_cannot_use_is_asked_again_once_then_dropped(alice, nlu_model):
    _asked, again, dropped = _conversation(alice, "set a timer", "yes", "yes")
    assert again.response == "Sorry, I didn't get that. For how long should I set the timer?"
    assert next(s for s in dropped.trace if s["stage"] == "dialogue")["input"]["reasks"] == 1
    assert dropped.response == "Let's leave that for now. What can I do for you?"
    assert not PendingQuestion.objects.filter(session=dropped.session).exists()


def test_a_pending_question_never_answered_goes_stale(alice, nlu_model, settings):
    settings.PENDING_QUESTION_MINUTES = 5
    asked, late = _conversation(alice, "is it on", "the garage door", gap=timedelta(minutes=10))
    assert asked.response == "Which device do you want to know about?"
    assert late.intent != "iot_device_query"  # ten minutes later, a bare value answers nothing
    assert not any(s["stage"] == "dialogue" for s in late.trace)
    assert _garage(alice).state["open"] is False
    assert not PendingQuestion.objects.exists()


def test_another_session_does_not_see_the_question(alice, nlu_model):
    asked = handle_turn(alice, text="is it on", now=NOON)
    elsewhere = handle_turn(alice, text="the garage door", now=NOON + timedelta(seconds=5))
    assert elsewhere.session_id != asked.session_id
    assert "closed" not in elsewhere.response
    assert PendingQuestion.objects.filter(session=asked.session).exists()


def test_opening_the_garage_asked_for_in_so_many_words_just_opens_it(alice, nlu_model):
    (turn,) = _conversation(alice, "open the garage door")
    assert turn.response == "Opening the garage door."
    assert _garage(alice).state["open"] is True


def test_opening_the_garage_on_a_guess_waits_for_a_yes(alice, nlu_model, settings):
    settings.CONFIRM_BELOW_CONFIDENCE = 1.01  # no reading is sure enough: every opening is confirmed
    asked, yes = _conversation(alice, "open the garage door", "yes please")
    assert asked.response == "Do you want me to open the garage door?"
    assert asked.action["params"]["confirming"]["intent"] == "iot_garage_open"
    pending_state = asked.trace[-2]["output"]  # execute: nothing opened yet
    assert pending_state["ok"] is True
    assert yes.response == "Opening the garage door."
    assert _garage(alice).state["open"] is True


def test_no_leaves_the_garage_closed(alice, nlu_model, settings):
    settings.CONFIRM_BELOW_CONFIDENCE = 1.01
    asked, no = _conversation(alice, "open the garage door", "no")
    assert asked.response == "Do you want me to open the garage door?"
    assert no.response == "OK, I'll leave it."
    assert _garage(alice).state["open"] is False
    assert not PendingQuestion.objects.exists()


def test_yes_with_nothing_asked_does_nothing(alice, nlu_model):
    (turn,) = _conversation(alice, "yes")
    assert turn.response == "I hadn't asked anything. What can I do for you?"
    assert _garage(alice).state["open"] is False


def test_a_spoken_answer_to_the_survey_is_stored_as_feedback(alice, nlu_model, settings):
    settings.SURVEY_RATE = 1.0
    asked, answer = _conversation(alice, "what's the weather like today", "no it didn't")
    assert asked.response.endswith(SURVEY_QUESTION)
    assert answer.response.startswith("Sorry about that.")
    assert list(Feedback.objects.filter(turn=asked).values_list("kind", flat=True)) == ["thumbs_down"]
    assert not answer.survey_asked  # an answer is not surveyed itself


def test_a_request_after_the_survey_is_just_a_request(alice, nlu_model, settings):
    settings.SURVEY_RATE = 1.0
    _asked, other = _conversation(alice, "what's the weather like today", "turn off the kitchen lights")
    assert other.intent == "iot_hue_lightoff"
    assert not Feedback.objects.exists()


@pytest.mark.parametrize(
    "bad", ["<script>alert(1)</script>", "x" * 900, "🙂 🙂 the", "'; drop table feedback_turn; --"]
)
def test_bad_answers_get_a_clear_reply_and_lose_nothing(alice, nlu_model, bad):
    asked, answered = _conversation(alice, "is it on", bad)
    assert answered.response
    assert answered.status != Turn.Status.ERROR
    assert Turn.objects.filter(pk=asked.pk).exists()
    assert _garage(alice).state["open"] is False


def test_an_answer_with_no_words_is_refused_and_the_question_still_waits(alice, nlu_model):
    (asked,) = _conversation(alice, "is it on")
    with pytest.raises(TurnInputError):
        handle_turn(alice, text="🙂🙂🙂", session=asked.session, now=NOON + timedelta(seconds=5))
    answered = handle_turn(alice, text="the garage door", session=asked.session, now=NOON + timedelta(seconds=9))
    assert "garage door is closed" in answered.response.lower()
