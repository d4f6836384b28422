"""The joint fine-tuned NLU (assistant/nlu/joint.py) on a tiny slice: it trains, saves,
loads through the registry (format dispatch), understands, and exits early."""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.nlu import NLU_MODELS


@pytest.fixture(scope="module")
def joint_artifact(tmp_path_factory):
    """200 seed utterances (every intent represented), one epoch: a model that works, not a good one."""
    from assistant.nlu.seed import seed_examples
    from learning.nlu.joint import train_joint

    examples, taken = [], {}
    for e in seed_examples():
        if taken.get(e.intent, 0) < 4:
            taken[e.intent] = taken.get(e.intent, 0) + 1
            examples.append(e)
    examples = examples[:200]
    out = tmp_path_factory.mktemp("joint") / "joint-tiny"
    manifest = train_joint(examples, out, hyper={"epochs": 1, "batch_size": 16})
    return out, manifest


def test_joint_artifact_is_a_state_dict_with_a_complete_manifest(joint_artifact):
    from safetensors.torch import load_file

    path, manifest = joint_artifact
    assert manifest["format"] == "nlu-minilm-joint/1"
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.safetensors"]
    weights = load_file(str(path / "model.safetensors"))  # plain tensors: nothing is unpickled
    assert "encoder.layer.5.output.dense.weight" in weights and "intent_heads.0.weight" in weights
    validation = manifest["metrics"]["validation"]
    assert len(validation["intent_accuracy_by_layer"]) == manifest["layers"] == 6
    assert validation["early_exit"][0]["threshold"] == 0.0
    assert manifest["validation_hash"] and len(manifest["temperatures"]) == 6


def test_registry_loads_the_joint_model_and_understand_uses_it(db, joint_artifact):
    from assistant.nlu import understand
    from assistant.nlu.joint import JointModel

    path, manifest = joint_artifact
    NLU_MODELS.reset_loaded()
    try:
        NLU_MODELS.register(path, manifest, promote=True)
        model = NLU_MODELS.model()
        assert isinstance(model, JointModel) and model.version == manifest["version"]
        result = understand("turn on the kitchen lights")
        assert result.model_version == manifest["version"]
        assert 0.0 <= result.confidence <= 1.0
        assert result.intent in set(model.intents) | {"out_of_scope"}
        assert understand("   ").out_of_scope
    finally:
        NLU_MODELS.reset_loaded()


def test_early_exit_runs_fewer_layers_at_a_loose_threshold(joint_artifact):
    from assistant.nlu.joint import JointModel

    model = JointModel.load(joint_artifact[0])
    text = "set a timer for ten minutes in the kitchen"
    strict = model.predict(text, threshold=0.0)  # never confident enough: all six layers
    # Normalised entropies are at most 1: with the slot condition off the first layer answers.
    loose = model.predict(text, threshold=1.01, slot_threshold=1.0)
    assert strict.layers == 6 and loose.layers == 1
    # A slot threshold of 0 is never met: only the last layer may answer.
    slot_strict = model.predict(text, threshold=1.01, slot_threshold=0.0)
    assert slot_strict.layers == 6
    assert abs(float(strict.probs.sum()) - 1.0) < 1e-4 and abs(float(loose.probs.sum()) - 1.0) < 1e-4
    assert all(0 <= a < b <= len(text) for _, a, b in strict.spans)


def test_default_predictions_are_kept_and_shared_read_only(joint_artifact):
    import numpy as np

    from assistant.nlu.joint import JointModel

    model = JointModel.load(joint_artifact[0])
    first = model.predict("turn off the kitchen lights")
    again = model.predict("turn off the kitchen lights")
    assert again is first and not first.probs.flags.writeable
    with pytest.raises(ValueError):
        first.probs[0] = 1.0  # nobody's copy can change another's
    # Other exit rules are computed afresh, and agree with the kept one at the defaults.
    explicit = model.predict(
        "turn off the kitchen lights", threshold=model.threshold, slot_threshold=model.slot_threshold
    )
    assert explicit is not first and np.allclose(explicit.probs, first.probs) and explicit.spans == first.spans


def test_the_default_exit_rule_is_the_cheapest_within_both_budgets():
    from learning.nlu.early_exit import choose_thresholds
    from learning.nlu.joint import JOINT_HYPER

    def row(t, s, accuracy, f1, saving):
        return {
            "threshold": t,
            "slot_threshold": s,
            "intent_accuracy": accuracy,
            "slot_f1": f1,
            "compute_saving": saving,
        }

    table = [
        row(0.0, 1.0, 0.90, 0.80, 0.0),
        row(0.05, 1.0, 0.90, 0.75, 0.45),  # slots pay: over the 1-point slot budget
        row(0.1, 0.2, 0.897, 0.798, 0.40),  # within both budgets
        row(0.2, 0.2, 0.89, 0.80, 0.50),  # 1 point of intent accuracy: over budget
        row(0.05, 0.2, 0.90, 0.80, 0.30),
    ]
    threshold, slot_threshold, why = choose_thresholds(table, 0.90, 0.80, JOINT_HYPER)
    assert (threshold, slot_threshold) == (0.1, 0.2) and "40%" in why
    threshold, slot_threshold, why = choose_thresholds(table[1:2], 0.90, 0.80, JOINT_HYPER)
    assert (threshold, slot_threshold) == (0.0, 1.0) and "off" in why


def test_a_corrupt_joint_artifact_is_refused(joint_artifact, tmp_path):
    from assistant.artifacts import ArtifactError
    from assistant.nlu.loading import load_model

    broken = tmp_path / "broken"
    shutil.copytree(joint_artifact[0], broken)
    with (broken / "model.safetensors").open("r+b") as f:
        f.seek(4000)
        f.write(b"\x00" * 64)
    with pytest.raises(ArtifactError, match="checksum"):
        load_model(broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["layers"] = "six"
    (broken / "manifest.json").write_text(json.dumps({**manifest, "format": "nlu-minilm-joint/99"}))
    with pytest.raises(ArtifactError, match="unknown artifact format"):
        load_model(broken)


def test_train_nlu_architecture_joint(db, tmp_path, monkeypatch):
    """The command path: --architecture joint trains, registers and (with nothing active) promotes."""
    from django.core.management import call_command

    from assistant.nlu import NLU_MODELS
    from assistant.nlu.seed import seed_examples
    from learning.nlu import joint, service

    taken: dict[str, int] = {}
    small = []
    for e in seed_examples():
        if taken.get(e.intent, 0) < 3:
            taken[e.intent] = taken.get(e.intent, 0) + 1
            small.append(e)
    monkeypatch.setattr(service, "seed_examples", lambda: small)
    monkeypatch.setitem(joint.JOINT_HYPER, "epochs", 1)
    call_command("train_nlu", "--architecture", "joint", "--out", str(tmp_path))
    row = NLU_MODELS.active_version()
    assert row is not None and row.manifest["format"] == "nlu-minilm-joint/1"
    assert "no active version" in row.note


def test_evaluate_nlu_reports_the_early_exit_table(joint_artifact, settings, capsys):
    from django.core.management import call_command

    data = settings.SHARED_DATA_DIR / "slurp" / "annotated_devel_test.jsonl"
    if not data.is_file():
        pytest.skip("the public SLURP file is not available")
    call_command(
        "evaluate_nlu",
        "--model",
        str(joint_artifact[0]),
        "--data",
        str(data),
        "--format",
        "slurp",
        "--split",
        "test",
        "--limit",
        "20",
        "--exit-thresholds",
        "0,1.01",
        "--slot-exit-thresholds",
        "1",
        "--json",
    )
    result = json.loads(capsys.readouterr().out)
    strict, loose = result["early_exit"]
    assert result["early_exit_default"]["threshold"] == pytest.approx(joint_artifact[1]["early_exit"]["threshold"])
    assert result["n"] == 20 and result["model_load_seconds"] > 0
    assert strict["mean_layers"] == 6 and loose["mean_layers"] == 1 and loose["compute_saving"] > 0.8


def test_a_training_job_fine_tunes_the_joint_model_on_data_files(db, tmp_path, settings, monkeypatch):
    """The Celery task path of `train_nlu --architecture joint --data … --no-seed`, with progress in the Job row."""
    from assistant.models import ModelVersion
    from learning.models import Job
    from learning.nlu import joint
    from learning.tasks import train_nlu_task

    settings.MODEL_DIR = tmp_path / "models"
    monkeypatch.setitem(joint.JOINT_HYPER, "epochs", 1)
    rows = [
        {
            "text": f"{verb} the {room} lights",
            "annotation": f"{verb} the [house_place : {room}] lights",
            "intent": intent,
        }
        for verb, intent in (("turn on", "iot_hue_lighton"), ("turn off", "iot_hue_lightoff"))
        for room in ("kitchen", "bedroom", "hall", "office", "attic", "study", "garage", "porch")
    ]
    data = tmp_path / "lights.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    job = Job.objects.create(
        kind="train_nlu", params={"architecture": "joint", "data": [str(data)], "format": "hwu", "seed": False}
    )
    NLU_MODELS.reset_loaded()
    try:
        train_nlu_task.apply(args=[job.pk])
    finally:
        NLU_MODELS.reset_loaded()
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.message
    assert job.progress == 1.0 and job.result["examples"] == 16
    version = ModelVersion.objects.get(kind="nlu", version=job.result["version"])
    assert version.manifest["format"] == "nlu-minilm-joint/1" and version.status == "active"
    assert version.manifest["early_exit"]["slot_threshold"] in joint.JOINT_HYPER["slot_thresholds"] + [1.0]
