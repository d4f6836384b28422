"""The NLU model registry: ModelVersion rows (kind="nlu") and the process's loaded model.

Promotion retires the previous active version in the same transaction (a partial
unique constraint allows one active version per kind). Every running process
picks up a newly promoted version on its next call to active_model(), without a
restart: each call costs one indexed query; a new version is loaded completely
before it replaces the old one, and a version that fails to load is logged and
skipped while the old one keeps serving.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from assistant.nlu.errors import NluUnavailable
from feedback.models import ModelVersion

if TYPE_CHECKING:
    from assistant.nlu.model import NluModel

log = logging.getLogger(__name__)

KIND = "nlu"
RETRY_FAILED_AFTER_S = 60.0  # how long a version that failed to load is left alone


class RegistryError(ValueError):
    """A register/rollback request that cannot be carried out."""


def register(path: Path, manifest: dict, *, promote: bool = True, note: str = "") -> ModelVersion:
    """Record an artifact folder as a version (and make it the active one when `promote`).

    The folder must hold a readable manifest of the same version; the weights are
    checked when a process loads them.
    """
    from assistant.nlu.model import ArtifactError, read_manifest

    path = Path(path).resolve()
    try:
        on_disk = read_manifest(path)
    except ArtifactError as exc:
        raise RegistryError(str(exc)) from exc
    version = str(manifest.get("version") or "")
    if not version or on_disk.get("version") != version:
        raise RegistryError(f"manifest version {version!r} does not match the artifact's {on_disk.get('version')!r}")
    with transaction.atomic():
        row, created = ModelVersion.objects.get_or_create(
            kind=KIND,
            version=version,
            defaults={
                "path": str(path),
                "manifest": manifest,
                "metrics": manifest.get("metrics", {}),
                "status": ModelVersion.Status.CANDIDATE,
                "note": note,
            },
        )
        if not created and Path(row.path) != path:
            raise RegistryError(f"version {version} is already registered at {row.path}")
        if promote:
            row = promote_version(row)
    return row


def promote_version(row: ModelVersion) -> ModelVersion:
    """Make `row` the active version of its kind; the current one is retired."""
    with transaction.atomic():
        # Lock the kind's active row so two promotions cannot interleave.
        current = list(
            ModelVersion.objects.select_for_update().filter(kind=row.kind, status=ModelVersion.Status.ACTIVE)
        )
        for old in current:
            if old.pk != row.pk:
                old.status = ModelVersion.Status.RETIRED
                old.save(update_fields=["status"])
        row.status = ModelVersion.Status.ACTIVE
        row.promoted_at = timezone.now()
        row.save(update_fields=["status", "promoted_at"])
    log.info("promoted %s %s", row.kind, row.version)
    return row


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=KIND, status=ModelVersion.Status.ACTIVE).first()


def rollback(note: str = "") -> ModelVersion:
    """Re-activate the version promoted before the current one; the current one is rejected."""
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(kind=KIND, status=ModelVersion.Status.ACTIVE).first()
        if current is None:
            raise RegistryError("there is no active NLU version to roll back")
        previous = (
            ModelVersion.objects.filter(
                kind=KIND,
                status=ModelVersion.Status.RETIRED,
                promoted_at__isnull=False,
                promoted_at__lte=current.promoted_at or timezone.now(),
            )
            .exclude(pk=current.pk)
            .order_by("-promoted_at", "-pk")
            .first()
        )
        if previous is None:
            raise RegistryError(f"no earlier NLU version to roll back to from {current.version}")
        current.status = ModelVersion.Status.REJECTED
        current.note = (current.note + "\n" if current.note else "") + (note or "rolled back")
        current.save(update_fields=["status", "note"])
        previous.status = ModelVersion.Status.ACTIVE
        previous.save(update_fields=["status"])
    log.warning("rolled NLU back from %s to %s", current.version, previous.version)
    return previous


def activate_version(row: ModelVersion, *, note: str = "") -> ModelVersion:
    """Make a chosen NLU version active again (the admin's "Promote"/"Roll back to this
    version"): its artifact must still hold a readable, compatible manifest of the same
    version, so a broken folder never replaces the working model. With `note`, the
    version being replaced is marked rejected (a rollback) instead of retired."""
    from assistant.nlu.model import ArtifactError, read_manifest

    if row.kind != KIND:
        raise RegistryError(f"{row.version} is a {row.kind!r} model, not an NLU one")
    try:
        on_disk = read_manifest(Path(row.path))
    except ArtifactError as exc:
        raise RegistryError(f"{row.version} cannot be activated: {exc}") from exc
    if on_disk.get("version") != row.version:
        raise RegistryError(f"{row.path} holds version {on_disk.get('version')!r}, not {row.version!r}")
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(kind=KIND, status=ModelVersion.Status.ACTIVE).first()
        if current is not None and current.pk == row.pk:
            raise RegistryError(f"{row.version} is already the active version")
        row = promote_version(row)
        if note and current is not None:
            current.refresh_from_db(fields=["status", "note"])
            current.status = ModelVersion.Status.REJECTED
            current.note = (current.note + "\n" if current.note else "") + note
            current.save(update_fields=["status", "note"])
    log.warning("activated NLU %s (was %s)", row.version, current.version if current else None)
    return row


def active_artifact_exists() -> ModelVersion | None:
    """The active version if its folder still holds a manifest (cheap, no torch)."""
    row = active_version()
    if row is None or not (Path(row.path) / "manifest.json").is_file():
        return None
    return row


# -- the process's loaded model -----------------------------------------------------
@dataclass
class _State:
    key: tuple[str, str] | None = None  # (version, path) of the loaded model
    model: NluModel | None = None
    failed: dict[tuple[str, str], float] | None = None


_state = _State(failed={})
_load_lock = threading.Lock()


def _load(key: tuple[str, str]) -> NluModel:
    from assistant.nlu.model import load_model

    started = time.perf_counter()
    model = load_model(Path(key[1]))  # dispatches on the manifest's format
    if model.version != key[0]:
        from assistant.nlu.model import ArtifactError

        raise ArtifactError(f"{key[1]} holds version {model.version!r}, the registry says {key[0]!r}")
    log.info("loaded NLU %s in %.2fs", key[0], time.perf_counter() - started)
    return model


def active_model() -> NluModel:
    """The loaded active model; swaps to a newly promoted version once it has loaded."""
    row = ModelVersion.objects.filter(kind=KIND, status=ModelVersion.Status.ACTIVE).values_list("version", "path")
    found = row.first()
    current = _state.model
    if found is None:
        # The registry is the truth: nothing active means no NLU, even if a model is still
        # in memory (it stays cached, so re-activating the same version costs nothing).
        raise NluUnavailable("no NLU model is registered; run `python manage.py train_nlu`")
    key = (found[0], found[1])
    if key == _state.key and current is not None:
        return current
    with _load_lock:
        if key == _state.key and _state.model is not None:
            return _state.model
        failed_at = _state.failed.get(key)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_AFTER_S:
            if current is not None:
                return current
            raise NluUnavailable(f"NLU version {key[0]} could not be loaded (see the log)")
        try:
            model = _load(key)
        except Exception as exc:
            _state.failed[key] = time.monotonic()
            if current is not None:
                log.error("NLU %s failed to load, keeping %s: %s", key[0], _state.key[0] if _state.key else "?", exc)
                return current
            log.error("NLU %s failed to load: %s", key[0], exc)
            raise NluUnavailable(f"NLU version {key[0]} could not be loaded: {exc}") from exc
        _state.model, _state.key = model, key
        _state.failed.pop(key, None)
        return model


def reset_loaded() -> None:
    """Forget the loaded model (tests)."""
    with _load_lock:
        _state.key, _state.model = None, None
        _state.failed.clear()
