"""Safe defaults: DEBUG is off unless asked for, the development key is refused without it,
and an error page never shows settings or what was posted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from django.conf import settings

from tests.servers import running_server


def _environment_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_debug_is_off_by_default():
    env = _environment_without("DEBUG")
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "assistant.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_development_key_is_refused_without_debug():
    env = _environment_without("DEBUG", "SECRET_KEY")
    refused = run_manage("check", env=env)
    assert refused.returncode != 0
    assert "assistant.E010" in refused.stderr and "SECRET_KEY" in refused.stderr
    assert run_manage("check", env={**env, "DEBUG": "true"}).returncode == 0
    assert run_manage("check", env={**env, "SECRET_KEY": "a-real-key-" + "k" * 40}).returncode == 0


def test_a_failing_login_shows_no_settings_and_no_password(tmp_path):
    """The database is down: the login page still answers, and its error page leaks nothing."""
    dead = "postgres://postgres@127.0.0.1:1/nothing"
    # DEBUG empty: the settings' own default.
    env = {"DATABASE_URL": dead, "SECRET_KEY": "a-real-key-" + "k" * 40, "DEBUG": ""}
    with running_server(tmp_path, **env) as url:
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{url}/accounts/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": "alice", "password": "hunter2-secret-password"}
        ).encode()
        request = urllib.request.Request(f"{url}/accounts/login/", data=body, headers={"Referer": f"{url}/"})
        try:
            response = opener.open(request, timeout=30)
            status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
    assert status == 500
    for secret in ("hunter2-secret-password", dead, "DATABASE_URL", "SECRET_KEY", "Traceback"):
        assert secret not in text
