"""Preferences taught in conversation, through handle_turn() with the trained NLU: taught on one
turn, used on the next underspecified request, listed, replaced, forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from assistant.models import Device
from assistant.pipeline.turn import handle_turn
from teaching.models import Preference

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

# (what the user teaches, the underspecified request it covers, what the reply must show)
TAUGHT_THEN_USED = [
    ("I'm a Warriors fan", "how did my team do?", "sports_query", "Warriors"),
    ("I support the Lakers", "how did my team do", "sports_query", "Lakers"),
    ("I like Italian food", "find a restaurant", "restaurant_query", "Italian"),
    ("I love indian food", "find me a restaurant nearby", "restaurant_query", "Indian"),
    ("my favourite music is jazz", "play some music", "play_music", "jazz"),
    ("I mostly listen to rock", "play some music", "play_music", "rock"),
    ("I prefer Fahrenheit", "what's the temperature outside", "weather_query", "Fahrenheit"),
    ("call me Sam", "hello", "general_greet", "Sam"),
    ("my name is Priya", "good morning", "general_greet", "Priya"),
]


def _talk(user, *utterances: str) -> list:
    turns, session = [], None
    for index, text in enumerate(utterances):
        turn = handle_turn(user, text=text, session=session, now=NOON + timedelta(seconds=10 * index))
        session = turn.session
        turns.append(turn)
    return turns


@pytest.mark.parametrize(("teach", "request_", "intent", "shown"), TAUGHT_THEN_USED)
def test_a_taught_preference_is_used_on_the_next_turn(alice, nlu_model, teach, request_, intent, shown):
    taught, used = _talk(alice, teach, request_)
    assert taught.intent == "preference_set", taught.trace
    assert taught.response.startswith("Got it")
    assert used.intent == intent
    assert shown in used.response, used.response


def test_without_a_preference_the_same_requests_ask_or_fall_back(alice, nlu_model):
    team, music, weather, greeting = _talk(
        alice, "how did my team do?", "play some music", "what's the temperature outside", "hello"
    )
    assert team.response.startswith("Which team?")
    assert "your favourite" not in music.response
    assert "Fahrenheit" not in weather.response
    assert greeting.response == "Good afternoon! What can I do for you?"


def test_a_default_room_is_used_for_lights_without_a_speaker(alice, nlu_model):
    taught, lights = _talk(alice, "my default room is the kitchen", "turn on the lights")
    assert lights.response == "Turning on the kitchen light."
    assert taught.response.startswith("Got it: your default room is the kitchen")
    states = {d.room: d.state["on"] for d in Device.objects.filter(home__owner=alice, kind="light")}
    assert states["kitchen"] is True
    assert states["bedroom"] is False


def test_what_do_you_know_about_me_lists_everything_name_first(alice, nlu_model):
    *_, listed = _talk(alice, "I like jazz music", "call me Sam", "I'm a Warriors fan", "what do you know about me")
    assert listed.intent == "preference_query"
    assert listed.response == (
        "Here's what I know: your name is Sam, you support the Golden State Warriors and you like jazz."
    )


def test_nothing_known_says_how_to_teach(alice, nlu_model):
    (listed,) = _talk(alice, "what do you know about me")
    assert listed.response.startswith("I don't know anything about you yet.")


def test_a_contradiction_replaces_and_says_so(alice, nlu_model):
    _, changed = _talk(alice, "I prefer Celsius", "I prefer Fahrenheit")
    assert changed.response == "OK, I've changed that: you prefer Fahrenheit now, instead of Celsius."
    assert list(Preference.objects.filter(user=alice).values_list("kind", "value")) == [("units", "fahrenheit")]


def test_forget_that_i_like_jazz_removes_it(alice, nlu_model):
    _, _, forgot, music = _talk(
        alice, "my favourite music is jazz", "call me Sam", "forget that I like jazz", "play some music"
    )
    assert forgot.response == "OK, I've forgotten that you like jazz."
    assert "jazz, your favourite" not in music.response
    assert list(Preference.objects.filter(user=alice).values_list("kind", flat=True)) == ["name"]


def test_forget_that_forgets_what_was_taught_last(alice, nlu_model):
    _, _, forgot = _talk(alice, "call me Sam", "I'm a Lakers fan", "forget that")
    assert forgot.response == "OK, I've forgotten that you support the Los Angeles Lakers."
    assert list(Preference.objects.filter(user=alice).values_list("kind", flat=True)) == ["name"]


def test_forgetting_what_was_never_taught_says_so(alice, nlu_model):
    _, forgot = _talk(alice, "my favourite music is rock", "forget that I like jazz")
    assert forgot.response == "I didn't know that you like jazz, so there's nothing to forget."
    assert Preference.objects.get(user=alice).value == "rock"


ASK_WHAT = "What should I remember?"  # the NLU tagged nothing it could remember


@pytest.mark.parametrize(
    ("said", "replies"),
    [
        # "blorgons" may be read as a team or as a cuisine: either way it is not one it knows.
        ("I'm a blorgons fan", ("I don't know a team called", "I don't know blorgons as a kind of food", ASK_WHAT)),
        ("call me <b>x</b>", ("I can only call you by a name", ASK_WHAT)),
        ("my favourite music is zzzxq", ("I don't have any zzzxq music", "I don't have any music by zzzxq", ASK_WHAT)),
        ("my default room is the moon", ("There's no room called", ASK_WHAT)),
    ],
)
def test_a_value_it_cannot_place_is_not_stored(alice, nlu_model, said, replies):
    (turn,) = _talk(alice, said)
    assert turn.intent == "preference_set"
    assert turn.response.startswith(replies), turn.response
    assert not Preference.objects.filter(user=alice).exists()


def test_one_users_preferences_are_not_anothers(alice, bob, nlu_model):
    _talk(alice, "call me Sam")
    (listed,) = _talk(bob, "what do you know about me")
    assert listed.response.startswith("I don't know anything about you yet.")
    (greeting,) = _talk(bob, "hello")
    assert "Sam" not in greeting.response


def test_sports_and_restaurants_answer_without_preferences_too(alice, nlu_model):
    lakers, italian = _talk(alice, "did the lakers win", "find me an italian restaurant")
    assert lakers.intent == "sports_query" and "Lakers" in lakers.response
    assert italian.intent == "restaurant_query" and "Italian" in italian.response


def test_learn_my_preferences_asks_one_question_at_a_time_each_skippable(alice, nlu_model):
    start, name, team, skipped = _talk(alice, "learn my preferences", "sam", "the lakers", "skip")
    assert start.response.endswith("What should I call you?")
    assert name.response.startswith("Got it: your name is Sam.") and name.response.endswith(
        "Which team do you support?"
    )
    assert team.response.endswith("What kind of music do you like?")
    assert skipped.response == "OK, skipping that. What food do you like best?"
    assert dict(Preference.objects.filter(user=alice).values_list("kind", "value")) == {
        "name": "Sam",
        "team": "Los Angeles Lakers",
    }


def test_learning_preferences_can_be_left_and_resumed(alice, nlu_model):
    _start, _name, left, other = _talk(alice, "learn my preferences", "call me Sam", "stop", "what time is it")
    assert left.response == 'OK. Say "learn my preferences" to carry on another time.'
    assert other.intent == "datetime_query"
    (resumed,) = _talk(alice, "learn my preferences")
    # What is known is not asked again.
    assert resumed.response.endswith("Which team do you support?")


def test_a_clear_request_in_the_middle_leaves_the_questions(alice, nlu_model):
    _, other, after = _talk(alice, "learn my preferences", "what's the weather like today", "sam")
    assert other.intent == "weather_query"
    assert not Preference.objects.filter(user=alice).exists()
    assert "your name is" not in after.response


def test_when_everything_is_known_there_is_nothing_to_ask(alice, nlu_model):
    for said in ("call me Sam", "I'm a Warriors fan", "I like jazz music", "I like Italian food", "I prefer Celsius"):
        _talk(alice, said)
    _talk(alice, "my default room is the kitchen")
    (asked,) = _talk(alice, "learn my preferences")
    assert asked.response.startswith("I already know everything I'd ask.")


def test_saying_it_again_changes_nothing_and_says_so(alice, nlu_model):
    _, again = _talk(alice, "my favourite music is jazz", "my favourite music is jazz")
    assert again.response == "I know: you like jazz."


def test_forget_that_long_after_teaching_asks_what_to_forget(alice, nlu_model):
    _talk(alice, "I prefer Fahrenheit")
    later = handle_turn(alice, text="forget that", now=NOON + timedelta(hours=2))
    assert later.response == 'What should I forget? Say, for example, "forget that I like jazz".'
    assert Preference.objects.filter(user=alice, kind="units").exists()


def test_units_said_in_the_request_win_over_the_preference(alice, nlu_model):
    _, said, usual = _talk(
        alice, "I prefer Celsius", "what's the temperature outside in fahrenheit", "what's the temperature outside"
    )
    assert said.action["params"]["units"] == "fahrenheit" and said.action["params"]["units_said"] is True
    assert "Fahrenheit" in said.response
    assert usual.action["params"] == {**usual.action["params"], "units": "celsius", "preference": "taught"}
    assert "Fahrenheit" not in usual.response


def test_a_restaurant_request_with_an_before_the_cuisine_finds_it(alice, nlu_model):
    (turn,) = _talk(alice, "find an italian restaurant")
    assert turn.action["params"]["cuisine"] == "italian" and "Italian" in turn.response
