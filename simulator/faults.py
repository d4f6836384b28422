"""The fault suite (`manage.py faults`, `make faults`): the probes that once broke the product,
repeated against real processes, each reported as a row.

    worker_kill   a Celery worker is killed with -9 at 20% of an NLU training; a second worker starts
    web_kill      one of two web processes is killed with -9 in the middle of the load
    redis_restart Redis is shut down (nothing saved) in the middle of the load, and started again
    pg_terminate  every Postgres connection of the product is terminated in the middle of the load

For the load rows: turns sent, acknowledged (a new exchange on the socket, a 201), acknowledged
and stored exactly once (looked up by idempotency key), stored without acknowledgement, errors,
and sockets closed (a page would reconnect: the client reopens them). For every row, `stuck`
counts what did not recover on its own: a job still running without a heartbeat, and the
server not answering a turn afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection

from learning.jobs import start_job
from learning.models import Job
from learning.tasks import train_nlu_task
from simulator.load import LoadClient, delete_users, make_users, post_turn, start_server, stop_server, stored_once

LOAD_RATE = 8.0
LOAD_SECONDS = 30.0
FAULT_AT_S = 10.0
SOCKETS = 100
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip
FAST_JOBS = {"JOB_HEARTBEAT_S": "1", "JOB_STALE_AFTER_S": "5", "BROKER_VISIBILITY_TIMEOUT": "5"}


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgresql://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _stuck_jobs() -> int:
    return Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=Job.stale_before()).count()


def _server_answers(url: str, token: str) -> bool:
    for _ in range(20):
        status, _body = post_turn(url, token, "what time is it", None)
        if status == 201:
            return True
        time.sleep(1)
    return False


def _worker(name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "assistant", "worker", "--pool", "solo", "--queues", "learning",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
        cwd=settings.BASE_DIR, env={**os.environ, **FAST_JOBS}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def worker_kill() -> dict[str, Any]:
    first = _worker("faults-first")
    second = None
    try:
        job = start_job(train_nlu_task, {"force": True})
        deadline = time.monotonic() + 300
        while Job.objects.get(pk=job.pk).progress < 0.2 and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        second = _worker("faults-second")
        while Job.objects.get(pk=job.pk).status not in (Job.Status.DONE, Job.Status.FAILED):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        job.refresh_from_db()
        return {
            "fault": "worker_kill",
            "jobs_finished": int(job.status == Job.Status.DONE),
            "jobs_failed": int(job.status == Job.Status.FAILED),
            "attempts": job.attempts,
            "stuck": _stuck_jobs() + int(job.status == Job.Status.RUNNING),
        }
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def _kill_one_web_process(server: subprocess.Popen) -> None:
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    if children:
        os.kill(int(children[0]), signal.SIGKILL)


def _restart_redis() -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], capture_output=True)
    time.sleep(2)
    subprocess.run(REDIS_START, capture_output=True)
    for _ in range(30):
        if subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"], capture_output=True).returncode == 0:
            return
        time.sleep(0.5)


def _terminate_connections() -> None:
    with psycopg.connect(_database_url(), autocommit=True) as db:
        db.execute(  # the product's connections, not this command's own
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name LIKE 'assistant pid %%' AND application_name <> %s",
            [connection.settings_dict["NAME"], f"assistant pid {os.getpid()}"],
        )


def under_load(name: str, fault: Callable[[subprocess.Popen], None]) -> dict[str, Any]:
    """Serve with two web processes, load them, inject `fault` after FAULT_AT_S; the row for it."""
    users = make_users(SOCKETS, prefix="fault-u")
    server, url = start_server(2)
    try:

        async def run() -> tuple[dict, int]:
            client = LoadClient(url, users, api_share=0.2)
            await client.open(SOCKETS)
            loop = asyncio.get_running_loop()
            loop.call_later(FAULT_AT_S, lambda: loop.run_in_executor(None, fault, server))
            stats, seconds = await client.load(LOAD_RATE, LOAD_SECONDS)
            reopened = await client.reopen_closed()
            await client.close()
            return {**stats.summary(seconds), "_sent": stats.sent}, reopened

        summary, reopened = asyncio.run(run())
        close_old_connections()
        stored = stored_once(summary.pop("_sent"))
        answers = _server_answers(url, users[0]["token"])
        return {
            "fault": name,
            "sent": stored["sent"],
            "acknowledged": stored["acknowledged"],
            "stored_once": stored["acknowledged_stored_once"],
            "stored_more_than_once": stored["stored_more_than_once"],
            "stored_unacknowledged": stored["stored_without_acknowledgement"],
            "errors": summary["errors"],
            "sockets_closed": summary["sockets_closed"],
            "sockets_reopened": reopened,
            "p95_ms": summary["p95_ms"],
            "stuck": _stuck_jobs() + int(not answers),
        }
    finally:
        stop_server(server)
        delete_users(prefix="fault-u")


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "worker_kill": worker_kill,
    "web_kill": lambda: under_load("web_kill", _kill_one_web_process),
    "redis_restart": lambda: under_load("redis_restart", lambda server: _restart_redis()),
    "pg_terminate": lambda: under_load("pg_terminate", lambda server: _terminate_connections()),
}


def redis_is_local() -> bool:
    """redis_restart restarts this machine's Redis: only where that is the one the product uses."""
    return urlparse(settings.REDIS_URL or "").hostname in ("127.0.0.1", "localhost")
