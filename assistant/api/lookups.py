"""Finding a user's own rows from what a client names. Shared by the API views and `manage.py say`.

Every lookup is scoped to the user: another user's row is simply not found,
so callers answer "unknown" and never reveal that it exists.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from assistant.api.schema import MAX_ID
from assistant.models import Device
from assistant.world.home import room_aliases
from feedback.models import Session, Turn


def find_speaker(user: AbstractBaseUser, ref: int | str) -> Device | None:
    """One of the user's speakers, by id, by name, or by room (case-insensitive)."""
    speakers = Device.objects.filter(home__owner=user, kind=Device.Kind.SPEAKER).select_related("home")
    if isinstance(ref, int):
        return speakers.filter(pk=ref).first() if 0 < ref <= MAX_ID else None
    ref = ref.strip()
    if not ref:
        return None
    if ref.isdigit() and int(ref) <= MAX_ID:
        by_id = speakers.filter(pk=int(ref)).first()
        if by_id is not None:
            return by_id
    by_name = speakers.filter(name__iexact=ref).first()
    if by_name is not None:
        return by_name
    # A room by its name or one of its aliases ("lounge" is the living room).
    room = room_aliases().get(ref.lower(), ref)
    return speakers.filter(room__iexact=room).first()


def speaker_names(user: AbstractBaseUser) -> list[str]:
    """For error messages: what the user could have said instead."""
    speakers = Device.objects.filter(home__owner=user, kind=Device.Kind.SPEAKER)
    return [f"{d.name} ({d.room})" for d in speakers]


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
