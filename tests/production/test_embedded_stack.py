"""`make run` with nothing set: web, worker and beat (the Procfile, under honcho) on the checkout's
SQLite file and embedded Redis. A timer the worker rings reaches the chat open in the browser,
as it does in production (issue 13, item 1: with an in-memory layer per process it never did),
and at INFO the worker and beat stay quiet while nothing happens (item 7)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings

from assistant import embedded_redis
from tests.servers import free_port

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_timer_rung_by_the_worker_reaches_the_browser_without_any_server_configured(nlu_artifact, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import expect, sync_playwright

    var = tmp_path / "var"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(VAR_DIR=str(var), PORT=str(port), DEBUG="true", DEMO_PASSWORD="demo-password-1", LOG_LEVEL="INFO")
    artifact, manifest = nlu_artifact
    # The steps of `make run` (the NLU registered from the session's artifact instead of trained).
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "load_demo")
    manage(
        env,
        "shell",
        "-c",
        f"from assistant.nlu import NLU_MODELS; NLU_MODELS.register({str(artifact)!r}, {manifest!r})",
    )
    assert embedded_redis.answers(embedded_redis.socket_path(var))  # the first process started it

    log = (tmp_path / "honcho.log").open("wb")
    stack = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "-f", "Procfile"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=2):
                    break
            except OSError:
                assert stack.poll() is None and time.monotonic() < deadline, (tmp_path / "honcho.log").read_text()
                time.sleep(0.3)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(f"{url}/")
                page.fill("#id_username", "demo")
                page.fill("#id_password", "demo-password-1")
                page.click("button[type=submit]")
                expect(page.locator("#connection")).to_have_attribute("data-state", "open")
                page.fill("#text", "set a timer for 5 seconds")
                page.press("#text", "Enter")
                exchange = page.locator("#messages li.exchange").last
                expect(exchange.locator(".reply")).to_contain_text("Timer set", timeout=60_000)
                # Beat finds it due (every 5 s), the worker rings it, the web process hears it.
                expect(page.locator("#messages li.notice")).to_contain_text(
                    re.compile(r"timer is done"), timeout=45_000
                )
                # Quiet: beat checks the timers twice in 11 s and the worker runs the check; neither says so.
                seen = (tmp_path / "honcho.log").read_text(errors="replace").count("\n")
                time.sleep(11)
                later = (tmp_path / "honcho.log").read_text(errors="replace").splitlines()[seen:]
                assert not [line for line in later if "worker.1" in line or "beat.1" in line], later
            finally:
                browser.close()
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        log.close()
        embedded_redis.stop(var)
    assert not embedded_redis.answers(embedded_redis.socket_path(var))
