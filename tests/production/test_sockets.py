"""Chat sockets on the Redis channel layer, through a real server process.

Once, redis-py's 5 s socket timeout equalled channels_redis' 5 s blocking read: after 5 s
of channel-layer quiet the read timed out and the consumer was closed (1011), mid-reply
or idle; and when many sockets closed at once, their group_discard calls ran out of
Redis connections and left dead entries in the home's group.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
import redis
import websockets
from django.conf import settings
from django.test import Client

from assistant.models import Device
from tests.servers import running_server

pytestmark = pytest.mark.django_db(transaction=True)

IDLE_S = 60
SOCKETS = 8
DONE = re.compile(r'id="status-(\d+)" hx-swap-oob="true"></span>')


@pytest.fixture
def redis_layer():
    if not settings.REDIS_URL:
        pytest.skip("needs the Redis channel layer (make test sets REDIS_URL)")
    return redis.Redis.from_url(settings.REDIS_URL)


def _cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_idle_sockets_stay_open_and_replies_stream_to_the_end(nlu_model, alice, tmp_path, redis_layer):
    """SOCKETS sockets idle for a minute, then each says something: every reply streams to its
    end at the default speaking rate, and every socket is still open."""
    speaker = Device.objects.filter(home=alice.home, kind=Device.Kind.SPEAKER).first()
    cookie = _cookie(alice)
    with running_server(tmp_path, SPEAKING_RATE_WPS="") as url:  # empty: the default rate
        ws_url = url.replace("http://", "ws://") + "/ws/chat/"

        async def one(socket) -> str:
            await socket.send(f'{{"type": "say", "text": "what is the weather like today", "device": "{speaker.pk}"}}')
            while True:
                frame = await asyncio.wait_for(socket.recv(), timeout=60)
                if DONE.search(frame):
                    return frame

        async def soak() -> list[str]:
            sockets = [
                await websockets.connect(ws_url, origin=url, additional_headers={"Cookie": cookie})
                for _ in range(SOCKETS)
            ]
            try:
                started = time.monotonic()
                while time.monotonic() - started < IDLE_S:  # quiet: nothing sent, nothing received
                    await asyncio.sleep(5)
                    assert all(s.close_code is None for s in sockets), [s.close_code for s in sockets]
                finished = await asyncio.gather(*(one(s) for s in sockets))
                assert all(s.close_code is None for s in sockets)
                return finished
            finally:
                for s in sockets:
                    await s.close()

        finished = asyncio.run(soak())
    assert len(finished) == SOCKETS


def test_many_sockets_closing_at_once_leave_no_dead_group_entries(alice, tmp_path, redis_layer):
    cookie = _cookie(alice)
    prefix = f"test-{uuid.uuid4().hex[:12]}"  # Redis outlives test databases: a group of our own
    group = f"{prefix}:group:home-{alice.home.pk}"
    with running_server(tmp_path, CHANNELS_PREFIX=prefix) as url:
        ws_url = url.replace("http://", "ws://") + "/ws/chat/"

        async def burst() -> int:
            sockets = []
            for _ in range(6):  # opened 50 at a time, then all closed at once
                sockets += await asyncio.gather(
                    *(websockets.connect(ws_url, origin=url, additional_headers={"Cookie": cookie}) for _ in range(50))
                )
            joined = redis_layer.zcard(group)
            await asyncio.gather(*(s.close() for s in sockets))
            return joined

        joined = asyncio.run(burst())
        deadline = time.monotonic() + 20
        while redis_layer.zcard(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = redis_layer.zcard(group)
    assert joined == 300
    assert left == 0, f"{left} dead entries left in {group}"
