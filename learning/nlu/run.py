"""What both NLU trainers share: checked examples, the label sets, the template-grouped
validation split, temperature fitting and the manifest fields every artifact records.

No database access, no torch at import.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from assistant.intents import INTENTS, SLOTS
from assistant.nlu.seed import Example, data_hash, intent_counts
from assistant.nlu.tagging import slot_label_set

# Training reports (fraction done, what it is doing): the job runner writes it into the Job row.
Progress = Callable[[float, str], None]


class TrainingError(ValueError):
    """The examples cannot make a model (too few, unknown labels…)."""


# Imported data (SLURP, HWU, CLINC, Rasa: assistant/nlu/datasets.py) brings intents
# and slot types beyond assistant.intents: they join the label set (the pipeline
# answers an intent without a skill as out of scope), but must be plain label names.
_LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _stable(value: str) -> str:
    return hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()  # a split, not security


# The groups of examples made from labelled turns (learning/nlu/service.py: reviewers' and generated labels).
FEEDBACK_GROUPS = ("review:", "generated:")


def is_feedback(example: Example) -> bool:
    return example.group.startswith(FEEDBACK_GROUPS)


def split_examples(examples: list[Example], fraction: float) -> tuple[list[int], list[int]]:
    """Indices (train, validation). Per intent, the seed's and public data's groups with the smallest hashes
    are held out, chosen among those groups only: the held-out templates (the fixed validation set the
    promotion gate compares versions on) stay the same whatever labels feedback adds. An example from a
    labelled turn is held out by its own hash, with probability `fraction`."""
    by_intent: dict[str, set[str]] = {}
    for e in examples:
        if not is_feedback(e):
            by_intent.setdefault(e.intent, set()).add(e.group or e.text)
    held: set[tuple[str, str]] = set()
    for intent, groups in by_intent.items():
        if len(groups) < 3:
            continue  # too few phrasings to spare one
        ordered = sorted(groups, key=lambda g: _stable(f"{intent}|{g}"))
        for g in ordered[: max(1, round(fraction * len(groups)))]:
            held.add((intent, g))
    train, val = [], []
    for i, e in enumerate(examples):
        if is_feedback(e):
            out = int(_stable(f"{e.intent}|{e.group}")[:8], 16) / 16**8 < fraction
        else:
            out = (e.intent, e.group or e.text) in held
        (val if out else train).append(i)
    return train, val


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises held-out negative log-likelihood."""
    from scipy.optimize import minimize_scalar

    if len(y) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def _check(examples: list[Example]) -> None:
    if len(examples) < 10:
        raise TrainingError("need at least 10 examples")
    unknown = {e.intent for e in examples if not _LABEL_NAME.match(e.intent)}
    if unknown:
        raise TrainingError(f"unusable intent names: {sorted(unknown)}")
    for e in examples:
        for s in e.spans:
            if s.type not in SLOTS and not _LABEL_NAME.match(s.type):
                raise TrainingError(f"unusable slot type {s.type!r} in {e.text!r}")
            if not (0 <= s.start < s.end <= len(e.text)):
                raise TrainingError(f"span {s} outside {e.text!r}")


@dataclass
class TrainingRun:
    """What both architectures (heads.py and joint.py here) train from: checked examples, the
    label sets, the template-grouped split, and the manifest fields every artifact records
    about them (the promotion gate compares versions through data and validation hashes)."""

    examples: list[Example]
    intents: list[str]
    labels: list[str]
    train_idx: list[int]
    val_idx: list[int]
    started: float

    @property
    def fixed_idx(self) -> list[int]:
        """The validation examples of the seed and public data: the same set whatever feedback labelled."""
        return [i for i in self.val_idx if not is_feedback(self.examples[i])]

    @classmethod
    def start(cls, examples: list[Example], out_dir: Path, validation_fraction: float) -> TrainingRun:
        if out_dir.exists() and any(out_dir.iterdir()):
            raise FileExistsError(f"{out_dir} already holds files; artifacts are never overwritten")
        started = time.perf_counter()
        examples = list(examples)
        _check(examples)
        train_idx, val_idx = split_examples(examples, validation_fraction)
        return cls(
            examples=examples,
            # The full label set, even for intents without examples, plus those the data adds.
            intents=sorted(set(INTENTS) | {e.intent for e in examples}),
            labels=slot_label_set([s.type for e in examples for s in e.spans]),
            train_idx=train_idx,
            val_idx=val_idx,
            started=started,
        )

    def manifest(self, fmt: str, version: str, metrics: dict, fixed_metrics: dict, **specific) -> dict:
        """The artifact's manifest: the run's common fields, then the architecture's own. `metrics` are
        measured on the validation split, `fixed_metrics` on its fixed part (fixed_idx)."""
        examples = self.examples
        return {
            "format": fmt,
            "kind": "nlu",
            "version": version,
            "data_hash": data_hash(examples),
            # The promotion gate compares metrics only between versions with the same validation examples.
            "validation_hash": data_hash([examples[i] for i in self.val_idx]),
            # ...and, across retrains on new feedback labels, on the held-out seed and public templates.
            "fixed_validation_hash": data_hash([examples[i] for i in self.fixed_idx]),
            "examples": len(examples),
            "intent_counts": intent_counts(examples),
            "split": {"train": len(self.train_idx), "validation": len(self.val_idx), "by": "template group"},
            "intents": self.intents,
            "slot_labels": self.labels,
            **specific,
            "metrics": {"validation": metrics, "fixed_validation": fixed_metrics},
            "created_at": datetime.now(UTC).isoformat(),
            "train_seconds": round(time.perf_counter() - self.started, 2),
            "files": {},
        }
