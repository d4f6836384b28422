"""Greetings, jokes and out-of-scope replies, without the NLU."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from assistant import skills
from assistant.nlu.labels import SLURP_INTENTS
from assistant.skills.chitchat import JOKES
from assistant.skills.out_of_scope import CANNOT_YET, MAX_WORDS
from assistant.turns import NluResult, TurnContext


def say(user, intent: str, now: datetime, out_of_scope: bool = False, text: str = "", alternatives=()):
    home = user.home
    ctx = TurnContext(user_id=user.pk, home_id=home.pk, device_id=None, room=None, has_screen=False, now=now)
    nlu = NluResult(
        text=text, intent=intent, confidence=0.99, slots={}, out_of_scope=out_of_scope, alternatives=alternatives
    )
    return skills.execute(skills.resolve(nlu, ctx), ctx)


def test_a_greeting_fits_the_time_of_day_at_home(alice):
    assert say(alice, "general_greet", datetime(2026, 11, 21, 8, 0, tzinfo=UTC)).text.startswith("Good morning")
    assert say(alice, "general_greet", datetime(2026, 11, 21, 19, 0, tzinfo=UTC)).text.startswith("Good evening")


def test_a_joke_is_the_same_within_a_minute_and_changes_over_time(alice):
    now = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    first = say(alice, "general_joke", now)
    assert first.ok and first.text in JOKES
    assert say(alice, "general_joke", now + timedelta(seconds=30)).text == first.text
    later = {say(alice, "general_joke", now + timedelta(minutes=m)).text for m in range(5)}
    assert len(later) == 5


def test_out_of_scope_is_short_and_suggests_something_the_assistant_can_do(alice):
    result = say(alice, "out_of_scope", datetime(2026, 11, 21, 8, 0, tzinfo=UTC), text="paint the fence")
    assert not result.ok
    assert len(result.text.split()) <= MAX_WORDS
    assert "I can" in result.text or "ask me to" in result.text


def test_out_of_scope_is_not_the_same_sentence_every_time(alice):
    start = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    replies = [say(alice, "out_of_scope", start + timedelta(seconds=s), text="paint the fence").text for s in range(20)]
    assert len(set(replies)) >= 4
    assert all(len(r.split()) <= MAX_WORDS for r in replies)
    # The same turn replayed says the same thing.
    assert say(alice, "out_of_scope", start, text="paint the fence").text == replies[0]


def test_out_of_scope_suggests_the_nearest_thing_the_nlu_thought_of(alice):
    result = say(
        alice, "out_of_scope", datetime(2026, 11, 21, 8, 0, tzinfo=UTC), out_of_scope=True, text="brew the lights",
        alternatives=(("out_of_scope", 0.5), ("iot_hue_lighton", 0.3), ("play_music", 0.2)),
    )  # fmt: skip
    assert "control your lights" in result.text or "turn on the lights" in result.text
    assert result.data["suggested"] == "smart_home"


def test_an_intent_without_a_skill_is_named(alice):
    result = say(alice, "takeaway_order", datetime(2026, 11, 21, 8, 0, tzinfo=UTC), text="order me a pizza")
    assert not result.ok
    assert "order food" in result.text.lower() and len(result.text.split()) <= MAX_WORDS


def test_every_public_intent_without_a_skill_has_a_name():
    assert {i for i, ours in SLURP_INTENTS.items() if ours is None} <= set(CANNOT_YET)
    assert all(len(f"Sorry, I can't {asked} yet, but I can".split()) <= 12 for asked in CANNOT_YET.values())


def test_a_low_confidence_intent_marked_out_of_scope_acts_on_nothing(alice):
    result = say(alice, "iot_garage_open", datetime(2026, 11, 21, 8, 0, tzinfo=UTC), out_of_scope=True)
    assert not result.ok and len(result.text.split()) <= MAX_WORDS
    assert alice.home.devices.get(kind="garage_door").state == {"open": False}


def say_to(user, intent: str, speaker: str):
    device = user.home.devices.get(name=speaker)
    ctx = TurnContext(
        user_id=user.pk, home_id=user.home.pk, device_id=device.pk, room=device.room,
        has_screen=bool(device.has_screen), now=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
    )  # fmt: skip
    nlu = NluResult(text="", intent=intent, confidence=0.99, slots={})
    action = skills.resolve(nlu, ctx)
    return action, skills.execute(action, ctx)


def test_help_gives_three_examples_that_fit_the_device_spoken_to(alice):
    _, kitchen = say_to(alice, "general_help", "Kitchen speaker")
    assert kitchen.ok and kitchen.data["examples"][0] == "turn on the kitchen lights"
    assert "play some jazz" in kitchen.data["examples"] and len(kitchen.data["examples"]) == 3
    _, display = say_to(alice, "general_help", "Living room display")
    assert "play the hunger games" in display.data["examples"]  # a screen plays films
    assert len(display.text.split()) <= 30


def test_thanks_is_answered_as_thanks_not_as_a_greeting(alice):
    result = say(alice, "general_thanks", datetime(2026, 11, 21, 8, 0, tzinfo=UTC))
    assert result.ok and result.text in ("You're welcome!", "Happy to help.", "Any time!", "My pleasure.")


def test_stop_pauses_what_is_playing_and_otherwise_just_acknowledges(alice):
    from assistant.models import MediaPlayer

    _, result = say_to(alice, "general_stop", "Kitchen speaker")
    assert result.ok and result.text == "OK."
    MediaPlayer.objects.update_or_create(home=alice.home, defaults={"status": "playing", "item": {"title": "x"}})
    action, result = say_to(alice, "general_stop", "Kitchen speaker")
    assert (action.skill, action.intent) == ("music", "music_pause")
    assert result.ok and MediaPlayer.objects.get(home=alice.home).status == "paused"
