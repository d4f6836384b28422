"""Train a heads NLU artifact (assistant/nlu/heads.py runs it) from labelled examples. No database access.

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
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from assistant.artifacts import write_artifact
from assistant.intents import OUT_OF_SCOPE
from assistant.nlu.encoder import Encoded, encoder_info
from assistant.nlu.heads import FORMAT, HEADS, Head, HeadsModel, slot_features
from assistant.nlu.metrics import expected_calibration_error, oos_metrics, slot_f1, softmax
from assistant.nlu.seed import Example
from assistant.nlu.tagging import piece_labels, spans_from_piece_tags
from learning.nlu.run import Progress, TrainingRun, fit_temperature

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


# Continuing the serving intent head on new labels (continue_training): a replay sample of the older
# training examples keeps what they taught; fewer epochs at a lower rate move the head, not rebuild it.
INCREMENTAL = {"replay": 2000, "intent_epochs": 30, "intent_lr": 1e-3}


class CannotContinue(ValueError):
    """The serving model cannot be continued on these examples (other intents or slot labels)."""


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
    init: Head | None = None,
) -> Head:
    """A softmax classifier (optionally one hidden layer) trained with AdamW, deterministically; with
    `init`, continued from that head (its input normalisation and weights)."""
    import torch

    torch.manual_seed(seed)
    if init is not None:
        mean, std = init.mean, init.std
        hidden = init.layers[0][0].shape[1] if len(init.layers) > 1 else 0
    else:
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
    if init is not None:
        with torch.no_grad():
            for linear, (w, b) in zip([m for m in net if isinstance(m, torch.nn.Linear)], init.layers, strict=True):
                linear.weight.copy_(torch.from_numpy(w.T.copy()))
                linear.bias.copy_(torch.from_numpy(b.copy()))
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


def _predict_spans(head: Head, labels: list[str], example: Example, enc: Encoded) -> set[tuple[str, int, int]]:
    if not len(enc.offsets):
        return set()
    tag_ids = head.logits(slot_features(enc, HYPER["slot_neighbours"])).argmax(axis=1)
    return set(spans_from_piece_tags(example.text, enc.offsets, tag_ids, labels))


def _fit_intent_head(
    examples: list[Example],
    encs: list[Encoded] | dict[int, Encoded],
    idx: list[int],
    intents: list[str],
    continued: Head | None = None,
) -> Head:
    """The intent head on the examples `idx`; with `continued` (the serving one), continued from it with
    the INCREMENTAL settings."""
    hyper = {**HYPER, **INCREMENTAL} if continued is not None else HYPER
    intent_index = {name: i for i, name in enumerate(intents)}
    return fit_head(
        np.stack([encs[i].sentence for i in idx]),
        np.array([intent_index[examples[i].intent] for i in idx]),
        len(intents),
        hidden=hyper["intent_hidden"],
        epochs=hyper["intent_epochs"],
        lr=hyper["intent_lr"],
        weight_decay=hyper["intent_weight_decay"],
        dropout=hyper["intent_dropout"],
        batch_size=hyper["batch_size"],
        seed=hyper["seed"],
        init=continued,
    )


def _fit_heads(
    examples: list[Example],
    encs: list[Encoded],
    idx: list[int],
    intents: list[str],
    labels: list[str],
    token_y: list[np.ndarray],
) -> tuple[Head, Head]:
    intent_head = _fit_intent_head(examples, encs, idx, intents)
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


def train(
    examples: list[Example],
    out_dir: Path,
    *,
    progress: Progress | None = None,
    version: str | None = None,
    recipe: str = "",
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
        token_y = [
            piece_labels(e.text, e.spans, enc.offsets, label_index) for e, enc in zip(examples, encs, strict=True)
        ]

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
        fixed = run.fixed_idx
        fixed_metrics = (
            metrics
            if fixed == val_idx
            else evaluate(examples, encs, fixed, intents, labels, intent_head, slot_head, temperature)
        )

        report(0.75, "refitting on all examples")
        intent_head, slot_head = _fit_heads(examples, encs, list(range(len(examples))), intents, labels, token_y)

    report(0.95, "writing the artifact")
    arrays = {**intent_head.to_arrays("intent"), **slot_head.to_arrays("slot")}
    manifest = run.manifest(
        FORMAT,
        version or out_dir.name,
        metrics,
        fixed_metrics,
        recipe=recipe,
        encoder=encoder_info(),
        temperature=temperature,
        hyperparameters=HYPER,
    )
    write_artifact(out_dir, manifest, {HEADS: lambda path: np.savez(path, **arrays)})
    report(1.0, "done")
    return manifest


def continue_training(
    examples: list[Example],
    new: set[int],
    base_dir: Path,
    out_dir: Path,
    *,
    progress: Progress | None = None,
    version: str | None = None,
    recipe: str = "",
) -> dict:
    """Continue the serving heads model's intent head (the artifact in `base_dir`) on the examples `new`
    (indices into `examples`: the labels since it was trained) of the training split plus a replay sample of
    the others, keep its slot tagger, and write a complete artifact to `out_dir`: the learning cycle's
    retrain, in seconds rather than minutes.

    Both models are measured on the whole validation split: the base model has seen its seed and older
    examples (it was refit on everything), the new labels' held-out examples neither has. The manifest
    keeps both figures (`seen_validation`, `active_on_seen_validation`) for the gate, and no validation
    hash: figures on examples a model has seen are compared only within one run. Raises CannotContinue
    when the intents or slot labels differ from the base model's."""
    from assistant.nlu.encoder import shared_encoder

    out_dir = Path(out_dir)
    base = HeadsModel.load(base_dir)
    run = TrainingRun.start(examples, out_dir, HYPER["validation_fraction"])
    if run.intents != base.intents or run.labels != base.slot_labels:
        raise CannotContinue("the intents or slot labels changed since the serving version: a full retrain is due")
    report = progress or (lambda fraction, message: None)
    examples, intents, labels, val_idx = run.examples, run.intents, run.labels, run.val_idx
    fresh = [i for i in run.train_idx if i in new]
    older = [i for i in run.train_idx if i not in new]
    replay = random.Random(HYPER["seed"]).sample(older, min(INCREMENTAL["replay"], len(older)))
    idx = sorted({*fresh, *replay})
    needed = sorted({*idx, *val_idx})

    report(0.05, f"encoding {len(needed)} examples ({len(fresh)} new, {len(replay)} replayed, {len(val_idx)} held out)")
    encoder = shared_encoder()
    with _training_threads():
        encs: dict[int, Encoded] = {}
        for start in range(0, len(needed), 512):
            chunk = needed[start : start + 512]
            encs.update(zip(chunk, encoder.encode_batch([examples[i].text for i in chunk], batch_size=32), strict=True))
            report(0.05 + 0.6 * min(1.0, (start + 512) / len(needed)), "encoding")
        report(0.7, f"continuing {base.version}'s intent head on {len(idx)} examples")
        intent_head = _fit_intent_head(examples, encs, idx, intents, continued=base.intent_head)
        # The slot tagger stays the serving one's: continued on a sample it forgot more of the seed's slots
        # than the new labels taught (slot F1 -1.2 points on the validation split); the full retrain
        # (weekly, or train_nlu) learns the new labels' slots.
        slot_head = base.slot_head
        report(0.85, "measuring both versions on the validation split")
        temperature = base.temperature  # the held-out examples calibrated it; this run holds none out of both
        metrics = evaluate(examples, encs, val_idx, intents, labels, intent_head, slot_head, temperature)
        active = evaluate(examples, encs, val_idx, intents, labels, base.intent_head, base.slot_head, temperature)
    arrays = {**intent_head.to_arrays("intent"), **slot_head.to_arrays("slot")}
    manifest = run.manifest(
        FORMAT,
        version or out_dir.name,
        metrics,
        {},
        recipe=recipe,
        encoder=encoder_info(),
        temperature=temperature,
        hyperparameters={**HYPER, "incremental": INCREMENTAL},
        training={"mode": "incremental", "from": base.version, "new": len(fresh), "replayed": len(replay)},
    )
    manifest["validation_hash"] = manifest["fixed_validation_hash"] = None
    manifest["metrics"] = {"seen_validation": metrics, "active_on_seen_validation": active}
    write_artifact(out_dir, manifest, {HEADS: lambda path: np.savez(path, **arrays)})
    report(1.0, "done")
    return manifest
