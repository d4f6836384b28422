"""A trained NLU model: the shared MiniLM encoder plus two small heads.

    intent  softmax over the standardised sentence embedding (one hidden layer),
            divided by a temperature fitted on held-out data (calibration)
    slots   BIO tags per word piece from [piece, previous piece, next piece,
            sentence] states; each word takes the tag of its first piece

Weights are numpy arrays in heads.npz (loaded with allow_pickle=False) and
everything else is JSON in manifest.json, so loading an artifact runs no code.
Inference is numpy on top of one encoder forward pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.nlu.encoder import ENCODER_NAME, Encoded

FORMAT = "nlu-minilm-heads/1"
JOINT_FORMAT = "nlu-minilm-joint/1"  # assistant/nlu/joint.py (fine-tuned encoder, early exit)
FORMATS = (FORMAT, JOINT_FORMAT)
MANIFEST = "manifest.json"
HEADS = "heads.npz"

_WORD = re.compile(r"\S+")


class ArtifactError(ValueError):
    """An artifact folder is incomplete, corrupt or of an unknown format."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_artifact(out_dir: Path, manifest: dict, weights_name: str, write_weights: Callable[[Path], None]) -> None:
    """Write weights + manifest into a temp folder beside out_dir, then rename it into place.

    A reader never sees a half-written version; out_dir may exist only as an empty folder.
    The manifest's `files` records the weights' checksum.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        write_weights(tmp / weights_name)
        manifest["files"] = {weights_name: file_sha256(tmp / weights_name)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            out_dir.rmdir()
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path: Path) -> dict:
    """The manifest of an artifact folder, checked for shape (not for weights)."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"unreadable manifest in {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"manifest in {path} is not an object")
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


# -- small numpy helpers shared with training ---------------------------------
def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


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


def words_of(text: str) -> list[tuple[int, int]]:
    """Whitespace-separated words as (start, end): the unit of a slot span."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def first_pieces(text: str, offsets: tuple[tuple[int, int], ...]) -> list[int | None]:
    """For each word, the index of its first word piece (None when truncated away)."""
    words = words_of(text)
    firsts: list[int | None] = [None] * len(words)
    w = 0
    for i, (start, _end) in enumerate(offsets):
        while w < len(words) and start >= words[w][1]:
            w += 1
        if w == len(words):
            break
        if firsts[w] is None and start >= words[w][0]:
            firsts[w] = i
    return firsts


def piece_word_index(text: str, offsets: tuple[tuple[int, int], ...]) -> list[int]:
    """For each word piece, the index of the word it belongs to."""
    words = words_of(text)
    out: list[int] = []
    w = 0
    for start, _end in offsets:
        while w < len(words) - 1 and start >= words[w][1]:
            w += 1
        out.append(w)
    return out


def decode_bio(text: str, word_tags: list[str]) -> list[tuple[str, int, int]]:
    """Word-level BIO tags -> (type, start, end) character spans. A stray I-x opens a span.

    A B-x right after a word of an x span continues that span instead of opening a
    new one: two values of one type practically never touch (4 of 2,155 spans in
    SLURP's test split), while a tagger restarting in the middle of a value
    ("oatmeal | cookies", "london | england") is a common error."""
    words = words_of(text)
    spans: list[tuple[str, int, int]] = []
    current: list | None = None
    for (start, end), tag in zip(words, word_tags, strict=False):
        if tag == "O" or "-" not in tag:
            current = None
            continue
        _prefix, kind = tag.split("-", 1)
        if current is not None and current[0] == kind:
            current[2] = end
            continue
        current = [kind, start, end]
        spans.append(current)  # type: ignore[arg-type]
    return [(k, s, e) for k, s, e in spans]


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


@dataclass(frozen=True)
class Prediction:
    """What the model says about one utterance, before the OOS policy is applied."""

    probs: np.ndarray  # calibrated, over `intents`
    spans: tuple[tuple[str, int, int], ...]


class NluModel:
    """A loaded artifact; `predict` is thread-safe (the encoder serialises its forward pass)."""

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
    def load(cls, path: Path, encoder=None) -> NluModel:
        """Load and check an artifact completely; raise ArtifactError if anything is off."""
        path = Path(path)
        manifest = read_manifest(path)
        heads_path = path / HEADS
        expected = manifest["files"].get(HEADS)
        try:
            if expected and file_sha256(heads_path) != expected:
                raise ArtifactError(f"{heads_path} does not match its manifest checksum")
            with np.load(heads_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            if isinstance(exc, ArtifactError):
                raise
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
            firsts = first_pieces(text, enc.offsets)
            tags = ["O" if f is None else self.slot_labels[int(tag_ids[f])] for f in firsts]
            spans = tuple(decode_bio(text, tags))
        return Prediction(probs=probs, spans=spans)

    def predict(self, text: str) -> Prediction:
        return self.predict_encoded(text, self.encoder.encode(text))


def load_model(path: Path):
    """Load an artifact of any known format (the manifest says which): NluModel or JointModel."""
    manifest = read_manifest(Path(path))
    if manifest["format"] == JOINT_FORMAT:
        from assistant.nlu.joint import JointModel

        return JointModel.load(Path(path), manifest)
    return NluModel.load(Path(path))
