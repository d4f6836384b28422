"""Load over real chat sockets and the JSON API (`manage.py bench_load`, `manage.py faults`).

It creates load users (`load-uNNNN`, each with a home, an API token and a signed-in
session), opens --sockets chat sockets spread over them, and then sends utterances at
--rate turns per second whatever the server answers (open loop: a slow server is not
given time to recover), each to a socket that is not waiting for a reply, or, for
--api-share of them, as POST /api/v1/turns. Every request carries an idempotency key.

Measured per request: for a socket, from sending the utterance to the first word of its
reply; for the API, the whole response. Errors are error frames, non-201 answers,
sockets that closed and requests still unanswered 10 s after the run. Afterwards every
acknowledged request (a new exchange on the socket, a 201) is looked up by its key:
`stored_once` counts those stored exactly once. With --knee, each rate runs for
--step-seconds and the knee is the first rate whose p95 passes 1 s.

LoadClient holds the load users, the open sockets and the API pool of one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

from assistant.management.commands.bench_pipeline import utterances
from assistant.models import ApiToken, Device
from assistant.world import ensure_home
from assistant.world.home import get_or_create_user
from feedback.models import Turn

NEW_TURN = re.compile(r'beforeend:#messages">\s*<li class="exchange" id="turn-(\d+)"')
FIRST_WORD = re.compile(r'hx-swap-oob="beforeend:#reply-(\d+)">\s?<span class="w">')
DONE = re.compile(r'id="status-(\d+)" hx-swap-oob="true"></span>')
ERROR = re.compile(r'id="chat-error"[^>]*>([^<]+)<')
DRAIN_S = 10.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1)


@dataclass
class Sent:
    key: str
    at: float
    via: str  # "ws" or "api"
    turn_id: int | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass
class Stats:
    sent: list[Sent] = field(default_factory=list)
    no_idle_socket: int = 0
    closed_sockets: int = 0

    def summary(self, seconds: float) -> dict[str, Any]:
        ws = [s.latency_ms for s in self.sent if s.via == "ws" and s.latency_ms is not None]
        api = [s.latency_ms for s in self.sent if s.via == "api" and s.latency_ms is not None]
        both = ws + api
        errors = [s for s in self.sent if s.error]
        return {
            "sent": len(self.sent),
            "achieved_rate": round(len(self.sent) / seconds, 1) if seconds else None,
            "acknowledged": sum(1 for s in self.sent if s.turn_id is not None),
            "errors": len(errors),
            "error_kinds": sorted({e.error for e in errors})[:10],
            "no_idle_socket": self.no_idle_socket,
            "sockets_closed": self.closed_sockets,
            "first_word_ms": {"p50": percentile(ws, 50), "p95": percentile(ws, 95), "p99": percentile(ws, 99)},
            "api_ms": {"p50": percentile(api, 50), "p95": percentile(api, 95), "p99": percentile(api, 99)},
            "p95_ms": percentile(both, 95),
        }


class Connection:
    """One open chat socket and the request it is waiting on."""

    def __init__(self, ws, device_id: int) -> None:
        self.ws = ws
        self.device_id = device_id
        self.pending: Sent | None = None  # waiting for its exchange and first word
        self.speaking: int | None = None  # turn id whose reply streams

    @property
    def idle(self) -> bool:
        return self.pending is None and self.speaking is None and self.ws.close_code is None

    async def read(self, stats: Stats) -> None:
        try:
            async for frame in self.ws:
                self._on_frame(frame)
        except Exception:
            pass
        if self.pending is not None:
            self.pending.error = "socket closed"
            self.pending = None

    def _on_frame(self, frame: str) -> None:
        now = time.monotonic()
        pending = self.pending
        if pending is not None and (match := NEW_TURN.search(frame)):
            pending.turn_id = int(match.group(1))
            self.speaking = pending.turn_id
        if pending is not None and pending.turn_id is not None and FIRST_WORD.search(frame):
            pending.latency_ms = (now - pending.at) * 1000
            self.pending = None
        if pending is not None and (match := ERROR.search(frame)):
            pending.error = "error frame: " + match.group(1).strip()[:60]
            self.pending = None
        if (match := DONE.search(frame)) and self.speaking == int(match.group(1)):
            self.speaking = None


def post_turn(url: str, token: str, text: str, key: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(f"{url}/api/v1/turns", data=json.dumps({"text": text}).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError as exc:
        return 0, {"error": str(exc)}


def post_turn_timed(url: str, token: str, text: str, key: str, sent: Sent) -> None:
    status, body = post_turn(url, token, text, key)
    if status == 201:
        sent.turn_id = body.get("turn_id")
        sent.latency_ms = (time.monotonic() - sent.at) * 1000
    else:
        sent.error = f"HTTP {status}"


def start_server(workers: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`manage.py serve --workers N` on this database, on a free port; (process, base URL)."""
    if not (settings.REDIS_URL and settings.DATABASE_URL):
        raise RuntimeError("the server needs DATABASE_URL and REDIS_URL (several processes share them)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=settings.BASE_DIR,
        env={**os.environ, "LOG_LEVEL": "WARNING", **(env or {})},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def make_users(count: int, prefix: str = "load-u") -> list[dict[str, Any]]:
    """`count` users, each with a home, an API token and a signed-in session (a cookie)."""
    out = []
    for i in range(count):
        user = get_or_create_user(f"{prefix}{i:04d}")
        ensure_home(user)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        token, _ = ApiToken.objects.get_or_create(user=user)
        speakers = list(Device.objects.filter(home__owner=user, kind=Device.Kind.SPEAKER).values_list("pk", flat=True))
        out.append(
            {
                "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
                "token": token.key,
                "speakers": speakers,
            }
        )
    return out


def delete_users(prefix: str = "load-u") -> None:
    get_user_model().objects.filter(username__startswith=prefix).delete()


class LoadClient:
    """Open sockets (one per user) and an API pool against one server; sends open-loop load."""

    def __init__(self, url: str, users: list[dict[str, Any]], *, api_share: float, seed: int = 0) -> None:
        self.url = url
        self.users = users
        self.api_share = api_share
        self.rng = random.Random(seed)
        self.texts = list(utterances(400))
        self.conns: list[Connection] = []
        self.readers: list[asyncio.Task] = []
        self.stats = Stats()
        self.api = ThreadPoolExecutor(32)

    async def open(self, sockets: int) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/ws/chat/"
        for start in range(0, sockets, 25):  # in small batches, as pages load
            batch = [
                self._connect(websockets, ws_url, self.users[i % len(self.users)])
                for i in range(start, min(start + 25, sockets))
            ]
            for conn in await asyncio.gather(*batch):
                self.conns.append(conn)
                self.readers.append(asyncio.create_task(conn.read(self.stats)))
        # Warm every web process (the first turn of a process loads the model).
        loop = asyncio.get_running_loop()
        token = self.users[0]["token"]
        await asyncio.gather(
            *(loop.run_in_executor(self.api, post_turn, self.url, token, "hello", None) for _ in range(8))
        )

    async def _connect(self, websockets, ws_url: str, user: dict) -> Connection:
        ws = await websockets.connect(
            ws_url, origin=self.url, additional_headers={"Cookie": user["cookie"]}, open_timeout=30, max_size=2**20
        )
        return Connection(ws, self.rng.choice(user["speakers"]))

    async def reopen_closed(self) -> int:
        """Open a new socket for each one that closed (a page reconnecting); returns how many."""
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/ws/chat/"
        reopened = 0
        for i, conn in enumerate(self.conns):
            if conn.ws.close_code is None:
                continue
            try:
                fresh = await self._connect(websockets, ws_url, self.users[i % len(self.users)])
            except Exception:
                continue
            self.conns[i] = fresh
            self.readers.append(asyncio.create_task(fresh.read(self.stats)))
            reopened += 1
        return reopened

    async def load(self, rate: float, duration: float, stats: Stats | None = None) -> tuple[Stats, float]:
        """Send `rate` turns a second for `duration` seconds, whatever the server answers; drain."""
        stats = stats or Stats()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        api_calls = []
        n = 0
        while time.monotonic() - started < duration:
            due = started + n / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            n += 1
            text = self.texts[n % len(self.texts)]
            key = f"load-{uuid.uuid4().hex}"
            if self.rng.random() < self.api_share:
                user = self.rng.choice(self.users)
                sent = Sent(key=key, at=time.monotonic(), via="api")
                stats.sent.append(sent)
                api_calls.append(
                    loop.run_in_executor(self.api, post_turn_timed, self.url, user["token"], text, key, sent)
                )
                continue
            idle = [c for c in self.conns if c.idle]
            if not idle:
                stats.no_idle_socket += 1
                continue
            conn = self.rng.choice(idle)
            sent = Sent(key=key, at=time.monotonic(), via="ws")
            conn.pending = sent
            stats.sent.append(sent)
            try:
                await conn.ws.send(json.dumps({"type": "say", "text": text, "device": str(conn.device_id), "key": key}))
            except Exception:
                sent.error = "send failed"
                conn.pending = None
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + DRAIN_S
        while any(c.pending is not None for c in self.conns) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for conn in self.conns:
            if conn.pending is not None:
                conn.pending.error = "no reply within 10 s"
                conn.pending = None
        await asyncio.gather(*api_calls)
        stats.closed_sockets = sum(1 for c in self.conns if c.ws.close_code is not None)
        self.stats.sent += stats.sent
        return stats, elapsed

    async def close(self) -> None:
        for conn in self.conns:
            await conn.ws.close()
        for task in self.readers:
            task.cancel()
        self.api.shutdown(wait=True)


def stored_once(sent: list[Sent]) -> dict[str, int]:
    """How the acknowledged requests of a run were stored, looked up by their idempotency keys."""
    keys = [s.key for s in sent]
    stored: dict[str, int] = {}
    for start in range(0, len(keys), 1000):
        for key in Turn.objects.filter(idempotency_key__in=keys[start : start + 1000]).values_list(
            "idempotency_key", flat=True
        ):
            stored[key] = stored.get(key, 0) + 1
    acknowledged = [s.key for s in sent if s.turn_id is not None]
    return {
        "sent": len(sent),
        "acknowledged": len(acknowledged),
        "acknowledged_stored_once": sum(1 for k in acknowledged if stored.get(k) == 1),
        "stored_more_than_once": sum(1 for n in stored.values() if n > 1),
        "stored_without_acknowledgement": sum(1 for s in sent if s.turn_id is None and s.key in stored),
    }
