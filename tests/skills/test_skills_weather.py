"""Weather skill over the offline provider, without the NLU."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import transaction

from assistant import skills
from assistant.turns import NluResult, TurnContext
from assistant.world.weather import OfflineWeatherProvider

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # Saturday


def say(user, **slots: str):
    home = user.home
    ctx = TurnContext(user_id=user.pk, home_id=home.pk, device_id=None, room=None, has_screen=False, now=NOW)
    action = skills.resolve(NluResult(text="", intent="weather_query", confidence=0.99, slots=slots), ctx)
    with transaction.atomic():
        return action, skills.execute(action, ctx)


def test_the_weather_defaults_to_the_homes_place_and_today(alice):
    action, result = say(alice)
    assert result.ok
    assert action.params == {"place": "London", "days": ["2026-11-21"], "units": "celsius"}
    expected = OfflineWeatherProvider().forecast("London", date(2026, 11, 21))
    assert result.text.startswith("Today in London: ")
    assert f"from {expected.low_c} to {expected.high_c} degrees" in result.text


def test_a_place_and_a_day_are_resolved(alice):
    action, result = say(alice, place="miami florida", date="tomorrow")
    assert result.ok
    assert action.params["days"] == ["2026-11-22"]
    assert result.text.startswith("Tomorrow in Miami: ")
    _, result = say(alice, place="tokyo", date="on wednesday")
    assert result.text.startswith("On Wednesday in Tokyo: ")


def test_the_same_question_gets_the_same_answer(alice):
    assert say(alice, place="paris")[1].text == say(alice, place="paris")[1].text


def test_the_weekend_and_the_week_are_summarised(alice):
    action, result = say(alice, date="this weekend")
    assert action.params["days"] == ["2026-11-21", "2026-11-22"]
    assert result.text.startswith("In London, today to Sunday: ")
    action, _ = say(alice, date="this week")
    assert len(action.params["days"]) == 7


def test_an_unknown_place_or_a_day_out_of_range_is_a_helpful_failure(alice):
    _, result = say(alice, place="another city")
    assert not result.ok and result.text == "I don't know the weather in another city."
    _, result = say(alice, place="<b>42</b>")
    assert not result.ok
    _, result = say(alice, date="yesterday")
    assert not result.ok and "forecast" in result.text
    _, result = say(alice, date="the 30th")
    assert not result.ok and "7 days ahead" in result.text


def test_next_week_gives_the_days_that_can_be_forecast(alice):
    action, result = say(alice, date="next week")
    assert result.ok
    assert action.params["days"][0] == "2026-11-23"
    assert action.params["days"][-1] == "2026-11-28"


def test_a_place_missing_from_the_gazetteer_still_gets_plausible_weather(alice):
    _, result = say(alice, place="largo")
    assert result.ok and result.text.startswith("Today in Largo: ")


def test_my_area_means_the_homes_place(alice):
    action, _ = say(alice, place="my area")
    assert action.params["place"] == "London"


def test_a_ten_day_forecast_gives_the_week_that_can_be_forecast(alice):
    action, result = say(alice, date="10 day")
    assert result.ok and len(action.params["days"]) == 8
