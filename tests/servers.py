"""Processes that integration tests start against this test's database: the web server serving the app, and
Celery workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection


def current_database_url() -> str:
    """DATABASE_URL of the database this test runs on, for a server in another process."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(log_dir: Path, *, workers: int = 1, **env_overrides: str) -> Iterator[str]:
    """`manage.py serve --workers N` (web processes of assistant/server.py: daphne, on one
    socket) on this test's database; yields its base URL.

    The test must use django_db(transaction=True) so all processes see every write.
    """
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "MODEL_DIR": str(settings.MODEL_DIR),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "False",
        **env_overrides,
    }
    log_path = log_dir / "server.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", str(workers)]
        proc = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        yield url
    finally:
        stop(proc)


def start_worker(tmp_path: Path, name: str, **env_overrides: str) -> tuple[subprocess.Popen, Path]:
    """A real Celery worker (solo pool) on this test's database and Redis, consuming every queue, with its
    log in tmp_path/<name>.log. Workers started for one test share its MODEL_DIR and VAR_DIR."""
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "MODEL_DIR": str(tmp_path / "models"),
        "VAR_DIR": str(tmp_path / "var"),
        **env_overrides,
    }
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "assistant", "worker", "--pool", "solo", "--hostname",
             f"{name}@%h", "--queues", "celery,learning", "--loglevel", "INFO", "--without-gossip",
             "--without-mingle"],
            cwd=Path(__file__).resolve().parents[1], env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, log_path


def stop(proc: subprocess.Popen) -> None:
    """Stop a server or worker started here: politely, then for good after 20 s (and reap it)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
