"""`manage.py serve [--host H] [--port P] [--workers N]`: the web server, as one or more processes.

The listening socket is opened here, once, and handed to WEB_CONCURRENCY web processes
(`python -m assistant.server --fd N`, daphne): the kernel spreads new connections over
them, so chat turns and API requests of one machine use all its cores. The processes
share nothing but Postgres and Redis (channel layer, cache, broker), so a timer rung by
a worker or a reply to a group reaches a socket whichever process holds it. A process
that dies is started again (after a pause if it keeps dying); SIGTERM or Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

RESTART_PAUSE_S = 1.0  # before starting a process that died again
MAX_PAUSE_S = 30.0


class Command(BaseCommand):
    help = "Serve the app with WEB_CONCURRENCY daphne processes on one listening socket."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=settings.WEB_CONCURRENCY, help="web processes")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = options["workers"]
        if not 1 <= workers <= 64:
            raise CommandError("--workers must be between 1 and 64")
        family = socket.AF_INET6 if ":" in options["host"] else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((options["host"], options["port"]))
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc.strerror}") from None
        listener.listen(1024)
        listener.set_inheritable(True)
        fd = listener.fileno()
        self.stdout.write(f"serving on http://{options['host']}:{options['port']} with {workers} web process(es)")
        self.stdout.flush()

        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        command = [sys.executable, "-m", "assistant.server", "--fd", str(fd), "--application-close-timeout", "5"]
        children: dict[int, subprocess.Popen] = {}
        pauses: dict[int, float] = {}
        started_at: dict[int, float] = {}

        def start(slot: int) -> None:
            children[slot] = subprocess.Popen(command, pass_fds=(fd,))
            started_at[slot] = time.monotonic()

        for slot in range(workers):
            start(slot)
        try:
            while not stopping:
                time.sleep(0.2)
                for slot, child in list(children.items()):
                    if child.poll() is None:
                        continue
                    # Quick deaths back off (a broken settings file should not spin the CPU).
                    lived = time.monotonic() - started_at[slot]
                    pause = RESTART_PAUSE_S if lived > MAX_PAUSE_S else min(MAX_PAUSE_S, pauses.get(slot, 0.5) * 2)
                    pauses[slot] = pause
                    self.stderr.write(f"web process {child.pid} exited with {child.returncode}; restarting in {pause}s")
                    time.sleep(pause)
                    if not stopping:
                        start(slot)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            listener.close()
