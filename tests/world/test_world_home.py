"""The demo home: created once per user, complete, and described for the side panel."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from assistant.models import Device, Home, MediaPlayer
from assistant.world import ensure_home
from assistant.world.devices import describe_state, device_summary, media_summary, update_state
from assistant.world.home import demo_spec, reset_home, room_aliases

ROOMS = {"living room", "kitchen", "bedroom", "bathroom", "office", "hallway", "garage", "kids room"}


def test_a_new_user_gets_the_demo_home_with_every_room_and_device(charlie):
    home = ensure_home(charlie)
    assert {d.room for d in home.devices.all()} == ROOMS
    assert {d.room for d in home.devices.filter(kind="light")} == ROOMS
    names = set(home.devices.values_list("name", flat=True))
    assert {
        "Thermostat",
        "Oven",
        "Garage door",
        "TV",
        "Fan",
        "Coffee machine",
        "Lamp",
        "Heater",
        "Robot vacuum",
    } <= names
    assert home.devices.get(name="Thermostat").room == "hallway"
    assert home.devices.get(name="Oven").room == "kitchen"
    speakers = {d.name: d.has_screen for d in home.devices.filter(kind="speaker")}
    assert speakers == {"Living room display": True, "Kitchen speaker": False, "Bedroom speaker": False}
    assert MediaPlayer.objects.get(home=home).status == "stopped"


def test_ensure_home_is_idempotent(charlie):
    first = ensure_home(charlie)
    second = ensure_home(charlie)
    assert first.pk == second.pk
    assert Home.objects.filter(owner=charlie).count() == 1
    assert Device.objects.filter(home=first).count() == len(demo_spec()["devices"])
    assert MediaPlayer.objects.filter(home=first).count() == 1


def test_ensure_home_completes_a_home_that_was_created_empty(charlie):
    home = Home.objects.create(owner=charlie)
    assert ensure_home(charlie).pk == home.pk
    assert home.devices.count() == len(demo_spec()["devices"])
    assert MediaPlayer.objects.filter(home=home).exists()


def test_ensure_home_does_not_undo_state_changes(charlie):
    home = ensure_home(charlie)
    door = home.devices.get(kind="garage_door")
    assert update_state(door, open=True)
    ensure_home(charlie)
    door.refresh_from_db()
    assert door.state == {"open": True}


@pytest.mark.django_db(transaction=True)
def test_ensure_home_is_safe_when_two_requests_race():
    user = get_user_model().objects.create_user("racer", password="racer-password-1")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            ensure_home(user)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    home = Home.objects.get(owner=user)
    assert home.devices.count() == len(demo_spec()["devices"])
    assert MediaPlayer.objects.filter(home=home).count() == 1


def test_room_aliases_name_only_rooms_of_the_demo_home():
    aliases = room_aliases()
    assert aliases["lounge"] == "living room"
    assert aliases["hall"] == "hallway"
    assert set(aliases.values()) == ROOMS


def test_the_device_summary_describes_each_device_in_words(alice):
    home = alice.home
    update_state(home.devices.get(name="Kitchen light"), on=True, brightness=40, colour="blue")
    update_state(home.devices.get(name="Oven"), on=True, target_c=200)
    rows = {row["name"]: row for row in device_summary(home)}
    assert len(rows) == len(demo_spec()["devices"])
    assert rows["Kitchen light"]["state"] == "on, 40%, blue"
    assert rows["Kitchen light"]["room"] == "kitchen" and rows["Kitchen light"]["kind"] == "light"
    assert rows["Bedroom light"]["state"] == "off"
    assert rows["Oven"]["state"] == "on, 200°C"
    assert rows["Thermostat"]["state"] == "19.5°C, set to 20°C"
    assert rows["Garage door"]["state"] == "closed"
    assert rows["Robot vacuum"]["state"] == "docked"
    assert rows["Living room display"]["state"] == "speaker with a screen"


def test_update_state_reports_whether_anything_changed(alice):
    fan = alice.home.devices.get(name="Fan")
    assert update_state(fan, on=True) is True
    assert update_state(fan, on=True) is False
    assert describe_state(fan) == "on"


def test_the_media_summary_says_what_is_playing(alice):
    home = alice.home
    assert media_summary(home)["text"] == "Nothing playing"
    MediaPlayer.objects.filter(home=home).update(
        status="paused", item={"id": "t009", "title": "Bohemian Rhapsody", "artist": "Queen", "type": "song"}
    )
    assert media_summary(home)["text"] == "Paused: Bohemian Rhapsody by Queen"


def test_reset_puts_the_demo_state_back(alice):
    home = alice.home
    door = home.devices.get(kind="garage_door")
    update_state(door, open=True)
    MediaPlayer.objects.filter(home=home).update(status="playing", volume=9)
    assert reset_home(home) == [door.pk]
    door.refresh_from_db()
    assert door.state == {"open": False}
    assert MediaPlayer.objects.get(home=home).volume == 5
