from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from channels.layers import get_channel_layer

from assistant.models import Timer
from assistant.world import home_group
from assistant.world.alarms import ring_due_timers

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield get_channel_layer()
    channel_layers.backends.clear()


def test_a_due_timer_rings_once_and_its_home_is_told(alice, in_memory_layer):
    from asgiref.sync import async_to_sync

    home = alice.home
    channel = async_to_sync(in_memory_layer.new_channel)()
    async_to_sync(in_memory_layer.group_add)(home_group(home.pk), channel)
    due = Timer.objects.create(home=home, kind="timer", label="10 minute", fires_at=NOW - timedelta(seconds=1))
    Timer.objects.create(home=home, kind="timer", fires_at=NOW + timedelta(minutes=5))

    assert [t.pk for t in ring_due_timers(NOW)] == [due.pk]
    message = async_to_sync(in_memory_layer.receive)(channel)
    assert message == {"type": "timer.rang", "timer_id": due.pk, "text": "Your 10-minute timer is done."}
    assert ring_due_timers(NOW) == []  # claimed: never announced twice
    due.refresh_from_db()
    assert due.rang_at == NOW


def test_a_cancelled_timer_never_rings(alice, in_memory_layer):
    Timer.objects.create(home=alice.home, kind="alarm", fires_at=NOW - timedelta(minutes=1), cancelled_at=NOW)
    assert ring_due_timers(NOW) == []


def test_an_alarm_announces_itself_as_an_alarm(alice, in_memory_layer):
    Timer.objects.create(home=alice.home, kind="alarm", label="7 am", fires_at=NOW)
    [rung] = ring_due_timers(NOW)
    assert rung.kind == "alarm"
