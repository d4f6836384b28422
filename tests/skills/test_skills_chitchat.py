"""Greetings, jokes and out-of-scope replies, without the NLU."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from assistant import skills
from assistant.skills.chitchat import JOKES
from assistant.skills.out_of_scope import REPLY
from assistant.turns import NluResult, TurnContext


def say(user, intent: str, now: datetime, out_of_scope: bool = False):
    home = user.home
    ctx = TurnContext(user_id=user.pk, home_id=home.pk, device_id=None, room=None, has_screen=False, now=now)
    nlu = NluResult(text="", intent=intent, confidence=0.99, slots={}, out_of_scope=out_of_scope)
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


def test_out_of_scope_says_what_the_assistant_can_do(alice):
    result = say(alice, "out_of_scope", datetime(2026, 11, 21, 8, 0, tzinfo=UTC))
    assert not result.ok
    assert result.text == REPLY
    assert "lights" in result.text and "timers" in result.text


def test_a_low_confidence_intent_marked_out_of_scope_acts_on_nothing(alice):
    result = say(alice, "iot_garage_open", datetime(2026, 11, 21, 8, 0, tzinfo=UTC), out_of_scope=True)
    assert result.text == REPLY
    assert alice.home.devices.get(kind="garage_door").state == {"open": False}
