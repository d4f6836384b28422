"""A real Celery worker on Redis runs a learning job end to end.

The worker is a separate process pointed at this test's database and broker;
the test enqueues NLU training through the same function the admin and beat
use, and waits for the Job row to finish and the new version to be active.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from assistant.models import ModelVersion
from learning.models import Job
from tests.servers import current_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker_process(tmp_path):
    if not settings.REDIS_URL or not settings.DATABASE_URL:
        pytest.skip("needs DATABASE_URL and REDIS_URL (make test sets them)")
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "MODEL_DIR": str(tmp_path / "models"),
        "VAR_DIR": str(tmp_path / "var"),
    }
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "assistant", "worker", "--pool", "solo",
         "--queues", "celery,learning", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield proc, tmp_path / "worker.log"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_and_promotes_an_nlu_model(celery_worker_process):
    from learning.jobs import start_job
    from learning.tasks import train_nlu_task

    proc, log_path = celery_worker_process
    job = start_job(train_nlu_task)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (Job.Status.DONE, Job.Status.FAILED):
            break
        assert proc.poll() is None, log_path.read_text()[-3000:]
        time.sleep(1)
    assert job.status == Job.Status.DONE, f"{job.status}: {job.message}\n{log_path.read_text()[-3000:]}"
    assert job.progress == 1.0
    active = ModelVersion.objects.get(kind="nlu", status=ModelVersion.Status.ACTIVE)
    assert Path(active.path).exists()
    assert active.metrics
