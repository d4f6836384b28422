"""The heads NLU model: the shared MiniLM encoder (frozen) plus two small heads.

    intent  softmax over the standardised sentence embedding (one hidden layer),
            divided by a temperature fitted on held-out data (calibration)
    slots   BIO tags per word piece from [piece, previous piece, next piece,
            sentence] states; each word takes the tag of its first piece

Weights are numpy arrays in heads.npz (loaded with allow_pickle=False) and
everything else is JSON in manifest.json, so loading an artifact runs no code.
Inference is numpy on top of one encoder forward pass. The trainer is
learning/nlu/heads.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.artifacts import ArtifactError, checked_file
from assistant.nlu.encoder import Encoded
from assistant.nlu.formats import HEADS_FORMAT, Prediction, read_manifest
from assistant.nlu.metrics import softmax
from assistant.nlu.tagging import spans_from_piece_tags

FORMAT = HEADS_FORMAT
HEADS = "heads.npz"


def slot_features(enc: Encoded, neighbours: bool = False) -> np.ndarray:
    """Per word piece: its state and the sentence embedding, optionally with the
    neighbouring pieces' states (zeros at the edges)."""
    t = enc.tokens
    n, dim = t.shape
    parts = 4 if neighbours else 2
    feats = np.zeros((n, parts * dim), dtype=np.float32)
    if n == 0:
        return feats
    feats[:, :dim] = t
    feats[:, dim : 2 * dim] = enc.sentence
    if neighbours:
        feats[1:, 2 * dim : 3 * dim] = t[:-1]
        feats[:-1, 3 * dim :] = t[1:]
    return feats


@dataclass(frozen=True)
class Head:
    """Standardise, optionally one ReLU hidden layer, then logits."""

    mean: np.ndarray
    std: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> Head:
        layers = []
        i = 0
        while f"{prefix}.w{i}" in arrays:
            layers.append((arrays[f"{prefix}.w{i}"].astype(np.float32), arrays[f"{prefix}.b{i}"].astype(np.float32)))
            i += 1
        if not layers:
            raise ArtifactError(f"no weights for the {prefix} head")
        return cls(
            mean=arrays[f"{prefix}.mean"].astype(np.float32),
            std=arrays[f"{prefix}.std"].astype(np.float32),
            layers=tuple(layers),
        )

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}.mean": self.mean, f"{prefix}.std": self.std}
        for i, (w, b) in enumerate(self.layers):
            out[f"{prefix}.w{i}"], out[f"{prefix}.b{i}"] = w, b
        return out


class HeadsModel:
    """A loaded artifact; `predict` is thread-safe and runs on many threads at once."""

    def __init__(self, path: Path, manifest: dict, intent_head: Head, slot_head: Head, encoder) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.intents: list[str] = list(manifest["intents"])
        self.slot_labels: list[str] = list(manifest["slot_labels"])
        self.temperature = float(manifest["temperature"])
        self.neighbours = bool(manifest.get("hyperparameters", {}).get("slot_neighbours", False))
        self.intent_head = intent_head
        self.slot_head = slot_head
        self.encoder = encoder

    @classmethod
    def load(cls, path: Path, encoder=None) -> HeadsModel:
        """Load and check an artifact completely; raise ArtifactError if anything is off."""
        path = Path(path)
        manifest = read_manifest(path)
        if manifest["format"] != FORMAT:
            raise ArtifactError(f"{path} holds a {manifest['format']} artifact, not {FORMAT}")
        heads_path = checked_file(path, manifest, HEADS)
        try:
            with np.load(heads_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read {heads_path}: {exc}") from exc
        intent_head = Head.from_arrays(arrays, "intent")
        slot_head = Head.from_arrays(arrays, "slot")
        if intent_head.layers[-1][0].shape[1] != len(manifest["intents"]):
            raise ArtifactError("intent head does not match the manifest's intents")
        if slot_head.layers[-1][0].shape[1] != len(manifest["slot_labels"]):
            raise ArtifactError("slot head does not match the manifest's slot labels")
        if not float(manifest["temperature"]) > 0:
            raise ArtifactError("temperature must be positive")
        if encoder is None:
            from assistant.nlu.encoder import shared_encoder

            encoder = shared_encoder()
        model = cls(path, manifest, intent_head, slot_head, encoder)
        model.predict("hello")  # fail now, not on the first user's turn
        return model

    def predict_encoded(self, text: str, enc: Encoded) -> Prediction:
        probs = softmax(self.intent_head.logits(enc.sentence[None, :])[0] / self.temperature)
        spans: tuple[tuple[str, int, int], ...] = ()
        if len(enc.offsets):
            tag_ids = self.slot_head.logits(slot_features(enc, self.neighbours)).argmax(axis=1)
            spans = spans_from_piece_tags(text, enc.offsets, tag_ids, self.slot_labels)
        return Prediction(probs=probs, spans=spans)

    def predict(self, text: str) -> Prediction:
        return self.predict_encoded(text, self.encoder.encode(text))
