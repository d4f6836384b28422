"""Postgres connections stay bounded under any load: one pool per process (DB_POOL_SIZE).

Once, under daphne, every concurrent request thread kept a connection of its own for 60 s:
500 requests at concurrency 20 exhausted max_connections and 117 got a 500.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import connection

from assistant.models import ApiToken
from tests.servers import current_database_url, running_server

pytestmark = pytest.mark.django_db(transaction=True)

POOL = 4
CONCURRENCY = 30
REQUESTS = 150


def _post_turn(url: str, key: str, i: int) -> int:
    body = json.dumps({"text": f"set a timer for {i % 50 + 1} minutes"}).encode()
    request = urllib.request.Request(
        f"{url}/api/v1/turns",
        data=body,
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _server_pid(database: str) -> int:
    """The daphne process's pid, from the application_name of its connections (not ours)."""
    import os

    with psycopg.connect(current_database_url().replace("postgres://", "postgresql://"), autocommit=True) as db:
        names = db.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
            [database, "assistant pid %"],
        ).fetchall()
    pids = {int(name.rsplit(" ", 1)[1]) for (name,) in names} - {os.getpid()}
    assert len(pids) == 1, pids
    return pids.pop()


def test_connections_stay_within_the_pool_under_concurrent_requests(nlu_model, alice, tmp_path):
    key = ApiToken.objects.create(user=alice).key
    database = connection.settings_dict["NAME"]
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(current_database_url().replace("postgres://", "postgresql://"), autocommit=True) as db:
            while not done.is_set():
                row = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                    [database, f"assistant pid {server_pid}"],
                ).fetchone()
                seen.append(int(row[0]))
                time.sleep(0.05)

    with running_server(tmp_path, DB_POOL_SIZE=str(POOL)) as url:
        _post_turn(url, key, 0)  # load the model first
        server_pid = _server_pid(database)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                statuses = list(pool.map(lambda i: _post_turn(url, key, i), range(REQUESTS)))
        finally:
            done.set()
            sampler.join(timeout=10)
    assert statuses.count(201) == REQUESTS, sorted(set(statuses))
    assert max(seen) <= POOL, f"the server held up to {max(seen)} connections"
    assert len(seen) > 5  # it really sampled during the load
