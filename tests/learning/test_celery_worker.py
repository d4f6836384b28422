"""A real Celery worker on Redis runs a learning job end to end.

The worker is a separate process pointed at this test's database and broker;
the test enqueues NLU training through the same function the admin and beat
use, and waits for the Job row to finish and the new version to be active.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from assistant.models import ModelVersion
from learning.models import Job


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
