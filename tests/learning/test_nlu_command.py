"""manage.py train_nlu and the Celery training task."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from assistant.models import ModelVersion
from learning.models import Job


@pytest.mark.django_db
def test_if_missing_is_a_noop_when_a_model_exists(nlu_model):
    out = StringIO()
    call_command("train_nlu", "--if-missing", stdout=out)
    assert "nothing to do" in out.getvalue()
    assert ModelVersion.objects.filter(kind="nlu").count() == 1


@pytest.mark.django_db
def test_same_data_is_not_retrained(nlu_model):
    out = StringIO()
    call_command("train_nlu", stdout=out)
    text = out.getvalue()
    assert "Skipped retraining" in text
    assert "iot_hue_lightoff" in text  # per-intent counts are printed
    assert "intent accuracy" in text
    assert ModelVersion.objects.filter(kind="nlu").count() == 1


def test_if_missing_does_not_import_torch():
    """The check runs on every `make run`: it must not pay for torch."""
    code = (
        "import django, sys; django.setup();"
        "from django.core.management import call_command;"
        "from assistant.nlu import NLU_MODELS;"
        "import learning.management.commands.train_nlu, assistant.nlu, learning.tasks;"
        "print('torch' in sys.modules)"
    )
    env = {"DJANGO_SETTINGS_MODULE": "assistant.settings", "PATH": "/usr/bin:/bin"}
    import os

    env.update({k: v for k, v in os.environ.items() if k in {"DATABASE_URL", "REDIS_URL", "VAR_DIR", "HOME"}})
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("False")


@pytest.mark.django_db
def test_task_marks_job_done(nlu_model):
    from learning.tasks import train_nlu_task

    job = Job.objects.create(kind="train_nlu")
    train_nlu_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.progress == 1.0
    assert job.finished_at is not None and job.started_at is not None
    assert job.result["version"] == nlu_model.version
    assert job.result["skipped"] is True  # same data as the active model


@pytest.mark.django_db
def test_task_marks_job_failed_with_a_message(nlu_model, tmp_path, settings):
    from learning.tasks import train_nlu_task

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    settings.MODEL_DIR = blocker  # versions cannot be written under a file
    job = Job.objects.create(kind="train_nlu", params={"force": True})
    train_nlu_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.message
    assert ModelVersion.objects.filter(kind="nlu", status="active").get().pk == nlu_model.pk


@pytest.mark.django_db
def test_start_nlu_training_enqueues_on_commit(nlu_model, django_capture_on_commit_callbacks):
    from assistant.celery import app
    from learning.jobs import start_job
    from learning.tasks import train_nlu_task

    with django_capture_on_commit_callbacks() as callbacks:
        job = start_job(train_nlu_task)
    assert job.status == Job.Status.QUEUED
    assert len(callbacks) == 1  # nothing is sent before the row is committed
    app.conf.task_always_eager = True  # run the enqueued task here instead of on a worker
    try:
        callbacks[0]()
    finally:
        app.conf.task_always_eager = False
    job.refresh_from_db()
    assert job.status == Job.Status.DONE


@pytest.mark.django_db
def test_task_trains_on_data_files_named_in_the_job(nlu_model, tmp_path, settings):
    """A job may name labelled files on the worker's disk, as `train_nlu --data` does."""
    import json

    from learning.tasks import train_nlu_task

    settings.MODEL_DIR = tmp_path / "models"
    rows = [
        {
            "text": f"{verb} the {room} lights",
            "annotation": f"{verb} the [house_place : {room}] lights",
            "intent": intent,
        }
        for verb, intent in (
            ("turn on", "iot_hue_lighton"),
            ("switch on", "iot_hue_lighton"),
            ("turn off", "iot_hue_lightoff"),
        )
        for room in ("kitchen", "bedroom", "hall", "office", "attic", "study")
    ]
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    job = Job.objects.create(
        kind="train_nlu", params={"data": [str(data)], "format": "hwu", "seed": False, "force_promote": True}
    )
    train_nlu_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.message
    assert job.result["examples"] == 18 and job.result["promoted"] is True
    active = ModelVersion.objects.get(kind="nlu", status="active")
    assert active.pk != nlu_model.pk and active.manifest["intent_counts"] == {
        "iot_hue_lightoff": 6,
        "iot_hue_lighton": 12,
    }


@pytest.mark.django_db
def test_task_with_a_missing_data_file_fails_and_keeps_the_model(nlu_model, tmp_path):
    from learning.tasks import train_nlu_task

    job = Job.objects.create(kind="train_nlu", params={"data": [str(tmp_path / "nope.jsonl")], "seed": False})
    train_nlu_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "no such file" in job.message
    job = Job.objects.create(kind="train_nlu", params={"data": "train.jsonl"})
    train_nlu_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "list of file paths" in job.message
    assert ModelVersion.objects.get(kind="nlu", status="active").pk == nlu_model.pk
