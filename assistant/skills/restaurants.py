"""Restaurants near the home (offline, assistant/world/restaurants.py): "find an Italian
restaurant", and with a cuisine taught ("I like Italian food"), "find a restaurant"."""

from __future__ import annotations

from assistant.models import Home
from assistant.skills.base import Request, failed, join
from assistant.skills.liking import INFERRED, PRIOR, liked
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world.restaurants import find_cuisine, recommend
from teaching.models import Preference


def resolve(req: Request) -> Action:
    cuisine_text = req.slot("cuisine")
    if cuisine_text:
        cuisine = find_cuisine(cuisine_text)
        if cuisine is None:
            return req.fail(f"I don't know any {cuisine_text} restaurants near you.", not_found="cuisine")
        return req.action(cuisine=cuisine)
    favourite = liked(req.ctx.user_id, Preference.Kind.CUISINE)
    cuisine = find_cuisine(favourite.value) if favourite else None
    if cuisine is None:
        return req.action(cuisine=None)
    return req.action(cuisine=cuisine, preference=favourite.source)


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    cuisine = action.params.get("cuisine")
    chosen = recommend(cuisine)
    if not chosen:
        return failed(f"I don't know any {cuisine} restaurants near you.")
    best = chosen[0]
    kind = f"{cuisine_word(cuisine)} " if cuisine else ""
    source = action.params.get("preference") if cuisine else None
    because = {None: "", INFERRED: " (you often ask for it)", PRIOR: " (popular here)"}.get(source, " (you like it)")
    text = (
        f"The best {kind}restaurant near you{because} is {best.name} in {best.area}, rated {best.rating:g}"
        f" ({best.price})."
    )
    if len(chosen) > 1:
        text += f" Also good: {join([r.name for r in chosen[1:]])}."
    return SkillResult(text=text, data={"restaurants": [r.name for r in chosen], "cuisine": cuisine})


def cuisine_word(cuisine: str) -> str:
    """ "Italian" for a nationality, "vegetarian" as it is."""
    return cuisine if cuisine in ("vegetarian", "vegan", "seafood", "burgers", "pizza") else cuisine.capitalize()
