"""Preferences taught in conversation: remember, read, forget, and say what is known.

The preferences skill (assistant/skills/preferences.py) understands "I'm a Warriors fan" and
calls remember(); the skills that serve underspecified requests ("how did my team do?", "play
some music", "find a restaurant") read value().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from teaching.models import ForgottenPreference, InferredPreference, Preference

Kind = Preference.Kind


@dataclass(frozen=True)
class Remembered:
    preference: Preference
    replaced: str | None  # the value it replaced, if another one was known
    known_already: bool = False  # the same value was known: nothing changed


# "Learn my preferences": the questions, in order, by the NLU slot that answers each.
GUIDED: tuple[tuple[str, str, str], ...] = (
    ("person", Kind.NAME, "What should I call you?"),
    ("team", Kind.TEAM, "Which team do you support?"),
    ("genre", Kind.GENRE, "What kind of music do you like?"),
    ("cuisine", Kind.CUISINE, "What food do you like best?"),
    ("unit", Kind.UNITS, "Should I give temperatures in Celsius or Fahrenheit?"),
    ("room", Kind.ROOM, "Which room are you in most?"),
)


def next_guided(user_id: int, asked: list[str]) -> tuple[str, str] | None:
    """(slot, question) of the next guided question: one not asked yet in this round, about
    something not known yet; None when there is nothing left to ask."""
    known = set(Preference.objects.filter(user_id=user_id).values_list("kind", flat=True))
    for slot, kind, question in GUIDED:
        if slot not in asked and kind not in known:
            return slot, question
    return None


def value(user_id: int, kind: str) -> str | None:
    return Preference.objects.filter(user_id=user_id, kind=kind).values_list("value", flat=True).first()


def known(user_id: int) -> list[Preference]:
    """What is known about the user, their name first, in the order of Preference.Kind."""
    order = {kind: index for index, kind in enumerate(Kind.values)}
    return sorted(Preference.objects.filter(user_id=user_id), key=lambda p: order.get(p.kind, len(order)))


def remember(
    user_id: int, kind: str, value: str, *, said: str = "", turn_id: int | None = None, now: datetime
) -> Remembered:
    """Store what the user taught; a different earlier value of the same kind is replaced."""
    if kind not in Kind.values:
        raise ValueError(f"unknown preference kind {kind!r}")
    fields = {
        "value": value,
        "said": said[:300],
        "source": Preference.Source.TAUGHT,
        "confidence": 1.0,
        "evidence": [turn_id] if turn_id else [],
        "updated_at": now,
    }
    with transaction.atomic():
        earlier = Preference.objects.select_for_update().filter(user_id=user_id, kind=kind).first()
        replaced = earlier.value if earlier is not None and earlier.value != value else None
        preference, _ = Preference.objects.update_or_create(
            user_id=user_id, kind=kind, defaults=fields, create_defaults={**fields, "created_at": now}
        )
    return Remembered(preference, replaced, known_already=earlier is not None and earlier.value == value)


def forget(user_id: int, kind: str | None = None, *, taught_since: datetime | None = None) -> Preference | None:
    """Forget the preference of `kind` (None: the one taught last, if taught since `taught_since`);
    returns what was forgotten."""
    rows = Preference.objects.filter(user_id=user_id)
    if kind is not None:
        rows = rows.filter(kind=kind)
    if taught_since is not None:
        rows = rows.filter(updated_at__gte=taught_since)
    preference = rows.order_by("-updated_at", "-id").first()
    if preference is not None:
        Preference.objects.filter(pk=preference.pk).delete()
    return preference


def forget_inferred(user_id: int, kind: str, now: datetime) -> int:
    """Forget what the preference models inferred of `kind` about the user (every version's rows), and
    have them skip the evidence of that kind so far; returns the rows deleted."""
    with transaction.atomic():
        deleted = InferredPreference.objects.filter(user_id=user_id, kind=kind).delete()[0]
        ForgottenPreference.objects.update_or_create(user_id=user_id, kind=kind, defaults={"forgotten_at": now})
    return deleted


def spoken_value(kind: str, value: str) -> str:
    """A value as said in a sentence: "the Golden State Warriors", "Arsenal", "Fahrenheit"."""
    if kind == Kind.TEAM and (value.endswith("s") or value.endswith("Sox")):
        return f"the {value}"
    if kind == Kind.UNITS:
        return value.capitalize()
    if kind == Kind.ROOM:
        return f"the {value}"
    return value


def statement(kind: str, value: str) -> str:
    """What a preference says about the user, in the second person ("you like jazz")."""
    spoken = spoken_value(kind, value)
    return {
        Kind.NAME: f"your name is {spoken}",
        Kind.TEAM: f"you support {spoken}",
        Kind.CUISINE: f"you like {spoken} food",
        Kind.GENRE: f"you like {spoken}",
        Kind.ARTIST: f"you like {spoken}",
        Kind.UNITS: f"you prefer {spoken}",
        Kind.ROOM: f"your default room is {spoken}",
    }.get(kind, f"your {kind} is {spoken}")
