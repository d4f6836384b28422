"""Weather from the configured WeatherProvider (offline by default, see world/weather.py).

The place defaults to the home's place; the day to today on the home's clock.
"this week"/"next week" summarise 7 days, "the weekend" Saturday and Sunday.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from assistant.models import Home
from assistant.skills.base import HERE_PLACE, Request, failed, local_now
from assistant.skills.liking import liked
from assistant.skills.values import format_day, parse_date
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world.weather import MAX_DAYS_AHEAD, Forecast, UnknownPlace, get_provider
from teaching.models import Preference

# "…in Fahrenheit": units said in the request itself win over the user's preference.
UNITS_SAID = re.compile(r"\b(fahrenheit|celsius|centigrade)\b", re.IGNORECASE)


def _days(text: str | None, today: date) -> list[date] | None:
    if not text:
        return [today]
    t = text.lower()
    if re.search(r"\bweekend\b", t):
        saturday = today + timedelta(days=(5 - today.weekday()) % 7)
        return [saturday, saturday + timedelta(days=1)] if today.weekday() != 6 else [today]
    if re.search(r"\bnext week\b", t):
        monday = today + timedelta(days=7 - today.weekday())
        return [monday + timedelta(days=i) for i in range(7)]
    if re.search(r"\b(this week|week|weekly|next few days|coming days)\b", t):
        return [today + timedelta(days=i) for i in range(7)]
    if match := re.fullmatch(r"(next )?(\d+) days?( forecast)?", t.strip()):
        return [today + timedelta(days=i) for i in range(min(int(match.group(2)), 30))]  # "10 day"
    day = parse_date(text, today)
    return [day] if day else None


def resolve(req: Request) -> Action:
    today = local_now(req.ctx, req.home).date()
    place_text = req.slot("place")
    if place_text and HERE_PLACE.fullmatch(place_text.lower().strip()):
        place_text = None
    place = place_text or req.home.place
    try:
        get_provider().forecast(place, today)
    except UnknownPlace:
        return req.fail(f"I don't know the weather in {place_text or place}.", not_found="place")
    days = _days(req.slot("date"), today)
    if days is None:
        return req.fail(f"I didn't understand when you mean by {req.slot('date')}.", needs="date")
    if days[0] < today:
        return req.fail("I can only tell you the forecast, not past weather.")
    if days[0] > today + timedelta(days=MAX_DAYS_AHEAD):
        return req.fail(f"I can only forecast {MAX_DAYS_AHEAD} days ahead.")
    days = [d for d in days if d <= today + timedelta(days=MAX_DAYS_AHEAD)]  # "next week": the days known
    # Degrees in the units asked for, else those the user prefers ("I prefer Fahrenheit"), else Celsius.
    where = {"place": place, "days": [d.isoformat() for d in days]}
    if said := UNITS_SAID.search(req.slot("unit") or req.text):
        return req.action(
            **where, units="fahrenheit" if said.group(1).lower() == "fahrenheit" else "celsius", units_said=True
        )
    preferred = liked(req.ctx.user_id, Preference.Kind.UNITS)
    if preferred is None:
        return req.action(**where, units="celsius")
    return req.action(**where, units=preferred.value, preference=preferred.source)


def _degrees(celsius: float, units: str) -> int:
    return round(celsius * 9 / 5 + 32) if units == "fahrenheit" else round(celsius)


def _range(low_c: float, high_c: float, units: str) -> str:
    suffix = " Fahrenheit" if units == "fahrenheit" else ""
    return f"from {_degrees(low_c, units)} to {_degrees(high_c, units)} degrees{suffix}"


def _sentence(f: Forecast, today: date, units: str) -> str:
    when = format_day(f.day, today)
    return (
        f"{when[0].upper()}{when[1:]} in {f.place}: {f.condition}, "
        f"{_range(f.low_c, f.high_c, units)}, {f.chance_of_rain}% chance of rain."
    )


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    today = local_now(ctx, home).date()
    provider = get_provider()
    try:
        days = [date.fromisoformat(d) for d in action.params.get("days") or [today.isoformat()]]
        forecasts = [provider.forecast(str(action.params.get("place") or home.place), d) for d in days]
    except UnknownPlace as err:
        return failed(f"I don't know the weather in {err}.")
    except ValueError:
        return failed("I couldn't work out which day you mean.")
    data = {"forecasts": [f.as_dict() for f in forecasts]}
    units = "fahrenheit" if action.params.get("units") == "fahrenheit" else "celsius"
    if len(forecasts) == 1:
        return SkillResult(text=_sentence(forecasts[0], today, units), data=data)
    highs, lows = [f.high_c for f in forecasts], [f.low_c for f in forecasts]
    wet = [f.day.strftime("%A") for f in forecasts if f.chance_of_rain >= 50]
    text = f"In {forecasts[0].place}, {format_day(days[0], today)} to {days[-1].strftime('%A')}: "
    text += _range(min(lows), max(highs), units)
    text += f", with rain likely on {', '.join(wet)}." if wet else ", mostly dry."
    return SkillResult(text=text, data=data)
