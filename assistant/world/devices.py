"""Device kinds, the shape of their state, and how to describe them.

This is the one place the state shapes are defined. Device.state is a JSON
object whose keys depend on Device.kind:

    light        {"on": bool, "brightness": int 0-100, "colour": str}   colour is a name from COLOURS
    thermostat   {"target_c": float, "current_c": float}
    oven         {"on": bool, "target_c": int}
    garage_door  {"open": bool}
    tv           {"on": bool}
    plug         {"on": bool}
    vacuum       {"running": bool, "room": str | None}               room None = the whole home
    speaker      {}                                                    the device a user speaks to

Skills change state only through `update_state()`, which saves and reports
whether anything changed (a turn reports the ids of changed devices so that open
chat pages refresh them).
"""

from __future__ import annotations

from typing import Any

from assistant.models import Device, Home, MediaPlayer

DEFAULT_STATE: dict[str, dict[str, Any]] = {
    Device.Kind.LIGHT: {"on": False, "brightness": 100, "colour": "warm white"},
    Device.Kind.THERMOSTAT: {"target_c": 20.0, "current_c": 19.5},
    Device.Kind.OVEN: {"on": False, "target_c": 180},
    Device.Kind.GARAGE_DOOR: {"open": False},
    Device.Kind.TV: {"on": False},
    Device.Kind.PLUG: {"on": False},
    Device.Kind.VACUUM: {"running": False, "room": None},
    Device.Kind.SPEAKER: {},
}

# Colour names a light understands, with an RGB hex for the side panel.
COLOURS: dict[str, str] = {
    "warm white": "#ffd9a0",
    "white": "#ffffff",
    "cool white": "#e6f0ff",
    "red": "#ff3b30",
    "orange": "#ff9500",
    "yellow": "#ffcc00",
    "green": "#34c759",
    "teal": "#30b0c7",
    "cyan": "#32ade6",
    "blue": "#007aff",
    "purple": "#af52de",
    "pink": "#ff2d55",
    "magenta": "#ff00ff",
}

# Words people use for a kind of device (used to find a device by what it is).
KIND_WORDS: dict[str, tuple[str, ...]] = {
    Device.Kind.LIGHT: ("light", "lights", "lamp", "lamps", "bulb", "bulbs", "hue"),
    Device.Kind.THERMOSTAT: ("thermostat", "heating", "heat", "central heating", "temperature"),
    Device.Kind.OVEN: ("oven", "cooker", "stove"),
    Device.Kind.GARAGE_DOOR: ("garage door", "garage", "garage doors"),
    Device.Kind.TV: ("tv", "television", "telly", "t.v"),
    Device.Kind.PLUG: ("plug", "smart plug", "socket", "smart socket", "wemo", "wemo plug", "outlet"),
    Device.Kind.VACUUM: ("vacuum", "robot vacuum", "vacuum cleaner", "roomba", "hoover", "robot"),
    Device.Kind.SPEAKER: ("speaker", "display", "smart speaker"),
}


def default_state(kind: str) -> dict[str, Any]:
    return dict(DEFAULT_STATE.get(kind, {}))


def current_state(kind: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """A device's stored state over its kind's defaults: every key a kind has, whatever was stored."""
    return {**default_state(kind), **(state or {})}


def update_state(device: Device, **changes: Any) -> bool:
    """Apply `changes` to the device's state and save; True when something changed."""
    state = current_state(device.kind, device.state)
    new_state = {**state, **changes}
    if new_state == device.state:
        return False
    device.state = new_state
    device.save(update_fields=["state", "updated_at"])
    return True


def _degrees(value: float) -> str:
    return f"{value:g}°C"


def describe_state(device: Device) -> str:
    """A short human-readable state, e.g. "on, 40%, blue" or "closed"."""
    state = current_state(device.kind, device.state)
    kind = device.kind
    if kind == Device.Kind.LIGHT:
        if not state["on"]:
            return "off"
        return f"on, {state['brightness']}%, {state['colour']}"
    if kind == Device.Kind.THERMOSTAT:
        return f"{_degrees(state['current_c'])}, set to {_degrees(state['target_c'])}"
    if kind == Device.Kind.OVEN:
        return f"on, {_degrees(state['target_c'])}" if state["on"] else "off"
    if kind == Device.Kind.GARAGE_DOOR:
        return "open" if state["open"] else "closed"
    if kind in (Device.Kind.TV, Device.Kind.PLUG):
        return "on" if state["on"] else "off"
    if kind == Device.Kind.VACUUM:
        if not state["running"]:
            return "docked"
        return f"cleaning the {state['room']}" if state["room"] else "cleaning the whole home"
    if kind == Device.Kind.SPEAKER:
        return "speaker with a screen" if device.has_screen else "speaker"
    return ""


def device_summary(home: Home) -> list[dict[str, Any]]:
    """Every device of a home for the chat side panel: id, name, room, kind, state text, raw state."""
    rows = []
    for device in home.devices.all().order_by("room", "kind", "name"):
        rows.append(
            {
                "id": device.pk,
                "name": device.name,
                "room": device.room,
                "kind": device.kind,
                "kind_label": device.get_kind_display(),
                "has_screen": device.has_screen,
                "state": describe_state(device),
                "raw_state": current_state(device.kind, device.state),
            }
        )
    return rows


def media_summary(home: Home) -> dict[str, Any]:
    """What the home is playing, for the side panel: status, title, artist, volume, muted, text."""
    player = MediaPlayer.objects.filter(home=home).first()
    if player is None:
        return {"status": "stopped", "title": "", "artist": "", "volume": 5, "muted": False, "text": "Nothing playing"}
    item = player.item or {}
    title = item.get("title", "")
    by = item.get("artist") or item.get("author") or ""
    if player.status == "stopped" or not title:
        text = "Nothing playing"
    else:
        text = f"{'Playing' if player.status == 'playing' else 'Paused'}: {title}" + (f" by {by}" if by else "")
    return {
        "status": player.status,
        "title": title,
        "artist": by,
        "type": item.get("type", ""),
        "volume": player.volume,
        "muted": player.muted,
        "queue_length": len(player.queue or []),
        "text": text,
    }
