"""Model registry: register, promote, hot swap without restart, broken artifacts, rollback."""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.models import ModelVersion
from assistant.nlu import NLU_MODELS
from assistant.registry import RegistryError


def copy_artifact(nlu_artifact, tmp_path, version: str):
    """The session's artifact under another version name (a real second version)."""
    src, manifest = nlu_artifact
    dst = tmp_path / version
    shutil.copytree(src, dst)
    manifest = {**manifest, "version": version}
    on_disk = json.loads((dst / "manifest.json").read_text())
    on_disk["version"] = version
    (dst / "manifest.json").write_text(json.dumps(on_disk))
    return dst, manifest


@pytest.mark.django_db
def test_register_promotes_and_retires_the_old_version(nlu_model, nlu_artifact, tmp_path):
    assert nlu_model.status == ModelVersion.Status.ACTIVE
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "v2")
    second = NLU_MODELS.register(path, manifest, promote=True)
    assert second.status == ModelVersion.Status.ACTIVE
    nlu_model.refresh_from_db()
    assert nlu_model.status == ModelVersion.Status.RETIRED
    assert ModelVersion.objects.filter(kind="nlu", status="active").count() == 1
    assert second.metrics["validation"]["intent_accuracy"] > 0.5


@pytest.mark.django_db
def test_candidate_is_not_active(nlu_model, nlu_artifact, tmp_path):
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "candidate-1")
    row = NLU_MODELS.register(path, manifest, promote=False)
    assert row.status == ModelVersion.Status.CANDIDATE
    assert NLU_MODELS.model().version == nlu_model.version


@pytest.mark.django_db
def test_hot_swap_picks_up_a_new_version_without_restart(nlu_model, nlu_artifact, tmp_path):
    assert NLU_MODELS.model().version == nlu_model.version
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "hot-2")
    NLU_MODELS.register(path, manifest, promote=True)
    model = NLU_MODELS.model()
    assert model.version == "hot-2"
    assert model.path == path.resolve()
    assert NLU_MODELS.model() is model  # loaded once, then reused


@pytest.mark.django_db
def test_between_rechecks_a_turn_asks_the_registry_nothing(nlu_model, settings, django_assert_num_queries):
    settings.MODEL_RECHECK_SECONDS = 300
    model = NLU_MODELS.model()  # checks the registry
    with django_assert_num_queries(0):
        assert NLU_MODELS.model() is model


@pytest.mark.django_db
def test_a_promotion_elsewhere_is_served_after_the_recheck_interval(nlu_model, nlu_artifact, tmp_path, settings):
    settings.MODEL_RECHECK_SECONDS = 300
    assert NLU_MODELS.model().version == nlu_model.version
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "elsewhere-2")
    row = NLU_MODELS.register(path, manifest, promote=False)
    # Another process (a worker) promotes it: rows change, this process's counter does not.
    ModelVersion.objects.filter(pk=nlu_model.pk).update(status=ModelVersion.Status.RETIRED)
    ModelVersion.objects.filter(pk=row.pk).update(status=ModelVersion.Status.ACTIVE)
    assert NLU_MODELS.model().version == nlu_model.version  # within the interval: the loaded one
    settings.MODEL_RECHECK_SECONDS = 0  # the interval has passed
    assert NLU_MODELS.model().version == "elsewhere-2"


@pytest.mark.django_db
def test_a_promotion_in_this_process_is_served_at_once(nlu_model, nlu_artifact, tmp_path, settings):
    settings.MODEL_RECHECK_SECONDS = 300
    assert NLU_MODELS.model().version == nlu_model.version
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "here-2")
    NLU_MODELS.register(path, manifest, promote=True)
    assert NLU_MODELS.model().version == "here-2"
    NLU_MODELS.rollback("worse")
    assert NLU_MODELS.model().version == nlu_model.version


@pytest.mark.django_db
def test_broken_artifact_never_replaces_the_working_one(nlu_model, nlu_artifact, tmp_path, caplog):
    working = NLU_MODELS.model()
    assert working.version == nlu_model.version
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "broken-3")
    NLU_MODELS.register(path, manifest, promote=True)
    (path / "manifest.json").write_text("{ not json")  # corrupted after registration
    with caplog.at_level("ERROR"):
        assert NLU_MODELS.model() is working
    assert "broken-3" in caplog.text
    # Corrupt weights are caught too (checksum).
    path4, manifest4 = copy_artifact(nlu_artifact, tmp_path, "broken-4")
    NLU_MODELS.register(path4, manifest4, promote=True)
    (path4 / "heads.npz").write_bytes(b"garbage")
    assert NLU_MODELS.model() is working


@pytest.mark.django_db
def test_register_refuses_a_corrupt_or_mismatched_artifact(nlu_artifact, tmp_path):
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "v5")
    with pytest.raises(RegistryError):
        NLU_MODELS.register(path, {**manifest, "version": "other"})
    (path / "manifest.json").write_text("[]")
    with pytest.raises(RegistryError):
        NLU_MODELS.register(path, manifest)
    with pytest.raises(RegistryError):
        NLU_MODELS.register(tmp_path / "missing", manifest)
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_rollback_reactivates_the_previous_version(nlu_model, nlu_artifact, tmp_path):
    path, manifest = copy_artifact(nlu_artifact, tmp_path, "v6")
    newer = NLU_MODELS.register(path, manifest, promote=True)
    assert NLU_MODELS.model().version == "v6"
    back = NLU_MODELS.rollback("worse on SLURP")
    assert back.pk == nlu_model.pk and back.status == ModelVersion.Status.ACTIVE
    newer.refresh_from_db()
    assert newer.status == ModelVersion.Status.REJECTED
    assert NLU_MODELS.model().version == nlu_model.version
    with pytest.raises(RegistryError):
        NLU_MODELS.rollback()  # nothing earlier than the first version
