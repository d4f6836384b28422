"""The learning cycle's NLU retrain continues the serving version on the new labels plus a replay sample;
a full retrain runs weekly or on demand; the gate compares both versions measured in one run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from assistant.nlu import NLU_MODELS, understand
from assistant.nlu.seed import data_hash, seed_examples
from assistant.pipeline.turn import handle_turn
from feedback.models import Label
from learning.cycle import LEARNING_STEPS
from learning.models import Job
from learning.nlu.service import train_from_params
from learning.tasks import start_full_nlu_retrain_task

# Requests the seed never says this way, each labelled by a reviewer with what it meant.
TAUGHT = [
    ("i could do with some tunes", "play_music"),
    ("the kitchen is too dark to see", "iot_hue_lightup"),
    ("remind my stomach in twenty minutes", "timer_set"),
    ("any chance of rain later", "weather_query"),
    ("put oat milk on the list", "lists_createoradd"),
    ("quieter please the baby sleeps", "audio_volume_down"),
]


@pytest.fixture
def serving(db, nlu_artifact, settings):
    """The session's seed model, serving as a version trained on the seed with no labels yet."""
    path, manifest = nlu_artifact
    settings.MODEL_DIR = path.parent
    recorded = {**manifest, "base_hash": data_hash(seed_examples()), "feedback_digests": []}
    return NLU_MODELS.register(path, recorded, promote=True)


def _label(user, text: str, intent: str, when) -> None:
    turn = handle_turn(user, text=text, now=when)
    Label.objects.create(turn=turn, reviewer=user, intent=intent, created_at=when)


def test_the_cycle_continues_the_serving_version_on_new_labels(alice, serving):
    start = timezone.now()
    for n, (suffix, (text, intent)) in enumerate((s, t) for s in ("", " now", " please") for t in TAUGHT):
        _label(alice, text + suffix, intent, start + timedelta(minutes=n))
    # A label on the seed's own words replaces the seed's example; the seed still counts as the same data.
    shadowed = next(e for e in seed_examples() if e.intent == "timer_set")
    _label(alice, shadowed.text, "timer_query", start + timedelta(hours=1))

    outcome = train_from_params({"mode": "incremental"})
    training = outcome.manifest["training"]
    assert training["mode"] == "incremental" and training["from"] == serving.version
    assert 0 < training["new"] <= len(TAUGHT) * 3 + 1 and training["replayed"] > 0
    assert outcome.promoted, outcome.gate_note
    assert "both measured in this run" in outcome.gate_note
    metrics = outcome.manifest["metrics"]
    assert metrics["seen_validation"]["intent_accuracy"] > 0.8
    assert outcome.manifest["validation_hash"] is None  # figures on seen examples are compared in one run only
    assert NLU_MODELS.active_version().version == outcome.version.version
    assert understand("i could do with some tunes").intent == "play_music"

    # The same data again: nothing to continue on.
    again = train_from_params({"mode": "incremental"})
    assert again.skipped and "same data" in again.reason


def test_a_training_job_with_an_unknown_mode_fails_saying_so(db):
    with pytest.raises(ValueError, match="full or incremental"):
        train_from_params({"mode": "sideways"})


def test_the_weekly_full_retrain_is_scheduled_and_queues_a_full_job(db, django_capture_on_commit_callbacks):
    schedule = django_settings.CELERY_BEAT_SCHEDULE["nlu-full-retrain"]
    assert schedule["task"] == "learning.start_full_nlu_retrain"
    assert schedule["schedule"] == django_settings.NLU_FULL_RETRAIN_DAYS * 86400
    with django_capture_on_commit_callbacks(execute=False):
        job_id = start_full_nlu_retrain_task()
    job = Job.objects.get(pk=job_id)
    assert (job.kind, job.params) == ("train_nlu", {"mode": "full"})
    nlu_step = next(step for step in LEARNING_STEPS if step.name == "nlu")
    assert nlu_step.params == {"mode": "incremental"}
