"""Shared fixtures. Personas: alice owns a home, bob owns another, charlie has no home yet.

The NLU model is trained once per test session into a temporary folder
(`nlu_artifact`); `nlu_model` registers it as the active version in the
current test's database, so any test that runs turns asks for `nlu_model`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model


@pytest.fixture(scope="session")
def nlu_artifact(tmp_path_factory):
    """Train the seed NLU model once for the whole test session; returns (path, manifest)."""
    from assistant.nlu.seed import seed_examples
    from learning.nlu.heads import train

    out_dir = tmp_path_factory.mktemp("nlu") / "seed"
    manifest = train(seed_examples(), out_dir)
    return out_dir, manifest


@pytest.fixture
def nlu_model(db, nlu_artifact, settings):
    """The session's NLU artifact, registered and active in this test's database."""
    from assistant.nlu import NLU_MODELS

    path, manifest = nlu_artifact
    settings.MODEL_DIR = path.parent
    return NLU_MODELS.register(path, manifest, promote=True)


@pytest.fixture
def alice(db):
    from assistant.world import ensure_home

    user = get_user_model().objects.create_user("alice", password="alice-password-1")
    ensure_home(user)
    return user


@pytest.fixture
def bob(db):
    from assistant.world import ensure_home

    user = get_user_model().objects.create_user("bob", password="bob-password-1")
    ensure_home(user)
    return user


@pytest.fixture
def charlie(db):
    return get_user_model().objects.create_user("charlie", password="charlie-password-1")


def pytest_configure(config):
    # Tests create many users; the default password hasher is deliberately slow.
    from django.conf import settings

    # pytest-django runs with DEBUG off, where the development key is refused (assistant.E010);
    # the servers and commands tests start in other processes inherit the test key too.
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        settings.SECRET_KEY = os.environ["SECRET_KEY"] = "tests-only-secret-key-" + "x" * 40
    # Replies are exactly what the skills say unless a test asks for the survey question (and so
    # in the servers tests start too).
    settings.SURVEY_RATE = 0.0
    os.environ["SURVEY_RATE"] = "0"
    # Each test's database is rolled back under the process's loaded models: the registry is
    # read on every turn here (tests/nlu/test_nlu_registry.py covers the recheck interval).
    settings.MODEL_RECHECK_SECONDS = 0.0
    os.environ["MODEL_RECHECK_SECONDS"] = "0"

    # PBKDF2 stays available for tests whose server runs in another process with
    # the real settings (see `server_password`).
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


def server_password(user, raw: str) -> None:
    """Give `user` a password that a server process with the production settings can check."""
    from django.contrib.auth.hashers import make_password

    user.password = make_password(raw, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])


@pytest.fixture
def celery_workers(tmp_path):
    """Start real Celery workers: `start(n, **env)` -> [(process, log file)], stopped after the test
    (which must use django_db(transaction=True))."""
    from tests.servers import start_worker, stop

    if not settings.REDIS_URL or not settings.DATABASE_URL:
        pytest.skip("needs DATABASE_URL and REDIS_URL (make test sets them)")
    started: list[subprocess.Popen] = []

    def start(n: int, **env: str) -> list[tuple[subprocess.Popen, Path]]:
        workers = [start_worker(tmp_path, f"worker{len(started) + i}", **env) for i in range(n)]
        started.extend(proc for proc, _ in workers)
        return workers

    yield start
    for proc in started:
        stop(proc)


@pytest.fixture
def celery_worker_process(celery_workers):
    """A real Celery worker; (process, its log file). The test must use django_db(transaction=True) so the
    worker sees its writes."""
    (worker,) = celery_workers(1)
    return worker
