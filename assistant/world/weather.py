"""Weather forecasts behind a provider interface.

settings.WEATHER_PROVIDER names the class (dotted path) implementing
WeatherProvider; the default is the deterministic OfflineWeatherProvider, so
tests and demos never need a network. A real provider implements `forecast()`
the same way and raises UnknownPlace when it cannot find a place.
"""

from __future__ import annotations

import hashlib
import math
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import date
from functools import cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from assistant.world.places import Place, find_place

DEFAULT_PROVIDER = "assistant.world.weather.OfflineWeatherProvider"
_PLACE_NAME = re.compile(r"[a-zA-Z][a-zA-Z .'-]{1,38}[a-zA-Z.]")  # 3-40 letters, spaces, dots, dashes
_NOT_A_PLACE = re.compile(r"\b(city|town|place|area|there|somewhere|anywhere|another|the capital|beach|outside)\b")
MAX_DAYS_AHEAD = 7


class UnknownPlace(LookupError):
    """The provider does not know the place asked about."""


@dataclass(frozen=True)
class Forecast:
    place: str
    day: date
    condition: str  # "sunny", "partly cloudy", "cloudy", "rain", "showers", "thunderstorms", "snow", "fog"
    high_c: int
    low_c: int
    chance_of_rain: int  # percent

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        return data


class WeatherProvider(ABC):
    @abstractmethod
    def forecast(self, place: str, day: date) -> Forecast:
        """The forecast for `place` (a surface name) on `day`; raises UnknownPlace."""


class OfflineWeatherProvider(WeatherProvider):
    """Plausible, repeatable weather: climate by season from the gazetteer plus
    noise from a hash of place and date, so the same question gets the same answer."""

    def forecast(self, place: str, day: date) -> Forecast:
        known = find_place(place)
        if known is None:
            known = self._somewhere(place)
        return self._forecast(known, day)

    @staticmethod
    def _somewhere(place: str) -> Place:
        """A place the gazetteer lacks ("largo", "gonbad") gets a temperate northern climate,
        so every plausible name has weather; text that is not a place name is refused."""
        name = " ".join(place.split())
        if not _PLACE_NAME.fullmatch(name) or _NOT_A_PLACE.search(name.lower()):
            raise UnknownPlace(place)
        return Place(name.title(), "UTC", 12, 8, 0.45)

    @staticmethod
    def _noise(place: Place, day: date) -> tuple[float, float, float]:
        digest = hashlib.sha256(f"{place.name}|{day.isoformat()}".encode()).digest()
        return digest[0] / 255, digest[1] / 255, digest[2] / 255

    def _forecast(self, place: Place, day: date) -> Forecast:
        # Warmest around 20 July in the north, 20 January in the south.
        phase = (day.timetuple().tm_yday - 201) / 365.25 * 2 * math.pi
        seasonal = place.swing_c * math.cos(phase) * (-1 if place.southern else 1)
        a, b, c = self._noise(place, day)
        mean = place.mean_c + seasonal + (a - 0.5) * 6
        high = round(mean + 3 + b * 3)
        low = round(mean - 3 - b * 2)
        rain = round(min(0.95, max(0.0, place.wet + (c - 0.5) * 0.6)) * 100)
        if rain >= 70:
            condition = "snow" if high <= 1 else ("thunderstorms" if high >= 24 and a > 0.7 else "rain")
        elif rain >= 50:
            condition = "snow" if high <= 1 else "showers"
        elif rain >= 35:
            condition = "fog" if high < 10 and b < 0.2 else "cloudy"
        elif rain >= 20:
            condition = "partly cloudy"
        else:
            condition = "sunny"
        return Forecast(place.name, day, condition, high, low, rain)


@cache
def _provider_class(path: str) -> type[WeatherProvider]:
    return import_string(path)


def get_provider() -> WeatherProvider:
    """The configured provider (settings.WEATHER_PROVIDER, a dotted class path)."""
    return _provider_class(getattr(settings, "WEATHER_PROVIDER", DEFAULT_PROVIDER))()
