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


def _finished(job: Job, workers: list[tuple], timeout: float = 300) -> Job:
    """The job once done, the workers (process, log file) still running meanwhile; its logs say why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (Job.Status.DONE, Job.Status.FAILED):
            break
        assert all(proc.poll() is None for proc, _ in workers), [log.read_text()[-2000:] for _, log in workers]
        time.sleep(0.5)
    logs = "\n".join(log.read_text()[-3000:] for _, log in workers)
    assert job.status == Job.Status.DONE, f"{job.status}: {job.message}\n{logs}"
    return job


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_and_promotes_an_nlu_model(celery_worker_process):
    from learning.jobs import start_job
    from learning.tasks import train_nlu_task

    job = _finished(start_job(train_nlu_task), [celery_worker_process])
    assert job.progress == 1.0
    active = ModelVersion.objects.get(kind="nlu", status=ModelVersion.Status.ACTIVE)
    assert Path(active.path).exists()
    assert active.metrics


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_two_workers_mining_in_shards_store_the_rules_one_process_mines(celery_workers, settings):
    from django.utils import timezone

    from feedback.models import RewriteRule
    from learning.jobs import start_job
    from learning.mining import collect, mine
    from learning.tasks import mine_rewrites_task
    from tests.learning.test_mining import _people, _store_chain

    settings.MINE_MIN_USERS = 3
    now = timezone.now()
    people = _people(5)
    for k, person in enumerate(people):
        _store_chain(person, "turn of the kitchn lights", "turn off the kitchen lights", now)
        _store_chain(person, "play sum jazz", "play some jazz", now, good_intent="play_music")
        if k < 4:
            _store_chain(person, "wether in paris", "weather in paris", now, bad_intent="out_of_scope",
                         good_intent="weather_query")  # fmt: skip
    for _ in range(2):  # one person's own words
        _store_chain(people[0], "play the den mix", "play my chill playlist", now, good_intent="play_music")
    expected = sorted((c.source, c.target, c.user_id, c.probability, c.support, c.users) for c in mine(collect()))
    assert len(expected) == 4

    workers = celery_workers(2, MINE_SHARDS="4", MINE_ROWS_PER_SHARD="1", MINE_MIN_USERS="3")
    job = _finished(start_job(mine_rewrites_task), workers)
    assert job.result["shards"] == 4
    parts = Job.objects.filter(kind="mine_shard")
    assert sorted(parts.values_list("status", flat=True)) == [Job.Status.DONE] * 4
    ran_by = sorted(part.result["worker"] for part in parts)  # most often both workers, but a race decides
    stored = RewriteRule.objects.values_list("source_text", "target_text", "user_id", "confidence", "support",
                                             "distinct_users")  # fmt: skip
    assert sorted(stored) == expected, ran_by
