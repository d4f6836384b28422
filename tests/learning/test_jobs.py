"""The one job runner survives a dead worker: heartbeats, the reaper, claims of stale jobs,
retries, and a real worker killed with -9 mid-training whose job is finished by the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from learning.jobs import JobOutcome, run_job
from learning.models import Job
from tests.servers import start_worker


def _stale(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_S + 1)
    )


@pytest.mark.django_db(transaction=True)  # the heartbeat writes on a thread (connection) of its own
def test_a_running_job_beats_while_its_work_runs(settings):
    settings.JOB_HEARTBEAT_S = 0.05
    job = Job.objects.create(kind="test")
    beats = []

    def work(job, progress):
        first = Job.objects.get(pk=job.pk).heartbeat_at
        time.sleep(0.5)
        beats.append((first, Job.objects.get(pk=job.pk).heartbeat_at))
        return JobOutcome("ok")

    run_job(job.pk, work)
    first, later = beats[0]
    assert later > first
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempts == 1


@pytest.mark.django_db
def test_the_reaper_fails_jobs_whose_worker_stopped_beating_and_only_those():
    now = timezone.now()
    dead = Job.objects.create(kind="train_nlu", status=Job.Status.RUNNING, heartbeat_at=now, attempts=1)
    alive = Job.objects.create(kind="train_nlu", status=Job.Status.RUNNING, heartbeat_at=now, attempts=1)
    _stale(dead)
    assert Job.reap_stale() == [dead.pk]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == Job.Status.FAILED and dead.message.startswith("worker lost")
    assert alive.status == Job.Status.RUNNING


@pytest.mark.django_db
def test_a_stale_running_job_can_be_claimed_again_a_live_one_cannot():
    job = Job.objects.create(kind="test", status=Job.Status.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    assert Job.claim(job.pk) is None  # alive on another worker
    _stale(job)
    claimed = Job.claim(job.pk)  # its worker died: a redelivered message takes it over
    assert claimed is not None and claimed.attempts == 2


@pytest.mark.django_db
def test_a_job_is_given_up_after_its_attempts(settings):
    job = Job.objects.create(kind="test", status=Job.Status.FAILED, attempts=settings.JOB_MAX_ATTEMPTS)
    assert Job.claim(job.pk) is None
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "given up" in job.message
    assert job.retry() is False


@pytest.mark.django_db
def test_a_failed_job_is_retried(django_capture_on_commit_callbacks, nlu_model):
    from learning.tasks import train_nlu_task

    job = Job.objects.create(kind=train_nlu_task.job_kind, status=Job.Status.FAILED, attempts=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert job.retry()
    assert len(callbacks) == 1
    assert Job.objects.create(kind="train_nlu", status=Job.Status.DONE).retry() is False


def _worker(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    # Quick to notice a dead worker, so the test need not wait minutes.
    return start_worker(
        tmp_path, name, MODEL_DIR=str(settings.MODEL_DIR), JOB_HEARTBEAT_S="1", JOB_STALE_AFTER_S="4",
        BROKER_VISIBILITY_TIMEOUT="4",
    )  # fmt: skip


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_is_finished_by_the_next_worker(nlu_model, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs the Redis broker (make test sets REDIS_URL)")
    from learning.jobs import start_job
    from learning.tasks import train_nlu_task

    first, first_log = _worker(tmp_path, "first")
    second = None
    try:
        job = start_job(train_nlu_task, {"force": True})
        deadline = time.monotonic() + 240
        while Job.objects.get(pk=job.pk).progress < 0.2:  # well into the training
            assert time.monotonic() < deadline and first.poll() is None, first_log.read_text()[-3000:]
            time.sleep(0.2)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING  # what a dead worker leaves

        second, second_log = _worker(tmp_path, "second")
        while (status := Job.objects.get(pk=job.pk).status) not in (Job.Status.DONE, Job.Status.FAILED):
            assert time.monotonic() < deadline, second_log.read_text()[-3000:]
            time.sleep(0.5)
        job.refresh_from_db()
        assert status == Job.Status.DONE, job.message
        assert job.attempts == 2  # the redelivered message claimed it again
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.mark.django_db
def test_fan_out_runs_the_parts_nobody_took_here_from_the_last(settings):
    from learning.jobs import fan_out

    ran = []

    def work(job, progress):
        ran.append(job.params["n"])
        return JobOutcome(f"part {job.params['n']}", {"twice": 2 * job.params["n"]})

    parts = fan_out("test_part", [{"n": n} for n in range(4)], work)
    assert ran == [3, 2, 1, 0]  # the queue hands the first ones to other workers, if any
    assert [(p.status, p.result["twice"]) for p in parts] == [(Job.Status.DONE, 2 * n) for n in range(4)]


@pytest.mark.django_db
def test_fan_out_retries_a_failing_part_then_says_which_failed_and_why(settings):
    from learning.jobs import PartFailed, fan_out

    settings.JOB_MAX_ATTEMPTS = 2
    tries = []

    def work(job, progress):
        tries.append(job.params["n"])
        if job.params["n"] == 1:
            raise ValueError("shard file unreadable")
        return JobOutcome("ok")

    with pytest.raises(PartFailed, match="shard file unreadable"):
        fan_out("test_part", [{"n": n} for n in range(3)], work)
    assert sorted(tries) == [0, 1, 1, 2]
    assert sorted(Job.objects.filter(kind="test_part").values_list("status", flat=True)) == [
        Job.Status.DONE,
        Job.Status.DONE,
        Job.Status.FAILED,
    ]
