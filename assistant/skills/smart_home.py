"""Smart home: lights, heating, oven, garage door, TV, plugs, vacuum and questions about them.

Context rules (resolve):
- Lights without a room act on the lights of the room of the speaker spoken to
  (ctx.room). With no speaker (API or CLI without a device) they act on the
  user's default room if they taught one; else the assistant does not guess: it
  asks which room and lists them (ok=False). "all the lights",
  "the house", "everywhere" mean every light.
- "what's the temperature" reports the oven while the oven is on, else the
  thermostat (indoor temperature and its setting).
- A bare number for the heating above 35 is Fahrenheit ("set the heat to 70");
  for the oven, above 260.
- A named device ("the fan", "the lamp") is found by name, then by kind, then
  room; a room in the request narrows the search, the speaker's room breaks ties.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from assistant.models import Device, Home
from assistant.skills.base import Request, failed, join
from assistant.skills.liking import liked
from assistant.skills.values import Temperature, parse_level, parse_temperature, to_celsius
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world.catalogue import clean, score
from assistant.world.devices import COLOURS, KIND_WORDS, current_state, describe_state, update_state
from assistant.world.home import room_aliases
from teaching.models import Preference

ALL = "all"
_ALL_WORDS = {
    "all", "house", "home", "whole house", "whole home", "everywhere", "all rooms", "every room", "apartment",
    "flat", "interior", "entire house", "all the rooms", "every light", "all lights", "all the lights",
    "everything", "all of them", "whole flat", "whole apartment", "all over the house", "around the house",
    "throughout the house", "all over", "every single room", "each room",
}  # fmt: skip
_EVERY = re.compile(r"(all|every|each)\b")
_PLUG_WORDS = re.compile(r"\b(plugs?|sockets?|outlets?)\b")
_ROOM_LIST = re.compile(r"\s*(?:,|\band\b|&|\bplus\b)\s*")
_HERE_WORDS = {"room", "this room", "here", "in here", "current room", "this", "the room", "in this room"}
_COLOUR_ALIASES = {
    "violet": "purple", "lilac": "purple", "lavender": "purple", "gold": "yellow", "amber": "orange",
    "daylight": "cool white", "warm": "warm white", "cool": "cool white", "normal": "warm white",
    "default": "warm white", "soft white": "warm white", "bright white": "cool white", "crimson": "red",
    "scarlet": "red", "turquoise": "teal", "aqua": "cyan", "rose": "pink", "navy": "blue", "lime": "green",
    "natural": "warm white", "night": "warm white", "night light": "warm white", "relaxing": "warm white",
    "cozy": "warm white", "reading": "cool white",
}  # fmt: skip
_ANY_COLOUR = re.compile(r"\b(random|any|different|another|surprise)\b")
_WHOLE_HOME_CLEAN = re.compile(r"\b(floors?|carpets?|rugs?|house|home|flat|apartment|everywhere|dust|whole)\b")
THERMOSTAT_RANGE = (5.0, 30.0)
OVEN_RANGE = (50, 260)
DEFAULT_OVEN_C = 180
THERMOSTAT_STEP = 1.0  # "turn it up" of the heating: degrees
OVEN_STEP = 10
LIGHT_STEP = 30  # brightness change for "dim"/"brighten" without a level

# --- finding rooms and devices ---------------------------------------------------


def home_rooms(home: Home) -> list[str]:
    return sorted(set(home.devices.values_list("room", flat=True)))


def find_room(text: str | None, home: Home, ctx: TurnContext) -> str | None:
    """Canonical room name, ALL, or None when the text names no room of this home."""
    if not text:
        return None
    q = clean(text)
    q = re.sub(r"\b(lights?|lamps?)\b", " ", q)
    q = " ".join(re.sub(r"^(in|the|my|our)\s+", "", q).split())
    rooms = home_rooms(home)
    if q in _HERE_WORDS:
        return ctx.room
    if q in _ALL_WORDS or re.fullmatch(r"(the )?(whole|entire) \w+", q):
        return ALL
    names = {alias: room for alias, room in room_aliases().items() if room in rooms}
    names.update({room: room for room in rooms})
    if q in names:
        return names[q]
    # "kitchen area", "upstairs bedroom": a room name inside the text (longest first)
    for name in sorted(names, key=len, reverse=True):
        if re.search(rf"\b{re.escape(name)}\b", q):
            return names[name]
    scored = max(((score(q, name), room) for name, room in names.items()), default=(0, None))
    return scored[1] if scored[0] >= 82 else None


def room_label(room: str) -> str:
    return "all the rooms" if room == ALL else f"the {room}"


def find_devices(home: Home, text: str, kinds: tuple[str, ...] | None = None, room: str | None = None) -> list[Device]:
    """Devices whose name or kind matches `text`, best first; narrowed to `room` when it has any."""
    q = clean(text)
    q = re.sub(r"\b(smart|please|switch|device)\b", " ", q)
    q = " ".join(q.split())
    if not q:
        return []
    devices = [d for d in home.devices.all() if d.kind != Device.Kind.SPEAKER and (not kinds or d.kind in kinds)]
    scored: list[tuple[float, Device]] = []
    for device in devices:
        names = [device.name, f"{device.room} {device.name}"]
        best = max(score(q, n) for n in names)
        # A kind word ("light", "tv") matches every device of that kind a little less than its own name.
        kind_best = max((score(q, w) for w in KIND_WORDS.get(device.kind, ())), default=0)
        kind_best = max(kind_best, *(score(q, f"{device.room} {w}") for w in KIND_WORDS.get(device.kind, ("",))))
        best = max(best, 0.97 * kind_best)
        if best >= 80:
            scored.append((best, device))
    if room and room != ALL:
        in_room = [s for s in scored if s[1].room == room]
        if in_room:
            scored = in_room
    if not scored:
        return []
    top = max(s for s, _ in scored)
    return [d for s, d in sorted(scored, key=lambda s: -s[0]) if s >= top - 0.5]


def _pick(devices: list[Device], ctx: TurnContext) -> Device:
    """One device among equally good matches: the one in the speaker's room if any."""
    for device in devices:
        if device.room == ctx.room:
            return device
    return devices[0]


def _names(devices: list[Device]) -> str:
    return join([d.name.lower() if d.kind != Device.Kind.TV else "TV" for d in devices], "or")


# --- resolve ------------------------------------------------------------------------------


def resolve(req: Request) -> Action:
    intent = req.intent
    if intent.startswith("iot_hue_"):
        return _resolve_lights(req)
    if intent == "iot_thermostat_set":
        return _resolve_thermostat(req)
    if intent == "iot_temperature_query":
        oven = req.home.devices.filter(kind=Device.Kind.OVEN).first()
        if oven is not None and (oven.state or {}).get("on"):
            return req.action(source="oven", device_id=oven.pk)
        thermostat = req.home.devices.filter(kind=Device.Kind.THERMOSTAT).first()
        if thermostat is None:
            return req.fail("There's no thermostat in your home.")
        return req.action(source="thermostat", device_id=thermostat.pk)
    if intent in ("iot_oven_on", "iot_oven_set", "iot_oven_off"):
        return _resolve_oven(req)
    if intent in ("iot_garage_open", "iot_garage_close"):
        door = req.home.devices.filter(kind=Device.Kind.GARAGE_DOOR).first()
        if door is None:
            return req.fail("There's no garage door in your home.")
        return req.action(device_ids=[door.pk], state={"open": intent == "iot_garage_open"})
    if intent in ("iot_tv_on", "iot_tv_off"):
        return _resolve_switch(req, req.slot("device") or "tv", (Device.Kind.TV,), intent == "iot_tv_on")
    if intent in ("iot_wemo_on", "iot_wemo_off"):
        return _resolve_plug(req, intent == "iot_wemo_on")
    if intent == "iot_cleaning":
        return _resolve_cleaning(req)
    if intent == "iot_device_query":
        return _resolve_query(req)
    return req.fail("Sorry, I can't do that with your devices yet.")


def _resolve_lights(req: Request) -> Action:
    room_text, device_text = req.slot("room"), req.slot("device")
    lights = req.home.devices.filter(kind=Device.Kind.LIGHT)
    op = {
        "iot_hue_lighton": "on",
        "iot_hue_lightoff": "off",
        "iot_hue_lightdim": "dim",
        "iot_hue_lightup": "brighten",
        "iot_hue_lightchange": "colour",
    }[req.intent]

    if device_text and ((named_words := clean(device_text)) in _ALL_WORDS or _EVERY.match(named_words)):
        # "all the lights", "every lamp": the whole home, unless a room is named too
        room_text, device_text = room_text or "all", None
    if room_text and clean(room_text) in _HERE_WORDS and req.ctx.room is None:
        room_text = None  # "this room" with no speaker: ask, as with no room at all
    named = find_devices(req.home, device_text, (Device.Kind.LIGHT, Device.Kind.PLUG)) if device_text else []
    preference = None  # the source of a room the user did not say (taught, or inferred)
    if len(named) > 1 and {d.kind for d in named} == {Device.Kind.LIGHT}:
        named = []  # "the lights": a kind, not one light; the room decides
    room: str | None = None
    rooms = []
    targets: list[Device]
    if room_text:
        # "the kitchen and bedroom lights": every room named, each on its own
        for part in _ROOM_LIST.split(room_text) if _ROOM_LIST.search(room_text) else [room_text]:
            found = find_room(part, req.home, req.ctx) if part.strip() else None
            if found is None:
                return req.fail(f"I couldn't find a light in the {clean(part) or part}.")
            rooms.append(found)
        room = ALL if ALL in rooms else (rooms[0] if len(set(rooms)) == 1 else None)
        targets = list(lights) if room == ALL else list(lights.filter(room__in=rooms))
        if not targets:
            return req.fail(f"I couldn't find a light in the {join(rooms)}.")
    elif named:
        # "turn off the lamp": a named light or a lamp on a plug
        device = _pick(named, req.ctx)
        if device.kind == Device.Kind.PLUG:
            if op not in ("on", "off"):
                return req.fail(f"The {device.name.lower()} is on a plug: I can only switch it on or off.")
            return req.action(device_ids=[device.pk], state={"on": op == "on"})
        targets, room = [device], device.room
    elif req.ctx.room is not None:
        room = req.ctx.room
        targets = list(lights.filter(room=room))
        if not targets:
            return req.fail(f"There's no light in the {room}. Which room do you mean?", needs="room")
    elif (usual := liked(req.ctx.user_id, Preference.Kind.ROOM)) and lights.filter(room=usual.value).exists():
        # No speaker to tell the room: the user's room (taught: "my default room is the kitchen", or inferred).
        room = usual.value
        targets = list(lights.filter(room=room))
        preference = usual.source
    else:
        rooms = sorted({light.room for light in lights})
        return req.fail(f"Which room? I can control the lights in the {join(rooms)}.", needs="room")

    params: dict[str, Any] = {"device_ids": [d.pk for d in targets], "room": room, "op": op}
    if preference:
        params["preference"] = preference
    if room is None and len(set(rooms)) > 1:
        params["rooms"] = sorted(set(rooms))
    if op == "colour" and not req.slot("colour") and parse_level(req.slot("level") or "") is not None:
        op = params["op"] = "brightness"  # "set the lights to 50 percent" heard as a colour change
    if op == "colour":
        colour_text = req.slot("colour")
        if (colour_text and _ANY_COLOUR.search(colour_text)) or (not colour_text and _ANY_COLOUR.search(req.text)):
            # "a random colour": a different one each minute, repeatable for a replayed turn
            colours = [c for c in COLOURS if "white" not in c]
            colour_text = colours[(req.ctx.now.hour * 60 + req.ctx.now.minute) % len(colours)]
        if not colour_text:
            return req.fail("Which colour would you like?", needs="colour")
        colour = find_colour(colour_text)
        if colour is None:
            return req.fail(f"I can't make the lights {colour_text}. Try {join(list(COLOURS)[:8], 'or')}.")
        params["colour"] = colour
    elif op in ("dim", "brighten", "brightness"):
        level = parse_level(req.slot("level") or "")
        if level is None:
            params["delta"] = LIGHT_STEP if op == "brighten" else -LIGHT_STEP
        elif level.relative and op != "brightness":
            amount = level.on_scale(100) or LIGHT_STEP
            params["delta"] = amount if op == "brighten" else -amount
        else:
            params["brightness"] = max(0, min(100, level.on_scale(100) or 0))
    return req.action(**params)


def find_colour(text: str) -> str | None:
    q = clean(text)
    q = re.sub(r"\b(colou?r|light|lights|ish|please)\b", " ", q)
    q = re.sub(r"(?<=\w)(der|er|dish|ish)\b", "", " ".join(q.split()))  # "redder", "reddish", "bluer"
    q = " ".join(q.split())
    names = {**{c: c for c in COLOURS}, **_COLOUR_ALIASES}
    if q in names:
        return names[q]
    scored = max(((score(q, n), c) for n, c in names.items()), default=(0, None))
    return scored[1] if scored[0] >= 80 else None


def _resolve_thermostat(req: Request) -> Action:
    thermostats = list(req.home.devices.filter(kind=Device.Kind.THERMOSTAT))
    if not thermostats:
        return req.fail("There's no thermostat in your home.")
    room = find_room(req.slot("room"), req.home, req.ctx) if req.slot("room") else None
    thermostat = next((t for t in thermostats if t.room == room), thermostats[0])
    temp = parse_temperature(req.slot("temperature"))
    if temp is None and (direction := req.direction()):
        # "Turn it up" of the heating: a step from where it is set.
        current = float(current_state(thermostat.kind, thermostat.state)["target_c"])
        temp = Temperature(current + (THERMOSTAT_STEP if direction == "up" else -THERMOSTAT_STEP), "c")
    if temp is None:
        return req.fail("What temperature would you like the heating at?", needs="temperature")
    target = to_celsius(temp, fahrenheit_above=35)
    low, high = THERMOSTAT_RANGE
    if not low <= target <= high:
        return req.fail(f"I can set the heating between {low:g} and {high:g} degrees.")
    return req.action(device_ids=[thermostat.pk], state={"target_c": round(target * 2) / 2})


def _resolve_oven(req: Request) -> Action:
    oven = req.home.devices.filter(kind=Device.Kind.OVEN).first()
    if oven is None:
        return req.fail("There's no oven in your home.")
    if req.intent == "iot_oven_off":
        return req.action(device_ids=[oven.pk], state={"on": False})
    temp = parse_temperature(req.slot("temperature"))
    if temp is None and req.intent == "iot_oven_set" and (direction := req.direction()):
        current = int(current_state(oven.kind, oven.state)["target_c"])
        temp = Temperature(current + (OVEN_STEP if direction == "up" else -OVEN_STEP), "c")
    if temp is None:
        if req.intent == "iot_oven_set":
            return req.fail("What temperature should the oven be?", needs="temperature")
        target = int((oven.state or {}).get("target_c") or DEFAULT_OVEN_C)
    else:
        target = round(to_celsius(temp, fahrenheit_above=OVEN_RANGE[1]))
    if not OVEN_RANGE[0] <= target <= OVEN_RANGE[1]:
        return req.fail(f"The oven goes from {OVEN_RANGE[0]} to {OVEN_RANGE[1]} degrees.")
    return req.action(device_ids=[oven.pk], state={"on": True, "target_c": target})


def _resolve_switch(req: Request, text: str, kinds: tuple[str, ...], on: bool) -> Action:
    room = find_room(req.slot("room"), req.home, req.ctx) if req.slot("room") else None
    devices = find_devices(req.home, text, kinds, room)
    if not devices:
        devices = list(req.home.devices.filter(kind__in=kinds))
        if room and room != ALL:
            devices = [d for d in devices if d.room == room]
    if not devices:
        where = f" in the {room}" if room and room != ALL else ""
        return req.fail(f"I couldn't find a {clean(text) or 'device'}{where}.")
    device = _pick(devices, req.ctx)
    return req.action(device_ids=[device.pk], state={"on": on})


def _resolve_plug(req: Request, on: bool) -> Action:
    device_text, room_text = req.slot("device"), req.slot("room")
    room = find_room(room_text, req.home, req.ctx) if room_text else None
    if room_text and room is None:
        return req.fail(f"I couldn't find a room called {clean(room_text) or room_text}.")
    switchable = (Device.Kind.PLUG, Device.Kind.TV, Device.Kind.LIGHT, Device.Kind.OVEN)
    plugs = list(req.home.devices.filter(kind=Device.Kind.PLUG))
    if device_text and _EVERY.match(words := clean(device_text)) and _PLUG_WORDS.search(words):
        # "all the plugs", "every socket": each plug of the home, or of the room named
        chosen = [p for p in plugs if room in (None, ALL) or p.room == room]
        if not chosen:
            return req.fail(f"There's no plug in the {room}." if room else "There's no plug in your home.")
        return req.action(device_ids=[p.pk for p in chosen], state={"on": on})
    if device_text:
        devices = find_devices(req.home, device_text, switchable, room)
        if not devices:
            where = f" in the {room}" if room and room != ALL else ""
            return req.fail(
                f"I couldn't find a {clean(device_text) or device_text}{where}. You have a {_names(plugs)}."
            )
        if len(devices) > 1 and {d.kind for d in devices} == {Device.Kind.LIGHT}:
            # "switch on the lights" heard as a plug request: the lights rules apply
            light_intent = "iot_hue_lighton" if on else "iot_hue_lightoff"
            return _resolve_lights(replace(req, intent=light_intent))
        device = _pick(devices, req.ctx)
    else:
        here = room if room and room != ALL else req.ctx.room
        candidates = [p for p in plugs if p.room == here]
        if len(candidates) != 1:
            return req.fail(f"Which one? You have a {_names(plugs)}.", needs="device")
        device = candidates[0]
    state: dict[str, Any] = {"on": on}
    if device.kind == Device.Kind.OVEN and on:
        state["target_c"] = int((device.state or {}).get("target_c") or DEFAULT_OVEN_C)
    return req.action(device_ids=[device.pk], state=state)


def _resolve_cleaning(req: Request) -> Action:
    vacuum = req.home.devices.filter(kind=Device.Kind.VACUUM).first()
    if vacuum is None:
        return req.fail("There's no robot vacuum in your home.")
    room_text = req.slot("room")
    room = find_room(room_text, req.home, req.ctx) if room_text else None
    if room_text and room is None and _WHOLE_HOME_CLEAN.search(room_text.lower()):
        room = ALL  # "clean the floor", "house cleaning"
    if room_text and room is None:
        return req.fail(f"I couldn't find a room called {clean(room_text) or room_text} to clean.")
    return req.action(device_ids=[vacuum.pk], state={"running": True, "room": None if room == ALL else room})


def _resolve_query(req: Request) -> Action:
    device_text, room_text = req.slot("device"), req.slot("room")
    room = find_room(room_text, req.home, req.ctx) if room_text else None
    if room_text and room is None:
        return req.fail(f"I couldn't find a room called {clean(room_text) or room_text}.")
    if device_text:
        devices = find_devices(req.home, device_text, None, room)
        if not devices:
            return req.fail(f"I couldn't find a {clean(device_text) or device_text} in your home.")
        # "which lights are on?" (or "are the lights on?") with no room: the whole home's lights,
        # answered by which rooms have theirs on, wherever the question was asked.
        return req.action(device_ids=[d.pk for d in devices])
    if room and room != ALL:
        devices = list(req.home.devices.filter(room=room).exclude(kind=Device.Kind.SPEAKER))
        return req.action(device_ids=[d.pk for d in devices])
    return req.fail("Which device do you want to know about?", needs="device")


# --- execute -----------------------------------------------------------------------------


def _locked(home: Home, ids: list[int]) -> list[Device]:
    """The home's devices among `ids`, locked for this transaction; other homes' ids are ignored."""
    return list(home.devices.select_for_update().filter(pk__in=ids or []).order_by("room", "name"))


def _label(devices: list[Device], room: str | None = None, rooms: list[str] | None = None) -> str:
    if len(devices) == 1:
        return "the TV" if devices[0].kind == Device.Kind.TV else f"the {devices[0].name.lower()}"
    if rooms:
        return f"the lights in the {join(rooms)}"
    if room == ALL or room is None:
        return "all the lights"
    return f"the lights in the {room}"


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    params = action.params
    ids = params.get("device_ids") or ([params["device_id"]] if params.get("device_id") else [])
    devices = _locked(home, ids)
    if not devices:
        return failed("I couldn't find that device in your home.")
    if action.intent == "iot_temperature_query":
        return _say_temperature(devices[0])
    if action.intent == "iot_device_query":
        return SkillResult(text=_describe(devices), data={"devices": [_device_data(d) for d in devices]})
    if action.intent.startswith("iot_hue_") and "op" in params:
        return _apply_lights(devices, params)
    state = params.get("state") or {}
    changed = [d.pk for d in devices if update_state(d, **state)]
    if len(devices) > 1:  # every plug at once
        word = "on" if state.get("on") else "off"
        text = (
            f"Turning {word} the {join([d.name.lower() for d in devices])}." if changed else f"They're already {word}."
        )
    else:
        text = _confirm(devices[0], state, bool(changed))
    return SkillResult(
        text=text,
        data={"devices": [_device_data(d) for d in devices]},
        changed_device_ids=tuple(changed),
    )


def _device_data(device: Device) -> dict[str, Any]:
    return {"id": device.pk, "name": device.name, "room": device.room, "kind": device.kind, "state": device.state}


def _apply_lights(devices: list[Device], params: dict[str, Any]) -> SkillResult:
    op, room = params["op"], params.get("room")
    label = _label(devices, room, params.get("rooms"))
    changed = []
    for device in devices:
        state = current_state(device.kind, device.state)
        if op in ("on", "off"):
            new = {"on": op == "on"}
        elif op == "colour":
            new = {"on": True, "colour": params["colour"]}
        else:
            current = state["brightness"] if state["on"] else 0
            level = params.get("brightness")
            if level is None:
                level = current + int(params.get("delta", 0))
            level = max(0, min(100, int(level)))
            new = {"on": level > 0, "brightness": level if level > 0 else state["brightness"]}
        if update_state(device, **new):
            changed.append(device.pk)
    verb = "is" if len(devices) == 1 else "are"
    if op in ("on", "off"):
        text = f"Turning {op} {label}." if changed else f"{label.capitalize()} {verb} already {op}."
    elif op == "colour":
        text = f"{label.capitalize()} {verb} now {params['colour']}."
    else:
        first = devices[0].state
        if not first.get("on"):
            text = f"Turning off {label}."
        else:
            verb = {"dim": "Dimming", "brighten": "Brightening"}.get(op, "Setting")
            text = f"{verb} {label} to {first['brightness']}%."
    data = {"devices": [_device_data(d) for d in devices]}
    return SkillResult(text=text, data=data, changed_device_ids=tuple(changed))


def _confirm(device: Device, state: dict[str, Any], changed: bool) -> str:
    name = "the TV" if device.kind == Device.Kind.TV else f"the {device.name.lower()}"
    kind = device.kind
    if kind == Device.Kind.GARAGE_DOOR:
        word = "open" if state.get("open") else "closed"
        if not changed:
            return f"The garage door is already {word}."
        return "Opening the garage door." if state.get("open") else "Closing the garage door."
    if kind == Device.Kind.THERMOSTAT:
        return f"Setting the heating to {state['target_c']:g} degrees."
    if kind == Device.Kind.OVEN:
        if not state.get("on"):
            return "Turning the oven off." if changed else "The oven is already off."
        return f"The oven is on at {state['target_c']} degrees." if changed else "The oven is already on."
    if kind == Device.Kind.VACUUM:
        where = f"the {state['room']}" if state.get("room") else "the whole home"
        return f"Starting the robot vacuum in {where}." if changed else f"The robot vacuum is already cleaning {where}."
    word = "on" if state.get("on") else "off"
    return f"Turning {word} {name}." if changed else f"{name[0].upper()}{name[1:]} is already {word}."


def _say_temperature(device: Device) -> SkillResult:
    state = current_state(device.kind, device.state)
    if device.kind == Device.Kind.OVEN:
        text = f"The oven is set to {state['target_c']} degrees."
    else:
        text = (
            f"It's {state['current_c']:g} degrees in the {device.room}, "
            f"and the heating is set to {state['target_c']:g}."
        )
    return SkillResult(text=text, data={"source": device.kind, "state": state, "device_id": device.pk})


def _describe(devices: list[Device]) -> str:
    if len(devices) == 1:
        device = devices[0]
        name = "The TV" if device.kind == Device.Kind.TV else f"The {device.name.lower()}"
        return f"{name} is {describe_state(device)}."
    if {d.kind for d in devices} == {Device.Kind.LIGHT}:
        on = [d.room for d in devices if (d.state or {}).get("on")]
        if not on:
            return "The lights are off."
        if len(on) == len(devices):
            return "The lights are on." if len({d.room for d in devices}) == 1 else "All the lights are on."
        return f"The lights are on in the {join(on)}; the others are off."
    return " ".join(
        f"{'The TV' if d.kind == Device.Kind.TV else 'The ' + d.name.lower()} is {describe_state(d)}." for d in devices
    )
