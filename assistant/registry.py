"""The model registry, for every kind of model: versions on disk, one active per kind.

A kind of model (the NLU, later the rewrite index and ranker, the defect and
failure-point models, preference models…) is a ModelKind: a name and a loader
that builds a model from its artifact folder. Declaring one is all a new kind
needs on the serving side; its trainer adds a gate (learning/registry.py).

    kind.register(path, manifest, promote=…)   a trained artifact becomes a version
    kind.rollback()                            the previous version serves again
    activate_version(row)                      an operator's choice (the admin)
    kind.model()                               the loaded active model of this process

Promotion retires the previous active version in the same transaction (a partial
unique constraint allows one active version per kind). Every running process
picks up a newly promoted version on its next call to kind.model(), without a
restart: each call costs one indexed query; a new version is loaded completely
before it replaces the old one, and a version that fails to load is logged and
left alone for a while, the old one serving meanwhile. Each kind keeps its own
loaded model.

Nothing here imports torch or any training code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assistant.artifacts import ArtifactError, read_manifest
from assistant.models import ModelVersion

log = logging.getLogger(__name__)

RETRY_FAILED_AFTER_S = 60.0  # how long a version that failed to load is left alone

# Bumped whenever this process changes which version is active, so its own promotions and
# rollbacks are served at once instead of after MODEL_RECHECK_SECONDS.
_changes_here = 0


def _bump() -> None:
    global _changes_here
    _changes_here += 1


def _changed_here() -> None:
    # Now, for this connection (it sees its own change), and again at commit, for the other
    # threads of the process (which may have re-read the registry before the commit).
    _bump()
    transaction.on_commit(_bump)


class RegistryError(ValueError):
    """A register/rollback/activate request that cannot be carried out."""


class ModelUnavailable(RuntimeError):
    """No version of a kind is active, or none can be loaded."""


def _check_on_disk(path: Path, version: str) -> None:
    try:
        on_disk = read_manifest(path)
    except ArtifactError as exc:
        raise RegistryError(str(exc)) from exc
    if on_disk.get("version") != version:
        raise RegistryError(f"{path} holds version {on_disk.get('version')!r}, not {version!r}")


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
    _changed_here()
    log.info("promoted %s %s", row.kind, row.version)
    return row


def reject_version(row: ModelVersion, note: str) -> ModelVersion:
    """Mark a version rejected (a gate refused it, or it was rolled back), saying why."""
    row.status = ModelVersion.Status.REJECTED
    row.note = (row.note + "\n" if row.note else "") + note
    row.save(update_fields=["status", "note"])
    _changed_here()
    return row


def activate_version(row: ModelVersion, *, note: str = "") -> ModelVersion:
    """Make a chosen version active again (the admin's "Promote" / "Roll back to this version").

    Its artifact must still hold a readable manifest of the same version, so a broken
    folder never replaces the working model. With `note`, the version being replaced
    is marked rejected (a rollback) instead of retired.
    """
    try:
        _check_on_disk(Path(row.path), row.version)
    except RegistryError as exc:
        raise RegistryError(f"{row.version} cannot be activated: {exc}") from None
    with transaction.atomic():
        current = (
            ModelVersion.objects.select_for_update().filter(kind=row.kind, status=ModelVersion.Status.ACTIVE).first()
        )
        if current is not None and current.pk == row.pk:
            raise RegistryError(f"{row.version} is already the active version")
        row = promote_version(row)
        if note and current is not None:
            current.refresh_from_db(fields=["status", "note"])
            reject_version(current, note)
    log.warning("activated %s %s (was %s)", row.kind, row.version, current.version if current else None)
    return row


@dataclass
class _Loaded:
    key: tuple[str, str] | None = None  # (version, path) of the loaded model
    model: Any = None
    failed: dict[tuple[str, str], float] = field(default_factory=dict)
    checked_at: float = float("-inf")  # when the registry was last asked which version is active
    checked_changes: int = -1  # _changes_here at that moment
    absent: bool = False  # nothing was active when last asked (a kind that may have no model costs no query)


class ModelKind:
    """One kind of model: its registry rows and this process's loaded model.

    `load(path)` builds a model completely from an artifact folder (or raises); the
    loaded object may carry a `version` attribute, which is checked against the row.
    """

    def __init__(self, name: str, load: Callable[[Path], Any], *, label: str | None = None, hint: str = "") -> None:
        self.name = name
        self.label = label or name
        self.hint = hint  # what to do when nothing is registered, for the error message
        self._load_fn = load
        self._loaded = _Loaded()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ModelKind({self.name!r})"

    # -- versions ------------------------------------------------------------------------
    def register(self, path: Path, manifest: dict, *, promote: bool = True, note: str = "") -> ModelVersion:
        """Record an artifact folder as a version (and make it the active one when `promote`).

        The folder must hold a readable manifest of the same version; the weights are
        checked when a process loads them.
        """
        path = Path(path).resolve()
        version = str(manifest.get("version") or "")
        if not version:
            raise RegistryError("the manifest has no version")
        try:
            on_disk = read_manifest(path)
        except ArtifactError as exc:
            raise RegistryError(str(exc)) from exc
        if on_disk.get("version") != version:
            raise RegistryError(
                f"manifest version {version!r} does not match the artifact's {on_disk.get('version')!r}"
            )
        with transaction.atomic():
            row, created = ModelVersion.objects.get_or_create(
                kind=self.name,
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

    def active_version(self) -> ModelVersion | None:
        return ModelVersion.objects.filter(kind=self.name, status=ModelVersion.Status.ACTIVE).first()

    def active_artifact(self) -> ModelVersion | None:
        """The active version if its folder still holds a manifest (cheap: no weights read)."""
        row = self.active_version()
        if row is None:
            return None
        try:
            _check_on_disk(Path(row.path), row.version)
        except RegistryError:
            return None
        return row

    def rollback(self, note: str = "") -> ModelVersion:
        """Re-activate the version promoted before the current one; the current one is rejected."""
        with transaction.atomic():
            current = (
                ModelVersion.objects.select_for_update()
                .filter(kind=self.name, status=ModelVersion.Status.ACTIVE)
                .first()
            )
            if current is None:
                raise RegistryError(f"there is no active {self.label} version to roll back")
            previous = (
                ModelVersion.objects.filter(
                    kind=self.name,
                    status=ModelVersion.Status.RETIRED,
                    promoted_at__isnull=False,
                    promoted_at__lte=current.promoted_at or timezone.now(),
                )
                .exclude(pk=current.pk)
                .order_by("-promoted_at", "-pk")
                .first()
            )
            if previous is None:
                raise RegistryError(f"no earlier {self.label} version to roll back to from {current.version}")
            reject_version(current, note or "rolled back")
            previous.status = ModelVersion.Status.ACTIVE
            previous.save(update_fields=["status"])
            _changed_here()
        log.warning("rolled %s back from %s to %s", self.name, current.version, previous.version)
        return previous

    # -- this process's loaded model ------------------------------------------------------
    def model(self) -> Any:
        """The loaded active model; swaps to a newly promoted version once it has loaded.

        The registry row is read at most every MODEL_RECHECK_SECONDS: a turn asks for one or
        two models, and a query each time was a tenth of a turn's CPU under load."""
        state = self._loaded
        if (
            state.model is not None
            and not state.absent
            and state.checked_changes == _changes_here
            and time.monotonic() - state.checked_at < settings.MODEL_RECHECK_SECONDS
        ):
            return state.model
        if (
            state.absent
            and state.checked_changes == _changes_here
            and time.monotonic() - state.checked_at < settings.MODEL_RECHECK_SECONDS
        ):
            raise ModelUnavailable(f"no {self.label} model is registered" + (f"; {self.hint}" if self.hint else ""))
        changes, checked_at = _changes_here, time.monotonic()
        found = (
            ModelVersion.objects.filter(kind=self.name, status=ModelVersion.Status.ACTIVE)
            .values_list("version", "path")
            .first()
        )
        state = self._loaded
        current = state.model
        if found is None:
            # The registry is the truth: nothing active means no model, even if one is still
            # in memory (it stays cached, so re-activating the same version costs nothing).
            state.absent, state.checked_at, state.checked_changes = True, checked_at, changes
            raise ModelUnavailable(f"no {self.label} model is registered" + (f"; {self.hint}" if self.hint else ""))
        state.absent = False
        key = (found[0], found[1])
        if key == state.key and current is not None:
            state.checked_at, state.checked_changes = checked_at, changes
            return current
        with self._lock:
            if key == state.key and state.model is not None:
                return state.model
            failed_at = state.failed.get(key)
            if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_AFTER_S:
                if current is not None:
                    return current
                raise ModelUnavailable(f"{self.label} version {key[0]} could not be loaded (see the log)")
            try:
                model = self._load(key)
            except Exception as exc:
                state.failed[key] = time.monotonic()
                if current is not None:
                    kept = state.key[0] if state.key else "?"
                    log.error("%s %s failed to load, keeping %s: %s", self.label, key[0], kept, exc)
                    return current
                log.error("%s %s failed to load: %s", self.label, key[0], exc)
                raise ModelUnavailable(f"{self.label} version {key[0]} could not be loaded: {exc}") from exc
            state.model, state.key = model, key
            state.checked_at, state.checked_changes = checked_at, changes
            state.failed.pop(key, None)
            return model

    def _load(self, key: tuple[str, str]) -> Any:
        started = time.perf_counter()
        model = self._load_fn(Path(key[1]))
        version = getattr(model, "version", key[0])
        if version != key[0]:
            raise ArtifactError(f"{key[1]} holds version {version!r}, the registry says {key[0]!r}")
        log.info("loaded %s %s in %.2fs", self.label, key[0], time.perf_counter() - started)
        return model

    def reset_loaded(self) -> None:
        """Forget the loaded model (tests)."""
        with self._lock:
            self._loaded = _Loaded()
