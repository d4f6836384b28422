"""Requests the assistant cannot handle: say so, and say what it can do."""

from __future__ import annotations

from assistant.models import Home
from assistant.skills.base import Request
from assistant.turns import Action, SkillResult, TurnContext

CAPABILITIES = (
    "control your lights, heating, oven, garage door, TV, plugs and vacuum, play music and audiobooks, "
    "set timers and alarms, keep your shopping and to-do lists, and tell you the weather, the time or a joke"
)
REPLY = f"Sorry, I can't help with that. I can {CAPABILITIES}."


def resolve(req: Request) -> Action:
    return req.action()


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    # ok=False: the user's request was not carried out (the turn's status also says out of scope).
    return SkillResult(text=REPLY, ok=False, data={"capabilities": CAPABILITIES})
