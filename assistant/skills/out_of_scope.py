"""Requests the assistant cannot handle: say so briefly, name what was asked when the NLU
knows, and suggest the nearest thing it can do.

The reply is at most 20 words (a spoken fallback that lists every capability took 14 s to
hear), and it varies: the wording is picked by a hash of the turn (what, when), so a
replayed turn gets the same sentence and the next failure usually a different one.
"""

from __future__ import annotations

import hashlib

from assistant.intents import INTENTS
from assistant.models import Home
from assistant.skills.base import Request
from assistant.turns import Action, SkillResult, TurnContext

MAX_WORDS = 20

# Intents the NLU may know (the public data's, assistant/nlu/labels.py) that no skill handles:
# what the person asked for, as "I can't ___ yet" finishes it.
CANNOT_YET: dict[str, str] = {
    "audio_volume_other": "change that sound setting",
    "calendar_query": "read your calendar",
    "calendar_remove": "change your calendar",
    "calendar_set": "add things to your calendar",
    "cooking_query": "answer cooking questions",
    "cooking_recipe": "look up recipes",
    "datetime_convert": "convert time zones",
    "email_addcontact": "add contacts",
    "email_query": "read your email",
    "email_querycontact": "look up contacts",
    "email_sendemail": "send email",
    "general_quirky": "chat about that",
    "iot_coffee": "make coffee",
    "music_dislikeness": "learn which music you dislike",
    "music_likeness": "save songs to your favourites",
    "music_settings": "shuffle or repeat",
    "news_query": "read the news",
    "play_game": "play games",
    "play_podcasts": "play podcasts",
    "play_radio": "play the radio",
    "qa_currency": "convert currencies",
    "qa_definition": "define words",
    "qa_factoid": "answer general questions",
    "qa_maths": "do maths",
    "qa_stock": "check stock prices",
    "recommendation_events": "recommend events",
    "recommendation_locations": "recommend places",
    "recommendation_movies": "recommend films",
    "social_post": "post to social media",
    "social_query": "check social media",
    "takeaway_order": "order food",
    "takeaway_query": "check on food orders",
    "transport_query": "look up travel",
    "transport_taxi": "book taxis",
    "transport_ticket": "book tickets",
    "transport_traffic": "check the traffic",
}

# What the assistant can do, as "I can ___" finishes it: suggested when the NLU's next guess
# was one of these (the nearest thing it can do), else one picked by the turn's hash.
CAN_DO: dict[str, str] = {
    "smart_home": "control your lights, heating and devices",
    "music": "play music or audiobooks",
    "timers": "set timers and alarms",
    "lists": "keep your shopping and to-do lists",
    "weather": "tell you the weather",
    "datetime": "tell you the time or date",
    "chitchat": "tell you a joke",
}
# The same, as one request to try ("You could ask me to ___").
EXAMPLE: dict[str, str] = {
    "smart_home": "turn on the lights",
    "music": "play some music",
    "timers": "set a timer",
    "lists": "add milk to your list",
    "weather": "check the weather",
    "datetime": "tell you the time",
    "chitchat": "tell you a joke",
}

NAMED = (
    "I can't {asked} yet. I can {can} though.",
    "Sorry, I can't {asked} yet, but I can {can}.",
    "{asked_cap} isn't something I can do yet. I can {can}.",
)
UNNAMED = (
    "Sorry, I didn't get that. I can {can}, for example.",
    "I'm not sure how to help with that. Try asking me to {example}.",
    "Sorry, that's beyond me for now. I can {can}.",
    "I didn't catch what you need. You could ask me to {example}.",
)


def resolve(req: Request) -> Action:
    nearest = next(
        (
            INTENTS[intent].skill
            for intent, _ in req.alternatives
            if intent in INTENTS and INTENTS[intent].skill in CAN_DO
        ),
        None,
    )
    when = req.ctx.now.isoformat() if req.ctx.now else ""
    # Not the user id: a simulated population recreated in another database hears the same words.
    digest = hashlib.sha256(f"{when}|{req.text}".encode()).digest()
    return req.action(nearest_skill=nearest, variant=int.from_bytes(digest[:4], "big"))


def reply(unhandled_intent: str | None, nearest_skill: str | None, variant: int) -> str:
    """The fallback sentence: named when the intent is known, with the nearest capability."""
    if nearest_skill not in CAN_DO:
        # The hash's low part picks the wording; what is above it picks the capability.
        nearest_skill = list(CAN_DO)[(variant // (len(NAMED) * len(UNNAMED))) % len(CAN_DO)]
    can, example = CAN_DO[nearest_skill], EXAMPLE[nearest_skill]
    asked = CANNOT_YET.get(unhandled_intent or "")
    if asked:
        template = NAMED[variant % len(NAMED)]
        return template.format(asked=asked, asked_cap=asked[0].upper() + asked[1:], can=can)
    return UNNAMED[variant % len(UNNAMED)].format(can=can, example=example)


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    params = action.params
    text = reply(params.get("unhandled_intent"), params.get("nearest_skill"), int(params.get("variant") or 0))
    # ok=False: the user's request was not carried out (the turn's status also says out of scope).
    return SkillResult(text=text, ok=False, data={"suggested": params.get("nearest_skill")})
