"""Finding a user's own sessions and turns from the ids a client sends, and the user `say` names.

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


def get_or_create_user(name: str) -> AbstractBaseUser:
    """The user called `name`, created (without a usable password) if missing.

    Raises ValueError when `name` is not a valid username, so commands can say
    so instead of storing a name the login form could never match.
    """
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    user_model = get_user_model()
    field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    try:
        name = field.clean(name, None)
    except ValidationError as exc:
        raise ValueError(f"{name!r} is not a valid user name: {' '.join(exc.messages)}") from None
    user, created = user_model._default_manager.get_or_create(**{user_model.USERNAME_FIELD: name})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
