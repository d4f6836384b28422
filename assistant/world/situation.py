"""What is going on in a home at the moment of a turn: the part of the context the NLU reads
to choose between readings ("turn it up" while music plays, "what's the temperature" with the
oven on). Three small queries; the pipeline asks once per turn."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from assistant.models import Device, MediaPlayer, Timer
from assistant.world.devices import current_state

ALARM_WINDOW = timedelta(hours=1)  # "start brewing" reads as coffee for an hour after the alarm


def home_situation(home_id: int, room: str | None, now: datetime) -> dict[str, Any]:
    """The TurnContext fields media, media_kind, on and alarm_minutes_ago for this home."""
    on: set[str] = set()
    for kind, device_room, state in Device.objects.filter(home_id=home_id).values_list("kind", "room", "state"):
        state = current_state(kind, state)
        if kind == Device.Kind.LIGHT and state.get("on"):
            on.add("light")
            if room and device_room == room:
                on.add("light_here")
        elif kind in (Device.Kind.OVEN, Device.Kind.TV, Device.Kind.PLUG) and state.get("on"):
            on.add(kind)
        elif kind == Device.Kind.VACUUM and state.get("running"):
            on.add("vacuum")
        elif kind == Device.Kind.GARAGE_DOOR and state.get("open"):
            on.add("garage_door")
    player = MediaPlayer.objects.filter(home_id=home_id).values_list("status", "item").first()
    media, media_kind = "", ""
    if player is not None and player[0] in ("playing", "paused") and player[1]:
        media, media_kind = player[0], str((player[1] or {}).get("type") or "")
    rang = (
        Timer.objects.filter(
            home_id=home_id,
            kind=Timer.Kind.ALARM,
            cancelled_at=None,
            fires_at__lte=now,
            fires_at__gt=now - ALARM_WINDOW,
        )
        .order_by("-fires_at")
        .values_list("fires_at", flat=True)
        .first()
    )
    return {
        "media": media,
        "media_kind": media_kind,
        "on": tuple(sorted(on)),
        "alarm_minutes_ago": None if rang is None else int((now - rang).total_seconds() // 60),
    }
