"""The promotion gate: a regressing version is rejected with a note, an improving one is
promoted, --force-promote overrides, and metrics on different validation splits are not compared."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from assistant.models import ModelVersion
from assistant.nlu import NLU_MODELS
from learning.nlu.gate import decide


def _manifest(acc: float, f1: float, vhash: str = "v1", version: str = "x") -> dict:
    return {
        "version": version,
        "validation_hash": vhash,
        "metrics": {"validation": {"intent_accuracy": acc, "oos_recall": 0.9, "slots": {"f1": f1}}},
    }


def test_decide_compares_only_on_the_same_validation_split(settings):
    settings.NLU_PROMOTION_TOLERANCE = 0.01
    active = _manifest(0.90, 0.80, version="old")
    assert decide(_manifest(0.895, 0.80), active).promote  # within the tolerance
    rejected = decide(_manifest(0.90, 0.70), active)
    assert not rejected.promote and rejected.compared
    assert "slot_f1" in rejected.note and "old" in rejected.note and "intent_accuracy" not in rejected.note
    other_split = decide(_manifest(0.50, 0.10, vhash="v2"), active)
    assert other_split.promote and not other_split.compared and "validation splits differ" in other_split.note
    assert decide(_manifest(0.5, 0.1), None).promote
    assert decide(_manifest(0.5, 0.1), {**active, "validation_hash": None}).promote


def _with_fixed(manifest: dict, acc: float, fhash: str = "f1") -> dict:
    fixed = {"intent_accuracy": acc, "oos_recall": 0.9, "slots": {"f1": 0.8}}
    return {**manifest, "fixed_validation_hash": fhash, "metrics": {**manifest["metrics"], "fixed_validation": fixed}}


def test_decide_compares_on_the_fixed_validation_set_when_feedback_moved_the_split(settings):
    settings.NLU_PROMOTION_TOLERANCE = 0.01
    active = _with_fixed(_manifest(0.90, 0.80, version="old"), 0.90)
    worse = decide(_with_fixed(_manifest(0.99, 0.99, vhash="v2"), 0.85), active)
    assert not worse.promote and worse.compared and "fixed validation set" in worse.note
    better = decide(_with_fixed(_manifest(0.50, 0.10, vhash="v2"), 0.91), active)
    assert better.promote and better.compared and "fixed validation set" in better.note
    moved = decide(_with_fixed(_manifest(0.50, 0.10, vhash="v2"), 0.5, fhash="f2"), active)
    assert moved.promote and not moved.compared and "fixed validation sets" in moved.note


def test_a_drop_within_the_sampling_error_of_the_held_out_examples_is_no_regression(settings):
    settings.NLU_PROMOTION_TOLERANCE = 0.01

    def measured(acc: float, f1: float, n: int) -> dict:
        manifest = _manifest(acc, f1)
        manifest["metrics"]["validation"].update(examples=n)
        manifest["metrics"]["validation"]["slots"]["gold_spans"] = n
        return manifest

    active = measured(0.83, 0.862, 1500)
    # 1.4 points of slot F1 on 1,500 spans: two trainings differ by that much by chance.
    assert decide(measured(0.83, 0.848, 1500), active).promote
    # 5 points is a regression, and the note says the allowed drop.
    refused = decide(measured(0.83, 0.81, 1500), active)
    assert not refused.promote and "slot_f1 0.8100 < 0.8620 - 0.0" in refused.note
    # On a handful of examples only the tolerance applies when the counts are unknown.
    assert not decide(_manifest(0.83, 0.848), _manifest(0.83, 0.862)).promote


def test_labels_from_feedback_never_move_the_fixed_validation_set():
    from assistant.nlu.seed import Example
    from learning.nlu.run import split_examples

    seed = [Example(f"set a timer {i}", "timer_set", (), f"timer:{i % 7}") for i in range(40)] + [
        Example(f"play song {i}", "play_music", (), f"music:{i % 5}") for i in range(30)
    ]
    labelled = [Example(f"timer please {i}", "timer_set", (), f"generated:{i}") for i in range(200)]
    _, before = split_examples(seed, 0.2)
    _, after = split_examples([*labelled, *seed], 0.2)
    held_seed = sorted(i - len(labelled) for i in after if i >= len(labelled))
    assert held_seed == before and before
    held_labels = sum(1 for i in after if i < len(labelled))
    assert 20 <= held_labels <= 60  # a fifth of them, each by its own hash


def test_decide_rejects_a_candidate_that_forgets_intents():
    active = {**_manifest(0.90, 0.80, version="old"), "intent_counts": {"timer_set": 5, "play_music": 9}}
    candidate = {**_manifest(0.99, 0.99, vhash="v2"), "intent_counts": {"play_music": 400, "qa_factoid": 80}}
    decision = decide(candidate, active)
    assert not decision.promote and decision.regressions == ("timer_set",)
    assert "timer_set" in decision.note and "old" in decision.note
    assert decide({**candidate, "intent_counts": {"timer_set": 1, "play_music": 1}}, active).promote


def test_decide_rejects_a_candidate_that_breaks_what_works_even_on_another_split(settings):
    settings.NLU_PROMOTION_TOLERANCE = 0.01
    active = _manifest(0.90, 0.80, version="old")

    def candidate(accuracy: float) -> dict:
        manifest = _manifest(0.95, 0.85, vhash="v2")
        works = {"n": 200, "accuracy": accuracy, "active_accuracy": 0.99, "active_version": "old"}
        manifest["metrics"]["works"] = works
        return manifest

    broke = decide(candidate(0.95), active)
    assert not broke.promote and broke.regressions == ("works",)
    assert "recently went well" in broke.note and "old" in broke.note
    kept = decide(candidate(0.985), active)  # within the tolerance: new data may move a few
    assert kept.promote and "200 requests that recently went well 0.9850 vs 0.9900" in kept.note
    assert decide({**candidate(0.5), "metrics": {"validation": {}, "works": {"n": 0}}}, active).promote


@pytest.mark.django_db
def test_training_measures_both_versions_on_what_recently_went_well(nlu_model, alice, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from assistant.nlu.seed import seed_examples
    from feedback.models import GeneratedLabel, Session, Turn
    from learning.nlu.service import still_works

    assert still_works(nlu_model.path) is None  # nothing went well yet
    at = timezone.now() - timedelta(minutes=5)
    session = Session.objects.create(user=alice, channel="web", started_at=at)
    for text, intent in (("turn off the kitchen lights", "iot_hue_lightoff"), ("tell me a joke", "general_joke")):
        turn = Turn.objects.create(session=session, user=alice, created_at=at, asr_text=text, intent=intent)
        GeneratedLabel.objects.create(
            turn=turn, intent=intent, confidence=0.95, source="success", generator_version="t"
        )
    works = still_works(nlu_model.path)
    assert works == {"n": 2, "accuracy": 1.0, "active_accuracy": 1.0, "active_version": nlu_model.version}
    assert len(seed_examples()) > 0


@pytest.fixture
def small_examples():
    """A slice of the seed set: every intent's first few utterances (trains in seconds)."""
    from assistant.nlu.seed import seed_examples

    taken: dict[str, int] = {}
    out = []
    for e in seed_examples():
        if taken.get(e.intent, 0) < 8:
            taken[e.intent] = taken.get(e.intent, 0) + 1
            out.append(e)
    return out


def _set_active_metrics(acc: float) -> ModelVersion:
    row = NLU_MODELS.active_version()
    row.manifest["metrics"]["validation"]["intent_accuracy"] = acc
    row.save(update_fields=["manifest"])
    return row


def test_gate_rejects_a_regression_promotes_an_improvement_and_force_overrides(db, small_examples, tmp_path):
    from learning.nlu.service import train_and_register

    first = train_and_register(small_examples, out_base=tmp_path)
    assert first.promoted and first.version.status == ModelVersion.Status.ACTIVE

    # The active version claims a better accuracy on the same validation split: the retrained one regresses.
    _set_active_metrics(1.0)
    worse = train_and_register(small_examples, out_base=tmp_path, force=True)
    worse.version.refresh_from_db()
    assert not worse.promoted
    assert worse.version.status == ModelVersion.Status.REJECTED
    assert "intent_accuracy" in worse.version.note and first.version.version in worse.version.note
    assert NLU_MODELS.active_version().pk == first.version.pk  # the old one keeps serving

    forced = train_and_register(small_examples, out_base=tmp_path, force=True, force_promote=True)
    assert forced.promoted and NLU_MODELS.active_version().pk == forced.version.pk
    assert "force" in forced.version.note

    _set_active_metrics(0.0)
    better = train_and_register(small_examples, out_base=tmp_path, force=True)
    assert better.promoted and NLU_MODELS.active_version().pk == better.version.pk
    assert "no regression" in better.version.note


def test_train_nlu_command_reports_the_gate(db, small_examples, tmp_path, monkeypatch, capsys):
    from learning.nlu import service

    train_and_register = service.train_and_register
    first = train_and_register(small_examples, out_base=tmp_path)
    _set_active_metrics(1.0)
    # The command trains on the seed set; the same slice keeps this test fast.
    monkeypatch.setattr(service, "seed_examples", lambda: list(small_examples))
    call_command("train_nlu", "--force", "--out", str(tmp_path))
    out = capsys.readouterr().out
    assert "Promotion gate: rejected" in out
    assert NLU_MODELS.active_version().pk == first.version.pk
    call_command("train_nlu", "--force", "--force-promote", "--out", str(tmp_path))
    assert NLU_MODELS.active_version().pk != first.version.pk


def test_training_job_with_an_unknown_architecture_fails_with_a_message(db):
    from learning.models import Job
    from learning.tasks import train_nlu_task

    job = Job.objects.create(kind="train_nlu", params={"architecture": "<script>"})
    train_nlu_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "unknown architecture" in job.message


def test_oos_metrics_exist_only_where_something_is_out_of_scope():
    import numpy as np

    from assistant.nlu.metrics import oos_metrics

    assert oos_metrics(np.array([1, 2, 2]), np.array([0, 2, 1]), oos=0) == {}  # SLURP: no OOS class
    assert oos_metrics(np.array([0, 0, 2]), np.array([0, 2, 0]), oos=0) == {
        "oos_precision": 0.5,
        "oos_recall": 0.5,
        "oos_examples": 2,
    }
    active = _manifest(0.90, 0.80, version="old")
    candidate = _manifest(0.90, 0.80)
    del candidate["metrics"]["validation"]["oos_recall"]
    decision = decide(candidate, active)
    assert decision.promote and decision.compared and "oos_recall" not in decision.note


def test_the_cycle_retrains_only_when_enough_labels_are_new(db, small_examples, tmp_path, settings):
    from assistant.nlu.seed import Example
    from learning.nlu.service import train_and_register

    settings.NLU_RETRAIN_MIN_NEW_LABELS = 3

    def generated(n: int, start: int = 0) -> list[Example]:
        return [Example(f"switch off lamp number {k}", "iot_wemo_off", group=f"generated:{k}") for k in range(start, n)]

    first = train_and_register([*generated(4), *small_examples], out_base=tmp_path)
    assert len(first.manifest["feedback_digests"]) == 4 and first.manifest["base_hash"]
    two_new = train_and_register([*generated(6), *small_examples], out_base=tmp_path)
    assert two_new.skipped and "only 2 labels from feedback are new" in two_new.reason
    three_new = train_and_register([*generated(7), *small_examples], out_base=tmp_path)
    assert not three_new.skipped
    # One reviewer's label is worth a retrain; so is any change to the other data.
    reviewed = Example("lamp off now", "iot_wemo_off", group="review:1")
    assert not train_and_register([reviewed, *generated(7), *small_examples], out_base=tmp_path).skipped
    assert not train_and_register([reviewed, *generated(7), *small_examples[1:]], out_base=tmp_path).skipped
