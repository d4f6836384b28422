"""Train-and-register the NLU: what `manage.py train_nlu` and the learning task both do."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from assistant.models import ModelVersion
from assistant.nlu import NLU_MODELS
from assistant.nlu.datasets import DatasetError, ImportReport, dedupe, merge_sources
from assistant.nlu.heads import FORMAT as HEADS_FORMAT
from assistant.nlu.joint import FORMAT as JOINT_FORMAT
from assistant.nlu.seed import Example, data_hash, intent_counts, seed_examples
from assistant.turns import SlotSpan
from feedback.labels import placed, reviewed, turn_words
from learning.nlu.gate import decide
from learning.nlu.heads import train
from learning.nlu.joint import train_joint
from learning.nlu.run import Progress
from learning.registry import register_candidate

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    version: ModelVersion | None  # the registered version, or the active one when skipped
    manifest: dict = field(default_factory=dict)
    skipped: bool = False
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    promoted: bool = False
    gate_note: str = ""  # what the promotion gate decided and why (learning/nlu/gate.py)

    def as_dict(self) -> dict:
        return {
            "version": self.version.version if self.version else None,
            "skipped": self.skipped,
            "reason": self.reason,
            "promoted": self.promoted,
            "gate": self.gate_note,
            "metrics": self.manifest.get("metrics", {}),
            "examples": sum(self.counts.values()),
        }


def reviewed_examples() -> list[Example]:
    """Reviewers' current labels (feedback/labels.py) as training examples, each slot a span of the turn's
    words; a label that only names a failure point teaches the NLU nothing."""
    examples = []
    for label in reviewed():
        if not label.intent:
            continue
        text = turn_words(label.turn)
        spans = tuple(SlotSpan(name, value, at, at + len(value)) for at, name, value in placed(text, label.slots))
        examples.append(Example(text=text, intent=label.intent, spans=spans, group=f"review:{label.turn_id}"))
    return examples


def with_reviewed(seed: list[Example]) -> list[Example]:
    """The reviewers' examples first, so that on the same words their label wins over the seed's."""
    extra = reviewed_examples()
    return dedupe([*extra, *seed]) if extra else seed


def training_examples(
    data: list[Path] | list[str], *, fmt: str = "auto", split: str | None = None, with_seed: bool = True
) -> tuple[list[Example], ImportReport]:
    """The seed utterances and reviewers' labels (unless `with_seed` is off) merged with labelled files
    (SLURP/HWU JSONL, Rasa YAML, CLINC JSON; assistant/nlu/datasets.py); raises DatasetError."""
    if not data and not with_seed:
        raise DatasetError("training without the seed needs at least one data file")
    return merge_sources(
        [Path(p) for p in data], fmt=fmt, split=split, seed=with_reviewed(seed_examples()) if with_seed else None
    )


def new_version_name(examples_hash: str) -> str:
    return f"nlu-{datetime.now(UTC):%Y%m%d-%H%M%S}-{examples_hash[:8]}"


def train_and_register(
    examples: list[Example] | None = None,
    *,
    out_base: Path | None = None,
    force: bool = False,
    promote: bool = True,
    force_promote: bool = False,
    architecture: str = "heads",
    progress: Progress | None = None,
) -> TrainOutcome:
    """Train on `examples` (the seed set and reviewers' labels by default) unless the active version already
    has the same data and architecture, write to <out_base>/<version>/ and register it.

    With `promote`, the promotion gate (learning/nlu/gate.py) decides: a version
    that regresses is registered as "rejected" with a note saying which metric fell,
    and the active version keeps serving; `force_promote` skips the gate.
    `architecture` is "heads" (frozen MiniLM + heads, learning/nlu/heads.py) or "joint" (fine-tuned
    MiniLM with early exit, learning/nlu/joint.py)."""
    formats = {"heads": HEADS_FORMAT, "joint": JOINT_FORMAT}
    if architecture not in formats:
        raise ValueError(f"unknown architecture {architecture!r} (heads or joint)")
    examples = list(examples) if examples is not None else with_reviewed(seed_examples())
    counts = intent_counts(examples)
    digest = data_hash(examples)
    active = NLU_MODELS.active_artifact()
    if (
        not force
        and active is not None
        and active.manifest.get("data_hash") == digest
        and active.manifest.get("format", HEADS_FORMAT) == formats[architecture]
    ):
        return TrainOutcome(
            version=active,
            manifest=active.manifest,
            skipped=True,
            reason=f"the active version {active.version} was trained on the same data",
            counts=counts,
        )
    base = Path(out_base) if out_base else Path(settings.MODEL_DIR) / NLU_MODELS.name
    base.mkdir(parents=True, exist_ok=True)  # fail before a minute of training, not after
    version = new_version_name(digest)
    out_dir = base / version
    if architecture == "joint":
        manifest = train_joint(examples, out_dir, progress=progress, version=version)
    else:
        manifest = train(examples, out_dir, progress=progress, version=version)
    row, decision = register_candidate(
        NLU_MODELS, out_dir, manifest, gate=decide, promote=promote, force_promote=force_promote
    )
    log.info("trained and registered NLU %s (%s)", version, row.status)
    if decision is None:
        return TrainOutcome(version=row, manifest=manifest, counts=counts, gate_note=row.note)
    return TrainOutcome(
        version=row, manifest=manifest, counts=counts, promoted=decision.promote, gate_note=decision.note
    )


def train_from_params(params: dict, progress: Progress | None = None) -> TrainOutcome:
    """train_and_register() from a learning job's parameters (the learning task's whole work).

    params: force, force_promote, architecture ("heads"/"joint"), and for training on
    labelled files on the worker's disk, as `train_nlu --data` takes them: data (paths),
    format, split, seed (false: the files only). Raises ValueError/DatasetError on bad ones.
    """
    data = params.get("data") or []
    if not isinstance(data, list) or not all(isinstance(path, str) for path in data):
        raise ValueError("params.data must be a list of file paths")
    examples = None
    if data or params.get("seed") is False:
        examples, _ = training_examples(
            data,
            fmt=str(params.get("format", "auto")),
            split=params.get("split"),
            with_seed=params.get("seed", True) is not False,
        )
    return train_and_register(
        examples,
        force=bool(params.get("force")),
        force_promote=bool(params.get("force_promote")),
        # "heads" (default) or "joint" (fine-tuned, early exit); anything else fails the job with a message.
        architecture=str(params.get("architecture", "heads")),
        progress=progress,
    )
