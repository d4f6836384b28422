"""The learning cycle runs as the product runs: on beat's schedule, on demand (the command and the
admin's button), one cycle at a time, and every step a job of its own."""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from learning.cycle import LEARNING_STEPS, learning_cycle_task, steps_for
from learning.jobs import JobOutcome, run_job
from learning.models import Job


def test_beat_starts_a_learning_cycle_on_a_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["learning-cycle"]
    assert entry["task"] == "learning.start_learning_cycle"
    assert entry["schedule"] == settings.LEARNING_CYCLE_MINUTES * 60
    assert "learning.cycle" in settings.CELERY_IMPORTS  # the worker knows the cycle's task


def test_learners_choose_their_steps():
    assert [s.name for s in steps_for("all")] == [s.name for s in LEARNING_STEPS]
    assert "nlu" not in [s.name for s in steps_for("rewrites")]
    assert "mining" not in [s.name for s in steps_for("nlu")]
    assert steps_for("none") == []
    with pytest.raises(ValueError):
        steps_for("everything")


@pytest.mark.django_db
def test_the_cycle_task_runs_every_step_as_a_job(nlu_model):
    job = Job.objects.create(kind="learning_cycle", params={"learners": "rewrites"})
    learning_cycle_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.message
    assert set(job.result) == {s.name for s in steps_for("rewrites")}
    assert {s.job_kind for s in steps_for("rewrites")} <= set(Job.objects.values_list("kind", flat=True))


@pytest.mark.django_db
def test_learn_prints_what_each_step_did(nlu_model):
    out = StringIO()
    call_command("learn", "--sync", stdout=out)
    printed = out.getvalue()
    for step in LEARNING_STEPS:
        assert printed.count(step.name) >= 1, printed


@pytest.mark.django_db(transaction=True)
def test_two_exclusive_jobs_started_at_once_run_one_at_a_time():
    first = Job.objects.create(kind="mine_rewrites")
    second = Job.objects.create(kind="mine_rewrites")
    ran = []
    barrier = threading.Barrier(2)

    def work(job, progress):
        ran.append(job.pk)
        time.sleep(1.0)
        return JobOutcome("mined")

    def start(job_id):
        barrier.wait()
        try:
            run_job(job_id, work, exclusive=True)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start, args=(j.pk,)) for j in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ran) == 1
    skipped = Job.objects.get(pk=({first.pk, second.pk} - set(ran)).pop())
    assert skipped.status == Job.Status.DONE and skipped.message.startswith("skipped: mine_rewrites job")
    assert Job.objects.get(pk=ran[0]).status == Job.Status.DONE


@pytest.mark.django_db
def test_an_exclusive_job_waits_for_nobody_once_the_other_is_dead():
    Job.objects.create(
        kind="mine_rewrites", status=Job.Status.RUNNING, heartbeat_at=timezone.now() - timezone.timedelta(hours=1)
    )
    job = Job.objects.create(kind="mine_rewrites")
    done = run_job(job.pk, lambda j, p: JobOutcome("mined"), exclusive=True)
    assert done.status == Job.Status.DONE and done.message == "mined"


@pytest.mark.django_db
def test_the_admin_button_queues_a_learning_cycle(admin_client, django_capture_on_commit_callbacks):
    page = admin_client.get(reverse("admin:learning_job_changelist"))
    assert b"Run a learning cycle now" in page.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("admin:learning_job_run_cycle"))
    assert response.status_code == 302
    job = Job.objects.get(kind="learning_cycle")
    assert job.status == Job.Status.QUEUED and len(callbacks) == 1
    assert admin_client.get(reverse("admin:learning_job_run_cycle")).status_code == 405


@pytest.mark.django_db
def test_people_who_are_not_staff_cannot_start_a_cycle(client, alice):
    client.force_login(alice)
    response = client.post(reverse("admin:learning_job_run_cycle"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Job.objects.filter(kind="learning_cycle").exists()


def test_a_worker_knows_every_learning_task_by_the_name_jobs_are_sent_to():
    from assistant.celery import app

    app.loader.import_default_modules()  # what a worker imports at start (tasks.py and CELERY_IMPORTS)
    kinds = {step.job_kind for step in LEARNING_STEPS} | {"learning_cycle"}
    assert {f"learning.{kind}" for kind in kinds} <= set(app.tasks)
    assert "learning.start_learning_cycle" in app.tasks
