"""The weather provider interface and its offline implementation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from assistant.world.places import find_place
from assistant.world.weather import Forecast, OfflineWeatherProvider, UnknownPlace, WeatherProvider, get_provider


def test_the_offline_provider_is_the_default_and_implements_the_interface():
    provider = get_provider()
    assert isinstance(provider, OfflineWeatherProvider)
    assert isinstance(provider, WeatherProvider)


def test_the_provider_is_chosen_by_a_setting(settings):
    settings.WEATHER_PROVIDER = "tests.world.test_world_weather.AlwaysSunny"
    assert isinstance(get_provider(), AlwaysSunny)


class AlwaysSunny(WeatherProvider):
    def forecast(self, place: str, day: date) -> Forecast:
        return Forecast(place, day, "sunny", 25, 15, 0)


def test_forecasts_are_deterministic_for_a_place_and_day():
    provider = OfflineWeatherProvider()
    day = date(2026, 11, 21)
    assert provider.forecast("London", day) == provider.forecast("london", day)
    days = [provider.forecast("London", day + timedelta(days=i)) for i in range(14)]
    assert len({(f.high_c, f.condition) for f in days}) > 1


def test_forecasts_are_plausible_for_the_season_and_hemisphere():
    provider = OfflineWeatherProvider()
    for offset in range(0, 30, 3):
        winter_london = provider.forecast("London", date(2027, 1, 10) + timedelta(days=offset))
        summer_london = provider.forecast("London", date(2026, 7, 10) + timedelta(days=offset))
        summer_sydney = provider.forecast("Sydney", date(2027, 1, 10) + timedelta(days=offset))
        assert -8 <= winter_london.low_c <= winter_london.high_c <= 14
        assert 12 <= summer_london.high_c <= 28
        assert summer_sydney.high_c >= 19
        assert 0 <= winter_london.chance_of_rain <= 100


@pytest.mark.parametrize("text", ["", "42", "<script>", "somewhere", "x" * 80])
def test_text_that_is_not_a_place_name_raises_unknown_place(text):
    with pytest.raises(UnknownPlace):
        OfflineWeatherProvider().forecast(text, date(2026, 11, 21))


def test_a_place_name_missing_from_the_gazetteer_gets_a_temperate_climate():
    forecast = OfflineWeatherProvider().forecast("gonbad", date(2026, 11, 21))
    assert forecast.place == "Gonbad"
    assert -5 <= forecast.low_c <= forecast.high_c <= 20


@pytest.mark.parametrize(
    ("said", "name"),
    [("miami florida", "Miami"), ("new york", "New York"), ("japan", "Tokyo"), ("long island new york", "New York"),
     ("sydnee", "Sydney"), ("the uk", "London"), ("orlando fl", "Orlando")],
)  # fmt: skip
def test_places_are_found_by_name_alias_and_misspelling(said, name):
    place = find_place(said)
    assert place is not None and place.name == name
