"""What every skill shares: the request it resolves, failure actions, the home's clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from assistant.intents import ACTIONS
from assistant.models import Home
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world.places import find_place

MAX_SLOT_CHARS = 200
# Place slots that mean the home's own place ("my area", "this city").
HERE_PLACE = re.compile(
    r"(here|home|outside|local(ly)?|around here|where i am|my (place|area|town|city|home town|location)|"
    r"this (area|place|city|town)|the (area|city|town)|home town|hometown)"
)


@dataclass(frozen=True)
class Request:
    """One understood utterance as a skill sees it: the intent, cleaned slots, its text, context and home."""

    intent: str
    skill: str
    slots: dict[str, str]
    text: str
    ctx: TurnContext
    home: Home
    alternatives: tuple[tuple[str, float], ...] = ()  # the NLU's (intent, probability), best first
    # What the words alone read as, when the situation chose another reading ("turn it up" read as the
    # volume, meant of the heating just mentioned): what they say to do ("up") carries over.
    words_read_as: str = ""

    def direction(self) -> str | None:
        """ "up" or "down" when the words alone said so and the situation chose what of."""
        said = ACTIONS.get(self.words_read_as, frozenset()) & {"up", "down"}
        return next(iter(said)) if len(said) == 1 and self.words_read_as != self.intent else None

    def slot(self, name: str) -> str | None:
        value = self.slots.get(name)
        return value or None

    def action(self, **params: Any) -> Action:
        return Action(skill=self.skill, intent=self.intent, params=params)

    def fail(self, text: str, **params: Any) -> Action:
        """An action that cannot be carried out; executing it says `text` with ok=False."""
        return Action(skill=self.skill, intent=self.intent, params={"error": text, **params})


def failed(text: str, **data: Any) -> SkillResult:
    return SkillResult(text=text, ok=False, data=data)


def home_zone(home: Home) -> ZoneInfo:
    """The home's time zone: that of its place, else settings.TIME_ZONE."""
    place = find_place(home.place)
    return place.zone if place else ZoneInfo(settings.TIME_ZONE)


def local_now(ctx: TurnContext, home: Home) -> datetime:
    """The turn's time on the home's clock (times people say are local to the home)."""
    return ctx.now.astimezone(home_zone(home))


def join(items: list[str], word: str = "and") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]
