"""Several web processes on one socket (`manage.py serve --workers 2`) behave as one server:
both take requests, and what one process does reaches a chat socket held by the other."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import websockets
from django.conf import settings
from django.db import connection
from django.test import Client

from assistant.models import ApiToken
from tests.servers import current_database_url, running_server

pytestmark = pytest.mark.django_db(transaction=True)


def _turn(url: str, key: str, text: str) -> dict:
    request = urllib.request.Request(
        f"{url}/api/v1/turns",
        data=json.dumps({"text": text, "device": "kitchen"}).encode(),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _server_pids(database: str) -> set[str]:
    with psycopg.connect(current_database_url().replace("postgres://", "postgresql://"), autocommit=True) as db:
        rows = db.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
            [database, "assistant pid %"],
        ).fetchall()
    import os

    return {name for (name,) in rows} - {f"assistant pid {os.getpid()}"}


def test_two_web_processes_share_the_load_and_the_channel_layer(nlu_model, alice, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("the processes share Redis (make test sets REDIS_URL)")
    key = ApiToken.objects.create(user=alice).key
    client = Client()
    client.force_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    with running_server(tmp_path, workers=2) as url:
        ws_url = url.replace("http://", "ws://") + "/ws/chat/"

        async def watch_and_act() -> list[str]:
            frames: list[str] = []
            async with websockets.connect(ws_url, origin=url, additional_headers={"Cookie": cookie}) as socket:
                loop = asyncio.get_running_loop()
                with ThreadPoolExecutor(8) as pool:
                    texts = ["turn on the kitchen light", "turn off the kitchen light"] * 8
                    await asyncio.gather(*(loop.run_in_executor(pool, _turn, url, key, t) for t in texts))
                while True:  # the device panel the API's turns made the socket's process send
                    try:
                        frames.append(await asyncio.wait_for(socket.recv(), timeout=5))
                    except TimeoutError:
                        return frames

        frames = asyncio.run(watch_and_act())
        pids = _server_pids(connection.settings_dict["NAME"])
    assert any('id="device-panel"' in f for f in frames), "no device change reached the socket"
    assert len(pids) == 2, pids  # both processes took requests
