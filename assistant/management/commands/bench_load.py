"""`manage.py bench_load`: open-loop load over real chat sockets and the JSON API; prints JSON.

    python manage.py bench_load --workers 1 --sockets 500 --rate 50 --duration 60 --json
    python manage.py bench_load --workers 2 --knee 10,20,30,40,60,80 --step-seconds 20 --json
    python manage.py bench_load --url http://127.0.0.1:8000 ...      (a server already running)

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

Without --url a server is started for the run: `manage.py serve --workers N` on this
database (so it needs Postgres and Redis, as production does). Load users and their
turns are deleted afterwards unless --keep.
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
from django.core.management.base import BaseCommand, CommandError

from assistant.management.commands.bench_pipeline import utterances
from assistant.models import ApiToken, Device
from assistant.world import ensure_home
from assistant.world.home import get_or_create_user
from feedback.models import Turn

NEW_TURN = re.compile(r'beforeend:#messages">\s*<li class="exchange" id="turn-(\d+)"')
FIRST_WORD = re.compile(r'hx-swap-oob="beforeend:#reply-(\d+)">\s?<span class="w">')
DONE = re.compile(r'id="status-(\d+)" hx-swap-oob="true"></span>')
ERROR = re.compile(r'id="chat-error"[^>]*>([^<]+)<')
SOCKETS_PER_USER = 1  # each socket is a person (500 sockets: 500 people online)
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
        stats.closed_sockets += 1
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


class Command(BaseCommand):
    help = "Open-loop load over chat sockets and the API; first-reply-word latency, errors, stored-once check."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", help="A running server (default: start `manage.py serve` for the run).")
        parser.add_argument("--workers", type=int, default=1, help="Web processes of the server started here.")
        parser.add_argument("--sockets", type=int, default=500)
        parser.add_argument("--rate", type=float, default=50.0, help="Turns per second.")
        parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load.")
        parser.add_argument("--api-share", type=float, default=0.1, help="Share of turns sent through the API.")
        parser.add_argument("--knee", help="Comma-separated rates, each run for --step-seconds.")
        parser.add_argument("--step-seconds", type=float, default=20.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--keep", action="store_true", help="Keep the load users and their turns.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sockets"] < 1 or options["rate"] <= 0 or options["duration"] <= 0:
            raise CommandError("--sockets, --rate and --duration must be positive")
        rates = [float(r) for r in options["knee"].split(",")] if options["knee"] else None
        users = self._users(options["sockets"])
        server = None
        url = options["url"]
        try:
            if url is None:
                server, url = self._start_server(options["workers"])
            report = asyncio.run(self._run(url, users, options, rates))
            report["stored"] = self._stored_once(report.pop("_sent"))
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            if not options["keep"]:
                get_user_model().objects.filter(username__startswith="load-u").delete()
        report["config"] = {
            k: options[k] for k in ("sockets", "rate", "duration", "api_share", "workers", "knee", "step_seconds")
        }
        report["config"]["speaking_rate_wps"] = settings.SPEAKING_RATE_WPS
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(json.dumps(report.get("summary") or report.get("knee"), indent=2))

    # -- setup ----------------------------------------------------------------------------
    def _users(self, sockets: int) -> list[dict[str, Any]]:
        out = []
        for i in range((sockets + SOCKETS_PER_USER - 1) // SOCKETS_PER_USER):
            user = get_or_create_user(f"load-u{i:04d}")
            ensure_home(user)
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.save()
            token, _ = ApiToken.objects.get_or_create(user=user)
            speakers = list(
                Device.objects.filter(home__owner=user, kind=Device.Kind.SPEAKER).values_list("pk", flat=True)
            )
            out.append({"cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}", "token": token.key,
                        "speakers": speakers})  # fmt: skip
        return out

    def _start_server(self, workers: int) -> tuple[subprocess.Popen, str]:
        if not (settings.REDIS_URL and settings.DATABASE_URL):
            raise CommandError(
                "without --url the server needs DATABASE_URL and REDIS_URL (several processes share them)"
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", str(workers)],
            cwd=settings.BASE_DIR,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise CommandError("the server did not start") from None
                time.sleep(0.3)
        return proc, url

    # -- the run --------------------------------------------------------------------------
    async def _run(self, url: str, users: list[dict], options: dict, rates: list[float] | None) -> dict:
        import websockets

        rng = random.Random(options["seed"])
        texts = list(utterances(400))
        ws_url = url.replace("http://", "ws://") + "/ws/chat/"
        stats = Stats()
        conns: list[Connection] = []
        readers = []
        for start in range(0, options["sockets"], 25):  # connect in small batches, as pages load
            batch = []
            for i in range(start, min(start + 25, options["sockets"])):
                user = users[i // SOCKETS_PER_USER]
                batch.append(self._connect(websockets, ws_url, url, user, rng))
            for conn in await asyncio.gather(*batch):
                conns.append(conn)
                readers.append(asyncio.create_task(conn.read(stats)))
        # Warm every web process (the first turn of a process loads the model).
        api = ThreadPoolExecutor(32)
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(api, _post, url, users[0]["token"], "hello", None) for _ in range(8))
        )

        report: dict[str, Any] = {}
        if rates:
            steps = []
            for rate in rates:
                step = Stats()
                seconds = await self._load(conns, users, texts, rate, options["step_seconds"], options["api_share"],
                                           step, api, url, rng)  # fmt: skip
                stats.sent += step.sent
                steps.append({"rate": rate, **step.summary(seconds)})
                if (steps[-1]["p95_ms"] or 0) > 1000 or steps[-1]["errors"]:
                    break
            knee = next((s["rate"] for s in steps if (s["p95_ms"] or 0) > 1000), None)
            report["knee"] = {"rate_where_p95_passes_1s": knee, "steps": steps}
        else:
            seconds = await self._load(conns, users, texts, options["rate"], options["duration"], options["api_share"],
                                       stats, api, url, rng)  # fmt: skip
            report["summary"] = stats.summary(seconds)
        for conn in conns:
            await conn.ws.close()
        for task in readers:
            task.cancel()
        api.shutdown(wait=True)
        report["_sent"] = stats.sent
        return report

    async def _connect(self, websockets, ws_url: str, origin: str, user: dict, rng: random.Random) -> Connection:
        ws = await websockets.connect(ws_url, origin=origin, additional_headers={"Cookie": user["cookie"]},
                                      open_timeout=30, max_size=2**20)  # fmt: skip
        return Connection(ws, rng.choice(user["speakers"]))

    async def _load(
        self, conns, users, texts, rate, duration, api_share, stats: Stats, api, url, rng: random.Random
    ) -> float:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        api_calls = []
        n = 0
        while (elapsed := time.monotonic() - started) < duration:
            due = started + n / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            n += 1
            text = texts[n % len(texts)]
            key = f"load-{uuid.uuid4().hex}"
            if rng.random() < api_share:
                user = rng.choice(users)
                sent = Sent(key=key, at=time.monotonic(), via="api")
                stats.sent.append(sent)
                api_calls.append(loop.run_in_executor(api, _post_timed, url, user["token"], text, key, sent))
                continue
            idle = [c for c in conns if c.idle]
            if not idle:
                stats.no_idle_socket += 1
                continue
            conn = rng.choice(idle)
            sent = Sent(key=key, at=time.monotonic(), via="ws")
            conn.pending = sent
            stats.sent.append(sent)
            frame = {"type": "say", "text": text, "device": str(conn.device_id), "key": key}
            try:
                await conn.ws.send(json.dumps(frame))
            except Exception:
                sent.error = "send failed"
                conn.pending = None
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + DRAIN_S
        while any(c.pending is not None for c in conns) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for conn in conns:
            if conn.pending is not None:
                conn.pending.error = "no reply within 10 s"
                conn.pending = None
        await asyncio.gather(*api_calls)
        return elapsed

    # -- afterwards -------------------------------------------------------------------------
    def _stored_once(self, sent: list[Sent]) -> dict[str, int]:
        keys = [s.key for s in sent]
        stored: dict[str, int] = {}
        for start in range(0, len(keys), 1000):
            for key in Turn.objects.filter(idempotency_key__in=keys[start : start + 1000]).values_list(
                "idempotency_key", flat=True
            ):
                stored[key] = stored.get(key, 0) + 1
        acknowledged = [s.key for s in sent if s.turn_id is not None]
        return {
            "acknowledged": len(acknowledged),
            "acknowledged_stored_once": sum(1 for k in acknowledged if stored.get(k) == 1),
            "stored_more_than_once": sum(1 for n in stored.values() if n > 1),
            "stored_without_acknowledgement": sum(1 for s in sent if s.turn_id is None and s.key in stored),
        }


def _post(url: str, token: str, text: str, key: str | None) -> tuple[int, dict]:
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


def _post_timed(url: str, token: str, text: str, key: str, sent: Sent) -> None:
    status, body = _post(url, token, text, key)
    if status == 201:
        sent.turn_id = body.get("turn_id")
        sent.latency_ms = (time.monotonic() - sent.at) * 1000
    else:
        sent.error = f"HTTP {status}"
