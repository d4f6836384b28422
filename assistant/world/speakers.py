"""The speakers a person talks to: the one lookup every entry point uses (chat, API, `say`).

Every lookup is scoped to the person's own home: another home's speaker is simply
not found, so callers answer "unknown" and never reveal that it exists.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from assistant.models import Device
from assistant.world.home import ensure_home, room_aliases

# Ids are Postgres bigints: anything larger cannot name a row, and would make the query itself fail.
MAX_ID = 2**63 - 1


def speaker_devices(user: AbstractBaseUser) -> list[Device]:
    """The speakers in the person's home (made on first visit), the devices they can talk to."""
    home = ensure_home(user)
    return list(home.devices.filter(kind=Device.Kind.SPEAKER).order_by("room", "name"))


def find_speaker(user: AbstractBaseUser, ref: int | str) -> Device | None:
    """One of the person's speakers, by id, by name, or by room (case-insensitive); None if unknown."""
    speakers = Device.objects.filter(home__owner=user, kind=Device.Kind.SPEAKER).select_related("home")
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return speakers.filter(pk=ref).first() if 0 < ref <= MAX_ID else None
    ref = ref.strip()
    if not ref:
        return None
    # ASCII digits only: "²" is a digit to str.isdigit() but not to int().
    if ref.isascii() and ref.isdigit() and int(ref) <= MAX_ID:
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
    """For error messages: what the person could have said instead."""
    speakers = Device.objects.filter(home__owner=user, kind=Device.Kind.SPEAKER)
    return [f"{d.name} ({d.room})" for d in speakers]
