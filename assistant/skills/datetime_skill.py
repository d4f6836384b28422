"""The time and date: on the home's clock, or in a named place (built-in gazetteer).

The answer always gives both the time and the date: "what time is it" and
"what's the date" share one intent, and one sentence answers either. A date
slot ("what day is the 25th") gets the weekday of that date.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from assistant.models import Home
from assistant.skills.base import HERE_PLACE, Request, home_zone
from assistant.skills.values import format_clock, parse_date
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world.places import find_place


def _long_date(day: date) -> str:
    return f"{day.strftime('%A')}, {day.day} {day.strftime('%B')} {day.year}"


def resolve(req: Request) -> Action:
    place_text = req.slot("place")
    if place_text and HERE_PLACE.fullmatch(place_text.lower().strip()):
        place_text = None  # "this city": the home's clock
    if place_text:
        place = find_place(place_text)
        if place is None:
            return req.fail(f"I don't know the time zone of {place_text}.", not_found="place")
        return req.action(place=place.name, tz=place.tz)
    date_text = req.slot("date")
    if date_text:
        day = parse_date(date_text, req.ctx.now.astimezone(home_zone(req.home)).date())
        if day is not None:
            return req.action(date=day.isoformat(), said=date_text)
    return req.action()


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    params = action.params
    if params.get("date"):
        day = date.fromisoformat(params["date"])
        return SkillResult(text=f"{params.get('said', 'That').capitalize()} is {_long_date(day)}.", data=params)
    if params.get("tz"):
        now = ctx.now.astimezone(ZoneInfo(params["tz"]))
        where = f" in {params['place']}"
    else:
        now = ctx.now.astimezone(home_zone(home))
        where = ""
    text = f"It's {format_clock(now)}{where}, on {_long_date(now.date())}."
    return SkillResult(text=text, data={"local_time": now.isoformat(), "place": params.get("place") or home.place})
