"""Each user's simulated home, created from assistant/data/demo_home.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from assistant.models import Device, Home, MediaPlayer
from assistant.world.devices import current_state

DEMO_HOME_PATH = Path(__file__).resolve().parent.parent / "data" / "demo_home.json"


@cache
def demo_spec() -> dict[str, Any]:
    """The demo home description (read once per process)."""
    with DEMO_HOME_PATH.open(encoding="utf-8") as f:
        return json.load(f)


@cache
def room_aliases() -> dict[str, str]:
    """Every name of a room (its own and its aliases) -> the room's canonical name."""
    aliases: dict[str, str] = {}
    for room in demo_spec()["rooms"]:
        aliases[room["name"]] = room["name"]
        for alias in room.get("aliases", ()):
            aliases[alias] = room["name"]
    return aliases


def _device_rows(home: Home) -> list[Device]:
    return [
        Device(
            home=home,
            kind=spec["kind"],
            name=spec["name"],
            room=spec["room"],
            has_screen=bool(spec.get("has_screen", False)),
            state=current_state(spec["kind"], spec.get("state")),
        )
        for spec in demo_spec()["devices"]
    ]


def _populate(home: Home) -> None:
    # ignore_conflicts + the (home, name) unique constraint make a concurrent
    # second population a no-op instead of a duplicate or an error.
    Device.objects.bulk_create(_device_rows(home), ignore_conflicts=True)
    player_spec = demo_spec().get("media_player", {})
    MediaPlayer.objects.get_or_create(
        home=home,
        defaults={"volume": player_spec.get("volume", 5), "muted": player_spec.get("muted", False)},
    )


def ensure_home(user: AbstractBaseUser) -> Home:
    """The user's home, created with the demo devices and a media player if missing.

    Idempotent and safe when two requests race: the home row is unique per owner
    and devices are unique per (home, name).
    """
    home = Home.objects.filter(owner=user).first()
    if home is not None and home.devices.exists() and MediaPlayer.objects.filter(home=home).exists():
        return home
    spec = demo_spec()
    with transaction.atomic():
        home, _ = Home.objects.get_or_create(
            owner=user, defaults={"name": spec.get("name", "Home"), "place": spec.get("place", "London")}
        )
        _populate(home)
    return home


def reset_home(home: Home) -> list[int]:
    """Put every demo device back to its demo state and stop the media; returns changed device ids."""
    changed: list[int] = []
    with transaction.atomic():
        _populate(home)
        by_name = {row.name: row for row in _device_rows(home)}
        for device in home.devices.select_for_update():
            demo = by_name.get(device.name)
            if demo is not None and device.state != demo.state:
                device.state = demo.state
                device.save(update_fields=["state", "updated_at"])
                changed.append(device.pk)
        MediaPlayer.objects.filter(home=home).update(status="stopped", item={}, queue=[], volume=5, muted=False)
    return changed


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
