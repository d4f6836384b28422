"""Dialogue replies: what the assistant says to "yes", "no", a bare value, a cancelled question,
an answer it could not use, and the question it asks before acting ("Do you want me to open the
garage door?"). Which question an answer belongs to is decided in teaching/dialogue.py; the pipeline
turns that reading into one of these actions.
"""

from __future__ import annotations

from assistant.intents import INTENTS
from assistant.models import Home
from assistant.skills.base import Request
from assistant.turns import Action, SkillResult, TurnContext

SKILL = "dialogue"


def confirm_question(action: Action) -> str:
    """ "Do you want me to open the garage door?" for an action that waits for a yes."""
    return f"Do you want me to {INTENTS[action.intent].description}?"


def answered(reply: str, **params) -> Action:
    """An action that just says `reply` (how a pending question was closed or asked again)."""
    return Action(skill=SKILL, intent="dialogue_inform", params={"reply": reply, **params})


def resolve(req: Request) -> Action:
    """A dialogue intent with no question pending: nothing was asked, so say so."""
    if req.intent == "dialogue_inform":
        value = next(iter(req.slots.values()), None) or req.text
        return req.action(reply=f"What would you like me to do with {value}?" if value else "What can I do for you?")
    return req.action(reply="I hadn't asked anything. What can I do for you?")


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    reply = str(action.params.get("reply") or "OK.")
    data = {k: v for k, v in action.params.items() if k != "reply"}
    return SkillResult(text=reply, ok=not data.get("unanswered"), data=data)
