"""Train an NLU artifact from labelled examples. No database access here.

1 split     a fixed validation split that holds out whole templates (groups)
2 encode    every utterance once through MiniLM (sentence + word-piece states)
3 fit       intent head and slot head on the training split (torch, seeded)
4 calibrate temperature scaling of the intent logits on the validation split
5 measure   intent accuracy, OOS precision/recall, slot F1, calibration error
6 refit     both heads on all examples with the same settings; the shipped
            model keeps the validation temperature (metrics are the split model's)
7 write     heads.npz + manifest.json into a temp folder, then rename it into place
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from assistant.intents import INTENTS, OUT_OF_SCOPE, SLOTS
from assistant.nlu.encoder import Encoded, encoder_info
from assistant.nlu.model import (
    FORMAT,
    HEADS,
    Head,
    decode_bio,
    first_pieces,
    piece_word_index,
    slot_features,
    softmax,
    words_of,
    write_artifact,
)
from assistant.nlu.seed import Example, data_hash, intent_counts

Progress = Callable[[float, str], None]

# Settings of the heads; recorded in the manifest. Chosen on the seed validation split.
HYPER = {
    "seed": 13,
    "validation_fraction": 0.2,
    "intent_hidden": 256,
    "intent_epochs": 60,
    "intent_lr": 2e-3,
    "intent_weight_decay": 1e-3,
    "intent_dropout": 0.3,
    "slot_neighbours": True,
    "slot_hidden": 64,
    "slot_epochs": 6,
    "slot_lr": 3e-3,
    "slot_weight_decay": 1e-4,
    "slot_dropout": 0.2,
    "batch_size": 128,
}


class TrainingError(ValueError):
    """The examples cannot make a model (too few, unknown labels…)."""


def slot_label_set(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """BIO labels for our SLOTS, then any other slot types the data brings (sorted)."""
    types = list(SLOTS) + sorted(set(extra) - set(SLOTS))
    return ["O"] + [f"{p}-{s}" for s in types for p in ("B", "I")]


# Imported data (SLURP, HWU, CLINC, Rasa: assistant/nlu/datasets.py) brings intents
# and slot types beyond assistant.intents: they join the label set (the pipeline
# answers an intent without a skill as out of scope), but must be plain label names.
_LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# -- 1 split -------------------------------------------------------------------
def _stable(value: str) -> str:
    return hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()  # a split, not security


def split_examples(examples: list[Example], fraction: float) -> tuple[list[int], list[int]]:
    """Indices (train, validation). Per intent, the groups with the smallest hashes are held out."""
    by_intent: dict[str, set[str]] = {}
    for e in examples:
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
        (val if (e.intent, e.group or e.text) in held else train).append(i)
    return train, val


# -- 2 labels for word pieces -----------------------------------------------------
def piece_labels(example: Example, enc: Encoded, label_index: dict[str, int]) -> np.ndarray:
    """BIO label per word piece: a word's first piece gets B-/I-/O, later pieces continue it."""
    words = words_of(example.text)
    word_tags = ["O"] * len(words)
    for span in example.spans:
        inside = [w for w, (s, e) in enumerate(words) if s >= span.start and e <= span.end]
        for k, w in enumerate(inside):
            word_tags[w] = ("B-" if k == 0 else "I-") + span.type
    owners = piece_word_index(example.text, enc.offsets)
    firsts = {f for f in first_pieces(example.text, enc.offsets) if f is not None}
    labels = np.zeros(len(enc.offsets), dtype=np.int64)
    for i, w in enumerate(owners):
        tag = word_tags[w] if w < len(word_tags) else "O"
        if i not in firsts and tag.startswith("B-"):
            tag = "I-" + tag[2:]
        labels[i] = label_index[tag]
    return labels


# -- 3 fit ---------------------------------------------------------------------------
@contextlib.contextmanager
def _training_threads() -> Iterator[None]:
    """Train with settings.TORCH_THREADS (1 by default): on this 2-core machine a second
    thread competing with the web server, worker and tests made encoding 3-50x slower."""
    import torch
    from django.conf import settings

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(getattr(settings, "TORCH_THREADS", 1))))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    hidden: int,
    epochs: int,
    lr: float,
    weight_decay: float,
    dropout: float,
    batch_size: int,
    seed: int,
) -> Head:
    """A softmax classifier (optionally one hidden layer) trained with AdamW, deterministically."""
    import torch

    torch.manual_seed(seed)
    mean = x.mean(axis=0).astype(np.float32)
    std = (x.std(axis=0) + 1e-6).astype(np.float32)
    xs = torch.from_numpy(((x - mean) / std).astype(np.float32))
    ys = torch.from_numpy(y.astype(np.int64))
    dim = xs.shape[1]
    if hidden:
        net = torch.nn.Sequential(
            torch.nn.Dropout(dropout),
            torch.nn.Linear(dim, hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, n_classes),
        )
    else:
        net = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(dim, n_classes))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * max(1, (len(xs) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=gen)
        for start in range(0, len(xs), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(net(xs[idx]), ys[idx])
            loss.backward()
            opt.step()
            sched.step()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    layers = tuple(
        (m.weight.detach().numpy().T.astype(np.float32).copy(), m.bias.detach().numpy().astype(np.float32).copy())
        for m in linears
    )
    return Head(mean=mean, std=std, layers=layers)


# -- 4 calibrate -----------------------------------------------------------------------
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


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    if len(y) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    ece = 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    for lo, hi in itertools.pairwise(edges):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(conf[mask].mean() - correct[mask].mean())
    return float(ece)


# -- 5 measure ---------------------------------------------------------------------------
def slot_f1(gold: list[set[tuple[str, int, int]]], pred: list[set[tuple[str, int, int]]]) -> dict:
    tp = sum(len(g & p) for g, p in zip(gold, pred, strict=True))
    n_pred = sum(len(p) for p in pred)
    n_gold = sum(len(g) for g in gold)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "gold_spans": n_gold}


def oos_metrics(y: np.ndarray, pred: np.ndarray, oos: int) -> dict:
    """Out-of-scope precision and recall; none when no example is out of scope (public
    benchmarks like SLURP have none), so the promotion gate does not compare a zero."""
    gold_oos, pred_oos = y == oos, pred == oos
    if not gold_oos.any():
        return {}
    both = float((gold_oos & pred_oos).sum())
    return {
        "oos_precision": round(both / max(1, int(pred_oos.sum())), 4),
        "oos_recall": round(both / int(gold_oos.sum()), 4),
    }


def _predict_spans(head: Head, labels: list[str], example: Example, enc: Encoded) -> set[tuple[str, int, int]]:
    if not len(enc.offsets):
        return set()
    tag_ids = head.logits(slot_features(enc, HYPER["slot_neighbours"])).argmax(axis=1)
    firsts = first_pieces(example.text, enc.offsets)
    tags = ["O" if f is None else labels[int(tag_ids[f])] for f in firsts]
    return set(decode_bio(example.text, tags))


def _fit_heads(
    examples: list[Example],
    encs: list[Encoded],
    idx: list[int],
    intents: list[str],
    labels: list[str],
    token_y: list[np.ndarray],
) -> tuple[Head, Head]:
    intent_index = {name: i for i, name in enumerate(intents)}
    xs = np.stack([encs[i].sentence for i in idx])
    ys = np.array([intent_index[examples[i].intent] for i in idx])
    intent_head = fit_head(
        xs,
        ys,
        len(intents),
        hidden=HYPER["intent_hidden"],
        epochs=HYPER["intent_epochs"],
        lr=HYPER["intent_lr"],
        weight_decay=HYPER["intent_weight_decay"],
        dropout=HYPER["intent_dropout"],
        batch_size=HYPER["batch_size"],
        seed=HYPER["seed"],
    )
    tx = np.concatenate([slot_features(encs[i], HYPER["slot_neighbours"]) for i in idx if len(encs[i].offsets)])
    ty = np.concatenate([token_y[i] for i in idx if len(encs[i].offsets)])
    slot_head = fit_head(
        tx,
        ty,
        len(labels),
        hidden=HYPER["slot_hidden"],
        epochs=HYPER["slot_epochs"],
        lr=HYPER["slot_lr"],
        weight_decay=HYPER["slot_weight_decay"],
        dropout=HYPER["slot_dropout"],
        batch_size=HYPER["batch_size"] * 4,
        seed=HYPER["seed"] + 1,
    )
    return intent_head, slot_head


def evaluate(
    examples: list[Example],
    encs: list[Encoded],
    idx: list[int],
    intents: list[str],
    labels: list[str],
    intent_head: Head,
    slot_head: Head,
    temperature: float,
) -> dict:
    """Intent accuracy, per-intent recall, OOS precision/recall, ECE and slot F1 on `idx`."""
    if not idx:
        return {}
    intent_index = {name: i for i, name in enumerate(intents)}
    y = np.array([intent_index[examples[i].intent] for i in idx])
    logits = intent_head.logits(np.stack([encs[i].sentence for i in idx]))
    probs = softmax(logits / temperature)
    pred = probs.argmax(axis=1)
    per_intent = {name: round(float((pred[y == k] == k).mean()), 4) for k, name in enumerate(intents) if (y == k).any()}
    gold_spans = [{(s.type, s.start, s.end) for s in examples[i].spans} for i in idx]
    pred_spans = [_predict_spans(slot_head, labels, examples[i], encs[i]) for i in idx]
    return {
        "examples": len(idx),
        "intent_accuracy": round(float((pred == y).mean()), 4),
        "intent_recall_by_intent": per_intent,
        **oos_metrics(y, pred, intent_index[OUT_OF_SCOPE]),
        "ece": round(expected_calibration_error(probs, y), 4),
        "ece_uncalibrated": round(expected_calibration_error(softmax(logits), y), 4),
        "mean_confidence": round(float(probs.max(axis=1).mean()), 4),
        "slots": slot_f1(gold_spans, pred_spans),
    }


# -- the whole run ---------------------------------------------------------------------------
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
    """What both architectures (this module and joint.py) train from: checked examples, the
    label sets, the template-grouped split, and the manifest fields every artifact records
    about them (the promotion gate compares versions through data and validation hashes)."""

    examples: list[Example]
    intents: list[str]
    labels: list[str]
    train_idx: list[int]
    val_idx: list[int]
    started: float

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

    def manifest(self, fmt: str, version: str, metrics: dict, **specific) -> dict:
        """The artifact's manifest: the run's common fields, then the architecture's own."""
        examples = self.examples
        return {
            "format": fmt,
            "kind": "nlu",
            "version": version,
            "data_hash": data_hash(examples),
            # The promotion gate compares metrics only between versions with the same validation examples.
            "validation_hash": data_hash([examples[i] for i in self.val_idx]),
            "examples": len(examples),
            "intent_counts": intent_counts(examples),
            "split": {"train": len(self.train_idx), "validation": len(self.val_idx), "by": "template group"},
            "intents": self.intents,
            "slot_labels": self.labels,
            **specific,
            "metrics": {"validation": metrics},
            "created_at": datetime.now(UTC).isoformat(),
            "train_seconds": round(time.perf_counter() - self.started, 2),
            "files": {},
        }


def train(
    examples: list[Example],
    out_dir: Path,
    *,
    progress: Progress | None = None,
    version: str | None = None,
) -> dict:
    """Train on `examples` and write a complete artifact to `out_dir` (must not exist yet).

    Returns the manifest. `version` defaults to the folder's name.
    """
    from assistant.nlu.encoder import shared_encoder

    out_dir = Path(out_dir)
    run = TrainingRun.start(examples, out_dir, HYPER["validation_fraction"])
    report = progress or (lambda fraction, message: None)
    examples, intents, labels, train_idx, val_idx = run.examples, run.intents, run.labels, run.train_idx, run.val_idx
    label_index = {name: i for i, name in enumerate(labels)}

    report(0.02, f"encoding {len(examples)} examples")
    encoder = shared_encoder()
    with _training_threads():
        encs: list[Encoded] = []
        chunk = 512
        for start in range(0, len(examples), chunk):
            encs.extend(encoder.encode_batch([e.text for e in examples[start : start + chunk]], batch_size=32))
            report(0.02 + 0.48 * min(1.0, (start + chunk) / len(examples)), "encoding")
        token_y = [piece_labels(e, enc, label_index) for e, enc in zip(examples, encs, strict=True)]

        report(0.5, "fitting heads on the training split")
        intent_head, slot_head = _fit_heads(examples, encs, train_idx, intents, labels, token_y)
        report(0.7, "calibrating on the validation split")
        intent_index = {name: i for i, name in enumerate(intents)}
        if val_idx:
            val_logits = intent_head.logits(np.stack([encs[i].sentence for i in val_idx]))
            temperature = fit_temperature(val_logits, np.array([intent_index[examples[i].intent] for i in val_idx]))
        else:
            temperature = 1.0
        metrics = evaluate(examples, encs, val_idx, intents, labels, intent_head, slot_head, temperature)
        metrics["temperature"] = round(temperature, 4)

        report(0.75, "refitting on all examples")
        intent_head, slot_head = _fit_heads(examples, encs, list(range(len(examples))), intents, labels, token_y)

    report(0.95, "writing the artifact")
    arrays = {**intent_head.to_arrays("intent"), **slot_head.to_arrays("slot")}
    manifest = run.manifest(
        FORMAT,
        version or out_dir.name,
        metrics,
        encoder=encoder_info(),
        temperature=temperature,
        hyperparameters=HYPER,
    )
    write_artifact(out_dir, manifest, HEADS, lambda path: np.savez(path, **arrays))
    report(1.0, "done")
    return manifest
