"""Greetings and jokes. Choices depend on ctx.now (never on import-time randomness),
so the same turn replayed gives the same answer."""

from __future__ import annotations

from assistant.models import Home
from assistant.skills.base import Request, local_now
from assistant.turns import Action, SkillResult, TurnContext

JOKES: tuple[str, ...] = (
    "I told my thermostat a joke. It didn't get warm to it.",
    "Why did the smart light break up with the switch? It felt constantly turned off.",
    "My robot vacuum quit its job. It said the work kept sucking.",
    "Why don't timers ever win arguments? They always run out of time.",
    "I asked the oven for advice. It said: just take it one degree at a time.",
    "Why was the garage door so calm? It knew how to let things go.",
    "What do you call a speaker that tells jokes? A pun-dit with good volume.",
    "Why did the shopping list go to therapy? It had too many issues to check off.",
    "The weather forecast and I have a lot in common: we're both partly cloudy before coffee.",
    "Why did the playlist feel lonely? Nobody pressed play on its feelings.",
    "I tried to write a joke about the smart plug, but it just didn't connect.",
    "Why did the calendar get promoted? Its days were numbered, in a good way.",
)

GREETINGS = {
    "morning": "Good morning! How can I help?",
    "afternoon": "Good afternoon! What can I do for you?",
    "evening": "Good evening! How can I help?",
    "night": "Hello! It's late, but I'm here. What do you need?",
}


def resolve(req: Request) -> Action:
    now = local_now(req.ctx, req.home)
    if req.intent == "general_joke":
        # Changes every minute, the same within one: repeatable for a replayed turn.
        index = (now.toordinal() * 24 * 60 + now.hour * 60 + now.minute) % len(JOKES)
        return req.action(joke=index)
    hour = now.hour
    part = "morning" if 5 <= hour < 12 else "afternoon" if hour < 18 else "evening" if hour < 23 else "night"
    if hour < 5:
        part = "night"
    return req.action(part_of_day=part)


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    if action.intent == "general_joke":
        index = int(action.params.get("joke", 0)) % len(JOKES)
        return SkillResult(text=JOKES[index], data={"joke": index})
    part = action.params.get("part_of_day", "morning")
    return SkillResult(text=GREETINGS.get(part, GREETINGS["morning"]), data={"part_of_day": part})
