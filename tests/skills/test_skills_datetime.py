"""Date and time skill: the home's clock or a named place, without the NLU."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction

from assistant import skills
from assistant.turns import NluResult, TurnContext

NOW = datetime(2026, 7, 4, 14, 5, tzinfo=UTC)  # London is on summer time (UTC+1)


def say(user, **slots: str):
    home = user.home
    ctx = TurnContext(user_id=user.pk, home_id=home.pk, device_id=None, room=None, has_screen=False, now=NOW)
    action = skills.resolve(NluResult(text="", intent="datetime_query", confidence=0.99, slots=slots), ctx)
    with transaction.atomic():
        return skills.execute(action, ctx)


def test_the_time_is_on_the_homes_clock(alice):
    result = say(alice)
    assert result.ok
    assert result.text == "It's 3:05 PM, on Saturday, 4 July 2026."


def test_the_time_in_a_named_place_uses_its_time_zone(alice):
    assert say(alice, place="tokyo").text == "It's 11:05 PM in Tokyo, on Saturday, 4 July 2026."
    assert say(alice, place="new york").text == "It's 10:05 AM in New York, on Saturday, 4 July 2026."


def test_a_date_gets_its_weekday(alice):
    assert say(alice, date="the 25th").text == "The 25th is Saturday, 25 July 2026."


def test_an_unknown_place_is_a_helpful_failure(alice):
    result = say(alice, place="narnia")
    assert not result.ok and result.text == "I don't know the time zone of narnia."
