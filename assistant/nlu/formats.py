"""The NLU's artifact formats and what a loaded model of any format answers.

    nlu-minilm-heads/1   the frozen MiniLM encoder + an intent head and a slot head (heads.py)
    nlu-minilm-joint/1   MiniLM fine-tuned with heads after every layer, early exit (joint.py)

Both write their weights and a manifest.json (assistant/artifacts.py); the manifest
says which format it is, and loading.load_model() dispatches on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant import artifacts
from assistant.artifacts import ArtifactError
from assistant.nlu.encoder import ENCODER_NAME

HEADS_FORMAT = "nlu-minilm-heads/1"
JOINT_FORMAT = "nlu-minilm-joint/1"
FORMATS = (HEADS_FORMAT, JOINT_FORMAT)


def read_manifest(path: Path) -> dict:
    """The manifest of an NLU artifact folder, checked for shape (not for weights)."""
    manifest = artifacts.read_manifest(path)
    if manifest.get("format") not in FORMATS:
        raise ArtifactError(
            f"unknown artifact format {manifest.get('format')!r} in {path} (want one of {', '.join(FORMATS)})"
        )
    for key in ("version", "intents", "slot_labels", "temperature", "files", "encoder"):
        if key not in manifest:
            raise ArtifactError(f"manifest in {path} lacks {key!r}")
    if manifest["encoder"].get("name") != ENCODER_NAME:
        raise ArtifactError(f"artifact {path} was trained on {manifest['encoder'].get('name')!r}")
    return manifest


@dataclass(frozen=True)
class Prediction:
    """What a model says about one utterance, before the out-of-scope policy is applied."""

    probs: np.ndarray  # calibrated, over the model's `intents`
    spans: tuple[tuple[str, int, int], ...]  # (slot type, start, end) in the text
