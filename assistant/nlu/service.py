"""Train-and-register: what `manage.py train_nlu` and the Celery task both do."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from assistant.nlu.registry import KIND, active_artifact_exists, register
from assistant.nlu.seed import Example, data_hash, intent_counts, seed_examples
from assistant.nlu.training import Progress, train
from feedback.models import ModelVersion

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    version: ModelVersion | None  # the registered version, or the active one when skipped
    manifest: dict = field(default_factory=dict)
    skipped: bool = False
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "version": self.version.version if self.version else None,
            "skipped": self.skipped,
            "reason": self.reason,
            "metrics": self.manifest.get("metrics", {}),
            "examples": sum(self.counts.values()),
        }


def new_version_name(examples_hash: str) -> str:
    return f"nlu-{datetime.now(UTC):%Y%m%d-%H%M%S}-{examples_hash[:8]}"


def train_and_register(
    examples: list[Example] | None = None,
    *,
    out_base: Path | None = None,
    force: bool = False,
    promote: bool = True,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Train on `examples` (the seed set by default) unless the active version already
    has the same data, write to <out_base>/<version>/ and register (and promote) it."""
    examples = list(examples) if examples is not None else seed_examples()
    counts = intent_counts(examples)
    digest = data_hash(examples)
    active = active_artifact_exists()
    if not force and active is not None and active.manifest.get("data_hash") == digest:
        return TrainOutcome(
            version=active,
            manifest=active.manifest,
            skipped=True,
            reason=f"the active version {active.version} was trained on the same data",
            counts=counts,
        )
    base = Path(out_base) if out_base else Path(settings.MODEL_DIR) / KIND
    base.mkdir(parents=True, exist_ok=True)  # fail before a minute of training, not after
    version = new_version_name(digest)
    out_dir = base / version
    manifest = train(examples, out_dir, progress=progress, version=version)
    row = register(out_dir, manifest, promote=promote)
    log.info("trained and registered NLU %s", version)
    return TrainOutcome(version=row, manifest=manifest, counts=counts)
