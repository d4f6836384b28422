"""Preferences taught in conversation: "I'm a Warriors fan", "call me Sam", "I prefer
Fahrenheit", "what do you know about me?", "forget that I like jazz".

Resolve turns what the NLU tagged into a canonical value (a team of the sports data, a cuisine of
the restaurants, a genre or artist of the music catalogue, a room of the home); nothing is
stored for a value it cannot place. Execute stores it (teaching/preferences.py); a new value of
the same kind replaces the old one, and the reply says so.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.utils.timezone import now

from assistant.models import Home
from assistant.skills.base import Request, failed, join
from assistant.skills.liking import inferred
from assistant.skills.restaurants import cuisine_word
from assistant.skills.smart_home import ALL, find_room
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world import catalogue as cat
from assistant.world.restaurants import find_cuisine
from assistant.world.sports import find_team
from teaching import preferences
from teaching.models import Concept

Kind = preferences.Kind
# NLU slot -> preference kind, in the order a statement is read ("I'm Sam and I like jazz": the name).
SLOT_KINDS = {
    "person": Kind.NAME,
    "team": Kind.TEAM,
    "cuisine": Kind.CUISINE,
    "genre": Kind.GENRE,
    "artist": Kind.ARTIST,
    "unit": Kind.UNITS,
    "room": Kind.ROOM,
}
_NAME = re.compile(r"[^\W\d_]+(?:[ '-][^\W\d_]+){0,3}")  # letters, up to four words (no markup)
EXAMPLES = '"call me Sam", "I\'m a Warriors fan", "I like Italian food" or "I prefer Fahrenheit"'


def _canonical(kind: str, text: str, req: Request) -> str | None:
    return canonical(kind, text, req.home, req.ctx)


def canonical(kind: str, text: str, home: Home, ctx: TurnContext | None = None) -> str | None:
    """The value a preference of `kind` stores for the words `text`, or None if it means nothing here
    (also what the "What you've taught me" page checks an edited value with)."""
    if kind == Kind.NAME:
        name = " ".join(text.split())
        return name.title() if _NAME.fullmatch(name) and 2 <= len(name) <= 40 else None
    if kind == Kind.TEAM:
        team = find_team(text)
        return team.name if team else None
    if kind == Kind.CUISINE:
        return find_cuisine(text)
    if kind == Kind.GENRE:
        genre = cat.find_genre(text)
        return genre[0] if genre else None
    if kind == Kind.ARTIST:
        artist = cat.find_artist(text)
        return artist[0] if artist else None
    if kind == Kind.UNITS:
        t = text.lower()
        if re.search(r"fahrenheit|imperial", t):
            return "fahrenheit"
        if re.search(r"celsius|centigrade|metric", t):
            return "celsius"
        return None
    if kind == Kind.ROOM:
        if ctx is None:  # no speaker to say where "here" is
            ctx = TurnContext(
                user_id=home.owner_id, home_id=home.pk, device_id=None, room=None, has_screen=False, now=now()
            )
        room = find_room(text, home, ctx)
        return room if room and room != ALL else None
    return None


def _slot_kind(req: Request) -> tuple[str, str] | None:
    """(preference kind, the words) of the first preference slot the NLU tagged."""
    for slot, kind in SLOT_KINDS.items():
        if req.slot(slot):
            return kind, req.slot(slot)
    return None


def resolve(req: Request) -> Action:
    if req.intent in ("preference_query", "preference_learn"):
        return req.action()
    tagged = _slot_kind(req)
    if req.intent == "preference_forget":
        if tagged is None:
            return req.action(kind=None)  # "forget that": what was taught last
        kind, words = tagged
        return req.action(kind=kind, value=_canonical(kind, words, req), said=words)
    # preference_set
    if tagged is None:
        return req.fail(f"What should I remember? You can say things like {EXAMPLES}.")
    kind, words = tagged
    value = _canonical(kind, words, req)
    if value is None:
        return req.fail(unknown_value(kind, words), not_found=kind)
    return req.action(kind=kind, value=value, said=words)


def unknown_value(kind: str, words: str) -> str:
    return {
        Kind.NAME: "I can only call you by a name made of letters, up to four words.",
        Kind.TEAM: f"I don't know a team called {words}, so I can't follow it for you.",
        Kind.CUISINE: f"I don't know {words} as a kind of food.",
        Kind.GENRE: f"I don't have any {words} music to play for you.",
        Kind.ARTIST: f"I don't have any music by {words}.",
        Kind.UNITS: "I can give temperatures in Celsius or Fahrenheit.",
        Kind.ROOM: f"There's no room called {words} in your home.",
    }.get(kind, f"I couldn't make sense of {words}.")


def _statement(kind: str, value: str) -> str:
    if kind == Kind.CUISINE:
        return f"you like {cuisine_word(value)} food"
    return preferences.statement(kind, value)


def _confirmation(kind: str, value: str, replaced: str | None) -> str:
    if replaced is not None:
        earlier = cuisine_word(replaced) if kind == Kind.CUISINE else preferences.spoken_value(kind, replaced)
        return f"OK, I've changed that: {_statement(kind, value)} now, instead of {earlier}."
    follow_up = {
        Kind.NAME: f"Nice to meet you, {value}.",
        Kind.TEAM: 'Ask me "how did my team do?" any time.',
        Kind.CUISINE: 'Say "find a restaurant" and I\'ll start there.',
        Kind.GENRE: 'Say "play some music" and I\'ll put it on.',
        Kind.ARTIST: 'Say "play some music" and I\'ll put it on.',
        Kind.UNITS: "I'll give temperatures that way from now on.",
        Kind.ROOM: "Lights without a room will mean that room when I can't tell where you are.",
    }[kind]
    return f"Got it: {_statement(kind, value)}. {follow_up}"


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    if action.intent == "preference_learn":
        # The questions themselves are the dialogue's (the pipeline asks them one by one).
        first = preferences.next_guided(ctx.user_id, [])
        if first is None:
            return SkillResult(text='I already know everything I\'d ask. Say "what do you know about me" to check.')
        return SkillResult(
            text=f'Let\'s get to know each other. Say "skip" to pass on a question, or "stop" to finish. {first[1]}',
            data={"guided": first[0]},
        )
    if action.intent == "preference_query":
        known = preferences.known(ctx.user_id)
        guessed = inferred(ctx.user_id)
        taught = [c.name for c in Concept.objects.filter(user_id=ctx.user_id).order_by("name")]
        if not known and not taught and not guessed:
            return SkillResult(text=f"I don't know anything about you yet. You can tell me things like {EXAMPLES}.")
        facts = [_statement(p.kind, p.value) for p in known]
        if taught:
            facts.append(f"you've taught me what {join(taught)} {'means' if len(taught) == 1 else 'mean'}")
        text = f"Here's what I know: {join(facts)}." if facts else ""
        if guessed:
            text += f" From what you ask for, I think {join([_statement(g.kind, g.value) for g in guessed])}."
        return SkillResult(
            text=text.strip(),
            data={
                "known": {p.kind: p.value for p in known},
                "concepts": taught,
                "inferred": {g.kind: g.value for g in guessed},
            },
        )
    if action.intent == "preference_forget":
        kind, value = action.params.get("kind"), action.params.get("value")
        current = preferences.value(ctx.user_id, kind) if kind else None
        guessed = next((g for g in inferred(ctx.user_id) if g.kind == kind), None) if kind and not current else None
        if guessed is not None and (value is None or value == guessed.value):
            # "forget that I like jazz" when jazz was only inferred: stop inferring it from what came so far.
            preferences.forget_inferred(ctx.user_id, kind, ctx.now)
            return SkillResult(
                text=f"OK, I'll stop assuming that {_statement(kind, guessed.value)}.",
                data={"forgotten": {kind: guessed.value}, "inferred": True},
            )
        if kind and (current is None or (value is not None and value != current)):
            said = action.params.get("said") or value
            return failed(f"I didn't know that {_statement(kind, value or said)}, so there's nothing to forget.")
        # "Forget that" means what was just taught; minutes later it could mean anything.
        since = None if kind else ctx.now - timedelta(minutes=settings.PENDING_QUESTION_MINUTES)
        forgotten = preferences.forget(ctx.user_id, kind, taught_since=since)
        if forgotten is None and kind is None and preferences.known(ctx.user_id):
            return failed('What should I forget? Say, for example, "forget that I like jazz".')
        if forgotten is None:
            return failed("There's nothing I know about you to forget.")
        return SkillResult(
            text=f"OK, I've forgotten that {_statement(forgotten.kind, forgotten.value)}.",
            data={"forgotten": {forgotten.kind: forgotten.value}},
        )
    kind, value = str(action.params.get("kind")), str(action.params.get("value"))
    remembered = preferences.remember(ctx.user_id, kind, value, said=str(action.params.get("said") or ""), now=ctx.now)
    text = (
        f"I know: {_statement(kind, value)}."
        if remembered.known_already
        else _confirmation(kind, value, remembered.replaced)
    )
    return SkillResult(
        text=text,
        data={"remembered": {kind: value}, "replaced": remembered.replaced},
    )
