"""Smart home skill: slots + context -> actions on the demo home, without the NLU."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import transaction

from assistant import skills
from assistant.models import Device
from assistant.pipeline.turn import build_context
from assistant.turns import Action, NluResult, TurnContext

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def ctx_for(user, speaker: str | None = None, now: datetime = NOW) -> TurnContext:
    """The context a turn spoken to `speaker` (a device name) would get."""
    device = user.home.devices.get(name=speaker) if speaker else None
    return build_context(user, device, now)


def say(user, intent: str, speaker: str | None = None, text: str = "", **slots: str):
    ctx = ctx_for(user, speaker)
    action = skills.resolve(NluResult(text=text, intent=intent, confidence=0.99, slots=slots), ctx)
    json.dumps(action.as_dict())  # stored on the Turn: must be JSON
    with transaction.atomic():
        result = skills.execute(action, ctx)
    return action, result


def device(user, name: str) -> Device:
    return user.home.devices.get(name=name)


def lights_on(user) -> set[str]:
    return {d.room for d in user.home.devices.filter(kind="light") if d.state.get("on")}


def test_lights_without_a_room_are_the_lights_of_the_room_of_the_speaker(alice):
    action, result = say(alice, "iot_hue_lighton", speaker="Kitchen speaker")
    assert result.ok, result.text
    assert lights_on(alice) == {"kitchen"}
    assert action.params["room"] == "kitchen"
    assert result.changed_device_ids == (device(alice, "Kitchen light").pk,)
    assert "kitchen light" in result.text.lower()


def test_several_named_rooms_each_get_their_lights(alice):
    _, result = say(alice, "iot_hue_lighton", room="kitchen, bedroom and office")
    assert result.ok, result.text
    assert lights_on(alice) == {"kitchen", "bedroom", "office"}
    assert result.text == "Turning on the lights in the bedroom, kitchen and office."


def test_one_unknown_room_among_several_is_named(alice):
    _, result = say(alice, "iot_hue_lighton", room="kitchen and attic")
    assert not result.ok
    assert "attic" in result.text
    assert lights_on(alice) == set()


def test_lights_without_a_room_or_a_speaker_ask_which_room(alice):
    _, result = say(alice, "iot_hue_lighton")
    assert not result.ok
    assert result.text.startswith("Which room?")
    assert "kitchen" in result.text
    assert lights_on(alice) == set()
    assert result.changed_device_ids == ()


def test_a_named_room_wins_over_the_room_of_the_speaker(alice):
    _, result = say(alice, "iot_hue_lighton", speaker="Kitchen speaker", room="bedroom")
    assert result.ok
    assert lights_on(alice) == {"bedroom"}


@pytest.mark.parametrize(
    ("said", "room"),
    [("lounge", "living room"), ("the living room", "living room"), ("livingroom", "living room"),
     ("hall", "hallway"), ("kid's room", "kids room"), ("study", "office"), ("bathrom", "bathroom")],
)  # fmt: skip
def test_rooms_are_found_by_alias_and_despite_misspellings(alice, said, room):
    _, result = say(alice, "iot_hue_lighton", room=said)
    assert result.ok, result.text
    assert lights_on(alice) == {room}


def test_this_room_means_the_room_of_the_speaker(alice):
    say(alice, "iot_hue_lighton", speaker="Bedroom speaker", room="this room")
    assert lights_on(alice) == {"bedroom"}


def test_all_the_lights_switches_every_light(alice):
    _, result = say(alice, "iot_hue_lighton", room="house")
    assert result.ok
    assert len(lights_on(alice)) == 8
    _, result = say(alice, "iot_hue_lightoff", speaker="Kitchen speaker", device="all the lights")
    assert result.ok
    assert lights_on(alice) == set()
    assert len(result.changed_device_ids) == 8


def test_an_unknown_room_is_a_helpful_failure_not_an_exception(alice):
    _, result = say(alice, "iot_hue_lighton", speaker="Kitchen speaker", room="attic")
    assert not result.ok
    assert result.text == "I couldn't find a light in the attic."
    assert lights_on(alice) == set()


def test_lights_already_on_are_reported_without_a_change(alice):
    say(alice, "iot_hue_lighton", room="kitchen")
    _, result = say(alice, "iot_hue_lighton", room="kitchen")
    assert result.ok
    assert "already on" in result.text
    assert result.changed_device_ids == ()


@pytest.mark.parametrize("level", ["50 percent", "50%", "half", "to 50 percent"])
def test_dimming_to_a_level_sets_that_brightness(alice, level):
    _, result = say(alice, "iot_hue_lightdim", room="office", level=level)
    assert result.ok
    state = device(alice, "Office light").state
    assert state["on"] is True
    assert state["brightness"] == 50
    assert "50%" in result.text


def test_dimming_without_a_level_steps_down_and_brightening_by_an_amount_steps_up(alice):
    say(alice, "iot_hue_lighton", room="office")
    say(alice, "iot_hue_lightdim", room="office")
    assert device(alice, "Office light").state["brightness"] == 70
    say(alice, "iot_hue_lightup", room="office", level="by 20 percent")
    assert device(alice, "Office light").state["brightness"] == 90
    say(alice, "iot_hue_lightup", room="office", level="all the way")
    assert device(alice, "Office light").state["brightness"] == 100


@pytest.mark.parametrize(("said", "colour"), [("blue", "blue"), ("red ish", "red"), ("purpel", "purple")])
def test_lights_change_to_a_colour_given_by_name(alice, said, colour):
    _, result = say(alice, "iot_hue_lightchange", speaker="Bedroom speaker", colour=said)
    assert result.ok, result.text
    assert device(alice, "Bedroom light").state == {"on": True, "brightness": 100, "colour": colour}


def test_an_unknown_colour_is_refused_with_the_colours_on_offer(alice):
    _, result = say(alice, "iot_hue_lightchange", room="bedroom", colour="plaid")
    assert not result.ok
    assert "plaid" in result.text and "red" in result.text
    assert device(alice, "Bedroom light").state["on"] is False


def test_the_temperature_is_the_thermostats_while_the_oven_is_off(alice):
    action, result = say(alice, "iot_temperature_query")
    assert action.params["source"] == "thermostat"
    assert result.text == "It's 19.5 degrees in the hallway, and the heating is set to 20."


def test_the_temperature_is_the_ovens_while_the_oven_is_on(alice):
    say(alice, "iot_oven_on", temperature="180 degrees")
    action, result = say(alice, "iot_temperature_query")
    assert action.params["source"] == "oven"
    assert result.text == "The oven is set to 180 degrees."
    say(alice, "iot_oven_off")
    action, _ = say(alice, "iot_temperature_query")
    assert action.params["source"] == "thermostat"


@pytest.mark.parametrize(("said", "celsius"), [("21 degrees", 21), ("22.5", 22.5), ("70 degrees", 21), ("18 c", 18)])
def test_the_thermostat_is_set_in_celsius_and_bare_large_numbers_are_fahrenheit(alice, said, celsius):
    _, result = say(alice, "iot_thermostat_set", temperature=said)
    assert result.ok
    assert device(alice, "Thermostat").state["target_c"] == celsius
    assert result.changed_device_ids == (device(alice, "Thermostat").pk,)


def test_the_thermostat_refuses_unsafe_or_missing_temperatures(alice):
    _, result = say(alice, "iot_thermostat_set", temperature="95 celsius")
    assert not result.ok and "between 5 and 30" in result.text
    _, result = say(alice, "iot_thermostat_set")
    assert not result.ok and "What temperature" in result.text
    assert device(alice, "Thermostat").state["target_c"] == 20.0


def test_the_oven_preheats_to_degrees_or_fahrenheit_and_turns_off(alice):
    _, result = say(alice, "iot_oven_on", temperature="200 degrees")
    assert device(alice, "Oven").state == {"on": True, "target_c": 200}
    assert result.text == "The oven is on at 200 degrees."
    say(alice, "iot_oven_set", temperature="350 fahrenheit")
    assert device(alice, "Oven").state["target_c"] == 177
    _, result = say(alice, "iot_oven_off")
    assert device(alice, "Oven").state["on"] is False
    assert result.text == "Turning the oven off."


def test_the_garage_door_opens_closes_and_says_when_it_already_is(alice):
    _, result = say(alice, "iot_garage_open")
    assert result.ok and device(alice, "Garage door").state == {"open": True}
    _, result = say(alice, "iot_garage_open")
    assert result.text == "The garage door is already open." and result.changed_device_ids == ()
    say(alice, "iot_garage_close")
    assert device(alice, "Garage door").state == {"open": False}


def test_the_tv_turns_on_and_off(alice):
    _, result = say(alice, "iot_tv_on")
    assert result.ok and device(alice, "TV").state == {"on": True}
    assert result.text == "Turning on the TV."
    say(alice, "iot_tv_off", room="living room")
    assert device(alice, "TV").state == {"on": False}


@pytest.mark.parametrize(
    ("said", "name"), [("fan", "Fan"), ("the coffee machine", "Coffee machine"), ("coffee maker", "Coffee machine"),
                       ("heater", "Heater"), ("lamp", "Lamp")],
)  # fmt: skip
def test_plugs_are_switched_by_name(alice, said, name):
    _, result = say(alice, "iot_wemo_on", device=said)
    assert result.ok, result.text
    assert device(alice, name).state == {"on": True}
    assert result.changed_device_ids == (device(alice, name).pk,)


def test_a_plug_without_a_name_is_the_only_plug_in_the_speakers_room(alice):
    _, result = say(alice, "iot_wemo_on", speaker="Bedroom speaker")
    assert result.ok
    assert device(alice, "Fan").state == {"on": True}


def test_an_unknown_device_is_a_helpful_failure(alice):
    _, result = say(alice, "iot_wemo_on", device="jacuzzi")
    assert not result.ok
    assert result.text.startswith("I couldn't find a jacuzzi.")
    assert "fan" in result.text


def test_the_vacuum_starts_in_a_room_or_everywhere(alice):
    _, result = say(alice, "iot_cleaning", room="kitchen")
    assert device(alice, "Robot vacuum").state == {"running": True, "room": "kitchen"}
    assert result.text == "Starting the robot vacuum in the kitchen."
    _, result = say(alice, "iot_cleaning", room="cellar")
    assert not result.ok and "cellar" in result.text


def test_device_questions_read_the_state(alice):
    _, result = say(alice, "iot_device_query", device="garage door")
    assert result.ok and result.text == "The garage door is closed."
    say(alice, "iot_garage_open")
    _, result = say(alice, "iot_device_query", device="garage")
    assert result.text == "The garage door is open."
    say(alice, "iot_hue_lighton", room="kitchen")
    _, result = say(alice, "iot_device_query", device="lights", room="kitchen")
    assert result.text == "The kitchen light is on, 100%, warm white."
    _, result = say(alice, "iot_device_query", device="lights")
    assert result.text == "The lights are on in the kitchen; the others are off."


def test_another_users_home_is_untouched(alice, bob):
    say(alice, "iot_hue_lighton", room="house")
    say(alice, "iot_garage_open")
    assert len(lights_on(alice)) == 8
    assert lights_on(bob) == set()
    assert device(bob, "Garage door").state == {"open": False}


def test_an_action_naming_another_users_device_changes_nothing(alice, bob):
    ctx = ctx_for(alice)
    forged = Action(
        "smart_home", "iot_garage_open", {"device_ids": [device(bob, "Garage door").pk], "state": {"open": True}}
    )
    result = skills.execute(forged, ctx)
    assert not result.ok
    assert device(bob, "Garage door").state == {"open": False}


def test_the_lights_as_a_device_are_the_lights_of_the_speakers_room_not_one_random_light(alice):
    _, result = say(alice, "iot_hue_lighton", speaker="Bedroom speaker", device="lights")
    assert result.ok and lights_on(alice) == {"bedroom"}
    _, result = say(alice, "iot_hue_lightoff", device="the lights")
    assert not result.ok and result.text.startswith("Which room?")


def test_a_plug_request_naming_the_lights_follows_the_lights_rules(alice):
    action, result = say(alice, "iot_wemo_on", speaker="Kitchen speaker", device="lights")
    assert result.ok
    assert action.intent == "iot_hue_lighton"
    assert lights_on(alice) == {"kitchen"}


def test_the_lamp_is_the_plug_called_lamp(alice):
    _, result = say(alice, "iot_hue_lighton", speaker="Kitchen speaker", device="desk lamp")
    assert result.ok
    assert device(alice, "Lamp").state == {"on": True}
    assert lights_on(alice) == set()


def test_this_room_without_a_speaker_asks_which_room(alice):
    _, result = say(alice, "iot_hue_lighton", room="this room")
    assert not result.ok and result.text.startswith("Which room?")


def test_a_colour_change_with_only_a_level_sets_the_brightness(alice):
    _, result = say(alice, "iot_hue_lightchange", room="living room", level="to 50 percent")
    assert result.ok and result.text == "Setting the living room light to 50%."
    assert device(alice, "Living room light").state["brightness"] == 50


def test_a_random_colour_is_one_of_the_colours_and_repeatable(alice):
    _, first = say(alice, "iot_hue_lightchange", room="kitchen", colour="random")
    _, again = say(alice, "iot_hue_lightchange", room="kitchen", text="a different colour")
    assert first.ok and again.ok
    assert device(alice, "Kitchen light").state["colour"] in first.text


def test_cleaning_the_floor_cleans_the_whole_home(alice):
    _, result = say(alice, "iot_cleaning", room="floor")
    assert result.ok and result.text == "Starting the robot vacuum in the whole home."


def test_whole_home_lights_from_the_words_people_use(alice):
    for words in ("all the lights", "every light", "all of the lights", "every lamp"):
        say(alice, "iot_hue_lightoff", speaker="Kitchen speaker", device=words)
        assert lights_on(alice) == set(), words
        _, result = say(alice, "iot_hue_lighton", speaker="Kitchen speaker", device=words)
        assert len(lights_on(alice)) == 8 and result.text == "Turning on all the lights.", words
    for room in ("the whole house", "everywhere", "in every room", "all over the house"):
        say(alice, "iot_hue_lightoff", speaker="Kitchen speaker", device="lights", room=room)
        assert lights_on(alice) == set(), room
        say(alice, "iot_hue_lighton", speaker="Bedroom speaker", room=room)
        assert len(lights_on(alice)) == 8, room
    # "all the lights in the kitchen": the room still decides
    say(alice, "iot_hue_lightoff", speaker="Bedroom speaker", device="all the lights", room="kitchen")
    assert "kitchen" not in lights_on(alice) and "bedroom" in lights_on(alice)


def test_which_lights_are_on_answers_for_the_whole_home_wherever_it_is_asked(alice):
    say(alice, "iot_hue_lighton", room="kitchen")
    say(alice, "iot_hue_lighton", room="office")
    _, result = say(alice, "iot_device_query", speaker="Bedroom speaker", device="lights")
    assert result.text == "The lights are on in the kitchen and office; the others are off."


def test_every_plug_at_once_in_the_home_or_a_room(alice):
    plugs = list(alice.home.devices.filter(kind="plug"))
    _, result = say(alice, "iot_wemo_on", speaker="Kitchen speaker", device="all the plugs")
    assert result.ok and all(p.state.get("on") for p in alice.home.devices.filter(kind="plug"))
    assert result.text.startswith("Turning on the ") and len(result.data["devices"]) == len(plugs) > 1
    _, result = say(alice, "iot_wemo_off", speaker="Kitchen speaker", device="every socket", room="bedroom")
    states = {p.room: p.state.get("on") for p in alice.home.devices.filter(kind="plug")}
    assert states["bedroom"] is False and any(on for room, on in states.items() if room != "bedroom")
    _, result = say(alice, "iot_wemo_off", speaker="Kitchen speaker", device="all the plugs", room="garage")
    assert not result.ok and "no plug in the garage" in result.text
