"""Greetings, jokes, help, thanks and "stop". Choices depend on ctx.now (never on import-time
randomness), so the same turn replayed gives the same answer."""

from __future__ import annotations

from assistant.models import Device, Home, MediaPlayer
from assistant.skills.base import Request, local_now
from assistant.turns import Action, SkillResult, TurnContext
from teaching import preferences

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


THANKS = ("You're welcome!", "Happy to help.", "Any time!", "My pleasure.")


def help_examples(req: Request) -> list[str]:
    """Three things to say that work on the device spoken to: its room's lights, a film where there
    is a screen (else music), and a timer."""
    room = req.ctx.room
    if room is None or not req.home.devices.filter(kind=Device.Kind.LIGHT, room=room).exists():
        lights = "turn off all the lights"
    else:
        lights = f"turn on the {room} lights"
    media = "play the hunger games" if req.ctx.has_screen else "play some jazz"
    return [lights, media, "set a timer for 10 minutes"]


def resolve(req: Request) -> Action:
    now = local_now(req.ctx, req.home)
    if req.intent == "general_help":
        return req.action(examples=help_examples(req))
    if req.intent == "general_thanks":
        return req.action(variant=now.minute % len(THANKS))
    if req.intent == "general_stop":
        player = MediaPlayer.objects.filter(home=req.home).first()
        if player is not None and player.status == "playing":
            # "Stop" while music plays means the music: the music skill pauses it.
            return Action(skill="music", intent="music_pause", params={})
        return req.action()
    if req.intent == "general_joke":
        # Changes every minute, the same within one: repeatable for a replayed turn.
        index = (now.toordinal() * 24 * 60 + now.hour * 60 + now.minute) % len(JOKES)
        return req.action(joke=index)
    hour = now.hour
    part = "morning" if 5 <= hour < 12 else "afternoon" if hour < 18 else "evening" if hour < 23 else "night"
    if hour < 5:
        part = "night"
    # Greeted by the name the user taught ("call me Sam").
    return req.action(part_of_day=part, name=preferences.value(req.ctx.user_id, preferences.Kind.NAME))


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    if action.intent == "general_help":
        examples = [str(e) for e in action.params.get("examples") or []][:3]
        quoted = ", ".join(f'"{e}"' for e in examples[:-1]) + f' or "{examples[-1]}"' if examples else ""
        text = f"I can help around the home. Try {quoted}." if quoted else "I can help around the home."
        return SkillResult(text=text, data={"examples": examples})
    if action.intent == "general_thanks":
        return SkillResult(text=THANKS[int(action.params.get("variant") or 0) % len(THANKS)])
    if action.intent == "general_stop":
        return SkillResult(text="OK.")
    if action.intent == "general_joke":
        index = int(action.params.get("joke", 0)) % len(JOKES)
        return SkillResult(text=JOKES[index], data={"joke": index})
    part = action.params.get("part_of_day", "morning")
    text = GREETINGS.get(part, GREETINGS["morning"])
    if name := action.params.get("name"):
        text = text.replace("!", f", {name}!", 1)
    return SkillResult(text=text, data={"part_of_day": part})
