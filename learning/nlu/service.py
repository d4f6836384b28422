"""Train-and-register the NLU: what `manage.py train_nlu` and the learning task both do."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from assistant.models import ModelVersion
from assistant.nlu import BEST, FIRST, NLU_MODELS, RECIPES, recipe_of
from assistant.nlu.datasets import DatasetError, ImportReport, dedupe, merge_sources
from assistant.nlu.heads import FORMAT as HEADS_FORMAT
from assistant.nlu.joint import FORMAT as JOINT_FORMAT
from assistant.nlu.seed import Example, data_hash, intent_counts, seed_examples
from assistant.nlu.typos import noisy_example
from assistant.turns import SlotSpan
from feedback.labels import placed, reviewed, turn_words
from feedback.models import GeneratedLabel, Label
from learning.generated_labels import recent_successes, training_labels
from learning.nlu.context import train_and_register as train_context
from learning.nlu.gate import decide
from learning.nlu.heads import CannotContinue, continue_training, train
from learning.nlu.joint import train_joint
from learning.nlu.run import FEEDBACK_GROUPS, Progress, is_feedback
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
    context: dict = field(default_factory=dict)  # the context re-ranker trained for a promoted version

    def as_dict(self) -> dict:
        return {
            "version": self.version.version if self.version else None,
            "skipped": self.skipped,
            "reason": self.reason,
            "promoted": self.promoted,
            "gate": self.gate_note,
            "metrics": self.manifest.get("metrics", {}),
            "examples": sum(self.counts.values()),
            "context": self.context,
        }


def reviewed_examples() -> list[Example]:
    """Reviewers' current labels (feedback/labels.py) as training examples, each slot a span of the turn's
    words; a label that only names a failure point teaches the NLU nothing."""
    return [_turn_example(label, "review") for label in reviewed() if label.intent]


def _turn_example(label: Label | GeneratedLabel, source: str) -> Example:
    """A label of a stored turn as an example: the turn's words, each slot a span of them."""
    text = turn_words(label.turn)
    spans = tuple(SlotSpan(name, value, at, at + len(value)) for at, name, value in placed(text, label.slots))
    return Example(text=text, intent=label.intent, spans=spans, group=f"{source}:{label.turn_id}")


def generated_examples() -> list[Example]:
    """Labels generated from feedback (learning/generated_labels.py) as training examples: a failed turn's
    words with the reading its successful rephrase had, and readings that went well."""
    return [_turn_example(label, "generated") for label in training_labels()]


def with_feedback(seed: list[Example]) -> list[Example]:
    """Reviewers' labels first, then labels generated from feedback, then `seed`: on the same words a
    reviewer's label wins over a generated one, and what people showed they meant over the seed's (the
    seed's example stays in the list, so that the seed still hashes the same; train_and_register drops it)."""
    extra = [*reviewed_examples(), *generated_examples()]
    return [*dedupe(extra), *seed] if extra else seed


def training_examples(
    data: list[Path] | list[str], *, fmt: str = "auto", split: str | None = None, with_seed: bool = True
) -> tuple[list[Example], ImportReport]:
    """The seed utterances and reviewers' labels (unless `with_seed` is off) merged with labelled files
    (SLURP/HWU JSONL, Rasa YAML, CLINC JSON; assistant/nlu/datasets.py); raises DatasetError."""
    if not data and not with_seed:
        raise DatasetError("training without the seed needs at least one data file")
    return merge_sources(
        [Path(p) for p in data], fmt=fmt, split=split, seed=with_feedback(seed_examples()) if with_seed else None
    )


# What a version is trained on, and how (its manifest's "recipe"):
#   first  the seed utterances and reviewers' labels, frozen-encoder heads: `make run` serves it within a
#          minute of install, while the best one trains as a background job
#   best   the same plus the public data of NLU_PUBLIC_DATA (SLURP train and devel, HWU64), with
#          NLU_BEST_ARCHITECTURE (joint by default): what real people ask, including requests no skill
#          handles, which the fallback then names ("I can't order food yet")


def public_data_files() -> list[Path]:
    """The files of NLU_PUBLIC_DATA that exist (a missing one is logged, not fatal: the seed still trains)."""
    found = []
    for path in map(Path, settings.NLU_PUBLIC_DATA):
        if path.is_file():
            found.append(path)
        else:
            log.warning("public NLU data %s is missing; the best NLU trains without it", path)
    return found


def recipe_examples(recipe: str) -> tuple[list[Example], str]:
    """(examples, architecture) of a recipe; raises ValueError for an unknown one, DatasetError for bad files."""
    if recipe == FIRST:
        return with_feedback(seed_examples()), "heads"
    if recipe == BEST:
        # Rows with a `split` field (SLURP's devel+test file) give their devel rows only: never the test split.
        examples, _ = training_examples(public_data_files(), split="devel")
        return with_typos(examples, settings.NLU_TYPO_FRACTION), settings.NLU_BEST_ARCHITECTURE
    raise ValueError(f"unknown recipe {recipe!r} ({' or '.join(RECIPES)})")


def with_typos(examples: list[Example], fraction: float, seed: int = 7) -> list[Example]:
    """`examples` plus a mistyped copy (assistant/nlu/typos.py: one keyboard error, slots kept on their
    words) of `fraction` of them, so that typed requests with a typo read as the request. A copy stays in
    its original's group, so the validation split holds out both or neither."""
    if fraction <= 0:
        return examples
    rng = random.Random(seed)
    texts = {e.text for e in examples}
    copies = []
    for example in rng.sample(examples, round(fraction * len(examples))):
        noisy = noisy_example(example, rng)
        if noisy.text not in texts:
            texts.add(noisy.text)
            copies.append(replace(noisy, group=example.group or example.text))
    return examples + copies


def active_recipe() -> str:
    """The recipe of the serving version (what a retrain on new data repeats); first when none is."""
    active = NLU_MODELS.active_artifact()
    return recipe_of(active.manifest) if active is not None else FIRST


def still_works(candidate_dir: Path) -> dict | None:
    """The intent accuracy of a candidate and of the serving version on requests that recently went well
    (the generated "success" labels, newest first, at most NLU_WORKS_SET_SIZE): the promotion gate refuses a
    candidate that breaks what works. None while there are none, or nothing serves."""
    from assistant.nlu.loading import load_model

    active = NLU_MODELS.active_artifact()
    if active is None:
        return None
    works = [(turn_words(label.turn), label.intent) for label in recent_successes()]
    if not works:
        return None

    def accuracy(model) -> float:
        right = sum(model.intents[int(model.predict(text).probs.argmax())] == intent for text, intent in works)
        return round(right / len(works), 4)

    serving = NLU_MODELS.model()  # the loaded serving version (the registry loads it once per process)
    return {
        "n": len(works),
        "accuracy": accuracy(load_model(candidate_dir)),
        "active_accuracy": accuracy(serving),
        "active_version": serving.version,
    }


def _without_feedback(examples: list[Example]) -> list[Example]:
    return [e for e in examples if not is_feedback(e)]


def _label_digest(example: Example) -> str:
    """A short digest of a label's words, intent and slots (not of where it came from)."""
    return data_hash([Example(example.text, example.intent, example.spans)])[:12]


def trained_on(label: Label, manifest: dict) -> bool:
    """Whether the NLU version of `manifest` was trained on this reviewer's label (its words, intent and slots)."""
    return _label_digest(_turn_example(label, "review")) in set(manifest.get("feedback_digests") or ())


def feedback_digests(examples: list[Example], groups: tuple[str, ...] = FEEDBACK_GROUPS) -> list[str]:
    """The digests of the reviewed and generated examples (those of `groups`), sorted: a version's manifest
    keeps them, so the next retrain knows how many labels are new."""
    return sorted({_label_digest(e) for e in examples if e.group.startswith(groups)})


def _nothing_new(active, examples: list[Example], digest: str, base: str, feedback: list[str]) -> str:
    """Why retraining would teach nothing the active version lacks ("" when it would): the same data, or
    the same data besides fewer than NLU_RETRAIN_MIN_NEW_LABELS new generated labels (any new reviewer
    label is worth a retrain). `base` is the hash of the data besides the feedback labels."""
    manifest = active.manifest
    if manifest.get("data_hash") == digest:
        return f"the active version {active.version} was trained on the same data"
    if manifest.get("base_hash") != base or "feedback_digests" not in manifest:
        return ""
    new = set(feedback) - set(manifest["feedback_digests"])
    reviewed_new = bool(new & set(feedback_digests(examples, ("review:",))))
    if reviewed_new or len(new) >= settings.NLU_RETRAIN_MIN_NEW_LABELS:
        return ""
    return (
        f"only {len(new)} labels from feedback are new since {active.version} "
        f"(it retrains from NLU_RETRAIN_MIN_NEW_LABELS = {settings.NLU_RETRAIN_MIN_NEW_LABELS})"
    )


def _continuable(active, base_hash: str) -> bool:
    """Whether the active version can be continued on new labels: a heads model trained on the same seed
    and public data (base_hash), recording which labels it saw."""
    manifest = active.manifest if active is not None else {}
    return (
        manifest.get("format") == HEADS_FORMAT
        and manifest.get("base_hash") == base_hash
        and "feedback_digests" in manifest
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
    recipe: str = "",
    progress: Progress | None = None,
    context: bool = True,
    incremental: bool = False,
) -> TrainOutcome:
    """Train on `examples` (the seed set and reviewers' labels by default) unless the active version already
    has the same data and architecture, write to <out_base>/<version>/ and register it.

    With `promote`, the promotion gate (learning/nlu/gate.py) decides: a version
    that regresses is registered as "rejected" with a note saying which metric fell,
    and the active version keeps serving; `force_promote` skips the gate.
    `architecture` is "heads" (frozen MiniLM + heads, learning/nlu/heads.py) or "joint" (fine-tuned
    MiniLM with early exit, learning/nlu/joint.py). With `context`, a promoted version gets its context
    re-ranker here (learning/nlu/context.py); without, the caller sees to it (train_nlu queues it).

    With `incremental` (the learning cycle's retrain), a heads version serving on the same seed and public
    data is continued on the labels new since it was trained plus a replay sample of the rest
    (learning/nlu/heads.py continue_training); anything else trains from scratch, as does a full retrain
    (`train_nlu`, the weekly job), which also replaces a continued version trained on the same data."""
    formats = {"heads": HEADS_FORMAT, "joint": JOINT_FORMAT}
    if architecture not in formats:
        raise ValueError(f"unknown architecture {architecture!r} (heads or joint)")
    if examples is None:
        examples, recipe = with_feedback(seed_examples()), recipe or FIRST
    # What the next retrain compares with: the seed and public data as given (the same whatever labels
    # came), then the data trained on, where the first example of a text wins (a label over the seed's).
    base_hash = data_hash(_without_feedback(examples))
    examples = dedupe(examples)
    counts = intent_counts(examples)
    digest = data_hash(examples)
    active = NLU_MODELS.active_artifact()
    feedback = feedback_digests(examples)
    if not force and active is not None and active.manifest.get("format", HEADS_FORMAT) == formats[architecture]:
        why = _nothing_new(active, examples, digest, base_hash, feedback)
        continued = (active.manifest.get("training") or {}).get("mode") == "incremental"
        if why and (incremental or not continued):
            return TrainOutcome(version=active, manifest=active.manifest, skipped=True, reason=why, counts=counts)
    base = Path(out_base) if out_base else Path(settings.MODEL_DIR) / NLU_MODELS.name
    base.mkdir(parents=True, exist_ok=True)  # fail before a minute of training, not after
    version = new_version_name(digest)
    out_dir = base / version
    manifest = None
    if incremental and architecture == "heads" and _continuable(active, base_hash):
        known = set(active.manifest["feedback_digests"])
        new = {i for i, e in enumerate(examples) if is_feedback(e) and _label_digest(e) not in known}
        try:
            manifest = continue_training(
                examples, new, Path(active.path), out_dir, progress=progress, version=version, recipe=recipe
            )
        except CannotContinue as exc:
            log.info("NLU %s is retrained from scratch: %s", version, exc)
    if manifest is None and architecture == "joint":
        manifest = train_joint(examples, out_dir, progress=progress, version=version, recipe=recipe)
    elif manifest is None:
        manifest = train(examples, out_dir, progress=progress, version=version, recipe=recipe)
    # What the next retrain compares with: the data besides the feedback labels, and those labels.
    manifest = {**manifest, "base_hash": base_hash, "feedback_digests": feedback}
    if promote and not force_promote:
        works = still_works(out_dir)
        if works is not None:
            manifest = {**manifest, "metrics": {**manifest.get("metrics", {}), "works": works}}
    row, decision = register_candidate(
        NLU_MODELS, out_dir, manifest, gate=decide, promote=promote, force_promote=force_promote
    )
    log.info("trained and registered NLU %s (%s)", version, row.status)
    if decision is None:
        return TrainOutcome(version=row, manifest=manifest, counts=counts, gate_note=row.note)
    # A re-ranker learns what this version's probabilities are worth in context; the old one's do not serve it.
    context = train_context(progress=progress) if decision.promote and context else {}
    return TrainOutcome(
        version=row,
        manifest=manifest,
        counts=counts,
        promoted=decision.promote,
        gate_note=decision.note,
        context=context,
    )


def train_from_params(params: dict, progress: Progress | None = None) -> TrainOutcome:
    """train_and_register() from a learning job's parameters (the learning task's whole work).

    params: recipe ("first"/"best"; by default the serving version's, so that the learning cycle's
    retrain on new labels keeps what the model knows), mode ("full", or "incremental": continue the
    serving version on the new labels, the learning cycle's), force, force_promote, architecture
    ("heads"/"joint", overriding the recipe's), and for training on labelled files on the
    worker's disk instead, as `train_nlu --data` takes them: data (paths), format, split, seed
    (false: the files only). Raises ValueError/DatasetError on bad ones.
    """
    data = params.get("data") or []
    if not isinstance(data, list) or not all(isinstance(path, str) for path in data):
        raise ValueError("params.data must be a list of file paths")
    if data or params.get("seed") is False:
        recipe = ""
        architecture = "heads"
        examples, _ = training_examples(
            data,
            fmt=str(params.get("format", "auto")),
            split=params.get("split"),
            with_seed=params.get("seed", True) is not False,
        )
    else:
        recipe = str(params.get("recipe") or active_recipe())
        examples, architecture = recipe_examples(recipe)
    mode = str(params.get("mode") or "full")
    if mode not in ("full", "incremental"):
        raise ValueError(f"params.mode is full or incremental, not {mode!r}")
    return train_and_register(
        examples,
        incremental=mode == "incremental",
        force=bool(params.get("force")),
        force_promote=bool(params.get("force_promote")),
        # "heads" or "joint" (fine-tuned, early exit); anything else fails the job with a message.
        architecture=str(params.get("architecture") or architecture),
        recipe=recipe,
        progress=progress,
    )
