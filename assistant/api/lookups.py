"""Finding a user's own sessions and turns from the ids a client sends.

Speakers are found by assistant.world.speakers.find_speaker, the lookup every entry point uses.

Every lookup is scoped to the user: another user's row is simply not found,
so callers answer "unknown" and never reveal that it exists.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from assistant.world.speakers import MAX_ID
from feedback.models import Session, Turn


def find_session(user: AbstractBaseUser, session_id: int) -> Session | None:
    if not 0 < session_id <= MAX_ID:
        return None
    return Session.objects.filter(pk=session_id, user=user).select_related("device").first()


def find_turn(user: AbstractBaseUser, turn_id: int) -> Turn | None:
    if not 0 < turn_id <= MAX_ID:
        return None
    return Turn.objects.filter(pk=turn_id, user=user).first()
