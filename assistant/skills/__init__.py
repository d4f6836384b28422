"""Skills: resolve an understood utterance into an Action, then execute it on the user's home.

Each skill is a module with `resolve(request) -> Action` and
`execute(action, ctx, home) -> SkillResult`, registered under the skill name
that assistant/intents.INTENTS gives each intent. A request the skill cannot
resolve (unknown room, song, missing value…) becomes an Action carrying an
`error` sentence; executing it answers that sentence with ok=False. Nothing here
raises for bad slots: the user hears what went wrong.
"""

from __future__ import annotations

import unicodedata
from types import ModuleType

from django.db import transaction

from assistant.intents import INTENTS, OUT_OF_SCOPE
from assistant.models import Home
from assistant.skills import (
    chitchat,
    concepts,
    datetime_skill,
    dialogue,
    lists,
    music,
    out_of_scope,
    preferences,
    restaurants,
    smart_home,
    sports,
    timers,
    weather,
)
from assistant.skills.base import MAX_SLOT_CHARS, Request, failed
from assistant.turns import Action, NluResult, SkillResult, TurnContext

REGISTRY: dict[str, ModuleType] = {
    "smart_home": smart_home,
    "music": music,
    "timers": timers,
    "lists": lists,
    "weather": weather,
    "datetime": datetime_skill,
    "sports": sports,
    "restaurants": restaurants,
    "preferences": preferences,
    "concepts": concepts,
    "chitchat": chitchat,
    "dialogue": dialogue,
    "out_of_scope": out_of_scope,
}


def find_home(ctx: TurnContext) -> Home | None:
    """The home a turn acts on (the pipeline looks it up once and passes it to both stages)."""
    return Home.objects.filter(pk=ctx.home_id, owner_id=ctx.user_id).first()


def _home(ctx: TurnContext, home: Home | None) -> Home | None:
    if home is not None and home.pk == ctx.home_id and home.owner_id == ctx.user_id:
        return home
    return find_home(ctx)


def _clean_slots(slots: dict) -> dict[str, str]:
    cleaned = {}
    for name, value in (slots or {}).items():
        if isinstance(name, str) and isinstance(value, str):
            # Control characters (NUL above all) cannot be stored and mean nothing in a name.
            value = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
            value = " ".join(value.split())[:MAX_SLOT_CHARS]
            if value:
                cleaned[name] = value
    return cleaned


def resolve(nlu: NluResult, ctx: TurnContext, home: Home | None = None) -> Action:
    """Slots + context + home state -> an Action with resolved parameters.

    A model trained on imported data (SLURP, HWU, CLINC…) can predict intents that no
    skill here handles (email_query, qa_factoid…): those are answered as out of scope,
    and the action's `unhandled_intent` says which one it was (it lands in the trace).
    """
    unhandled = nlu.intent if nlu.intent not in INTENTS and not nlu.out_of_scope else None
    intent = nlu.intent if nlu.intent in INTENTS and not nlu.out_of_scope else OUT_OF_SCOPE
    skill = INTENTS[intent].skill
    home = _home(ctx, home)
    if home is None:
        return Action(skill=skill, intent=intent, params={"error": "I couldn't find your home."})
    request = Request(
        intent=intent,
        skill=skill,
        slots=_clean_slots(nlu.slots),
        text=nlu.text or "",
        ctx=ctx,
        home=home,
        alternatives=tuple(nlu.alternatives),
        words_read_as=nlu.before_context[0][0] if nlu.before_context else nlu.intent,
    )
    action = REGISTRY[skill].resolve(request)
    if unhandled:
        action = Action(
            skill=action.skill, intent=action.intent, params={**action.params, "unhandled_intent": unhandled}
        )
    return action


def execute(action: Action, ctx: TurnContext, home: Home | None = None) -> SkillResult:
    """Carry out an Action on the user's home; the caller wraps this in a transaction."""
    module = REGISTRY.get(action.skill)
    if module is None or action.intent not in INTENTS or INTENTS[action.intent].skill != action.skill:
        return failed("Sorry, I don't know how to do that.")
    if action.params.get("error"):
        return failed(str(action.params["error"]), **{k: v for k, v in action.params.items() if k != "error"})
    home = _home(ctx, home)
    if home is None:
        return failed("I couldn't find your home.")
    # Skills lock the rows they change (select_for_update), which needs a transaction; inside
    # the pipeline's own one (whose stages run in a savepoint) no further savepoint is needed.
    with transaction.atomic(savepoint=False):
        if module is concepts:
            # A taught concept runs other skills' requests, each resolved against the home as it is now.
            return concepts.execute(action, ctx, home, run_step=lambda step: _run_step(step, ctx, home))
        return module.execute(action, ctx, home)


def _run_step(step: dict, ctx: TurnContext, home: Home) -> SkillResult:
    """One request of a taught concept ({"text", "intent", "slots"}): resolved and executed."""
    understood = NluResult(
        text=str(step.get("text") or ""),
        intent=str(step.get("intent") or ""),
        confidence=1.0,
        slots=step.get("slots") or {},
    )
    action = resolve(understood, ctx, home)
    if action.skill == concepts.SKILL:
        return failed("A taught name can't run another one.")  # never nested, so never a cycle
    return execute(action, ctx, home)


__all__ = ["REGISTRY", "execute", "find_home", "resolve"]
