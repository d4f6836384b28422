"""Choosing the joint model's early-exit rule on the validation split.

Every layer's outputs on the validation rows are computed once (they do not
depend on where inference stops); the exit rule (assistant.nlu.joint.exit_layers,
the one predict() applies) is then simulated for each pair of thresholds, and the
pair with the largest compute saving within the accuracy and slot-F1 budgets wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.intents import OUT_OF_SCOPE
from assistant.nlu.joint import exit_layers, normalised_entropy
from assistant.nlu.metrics import expected_calibration_error, oos_metrics, slot_f1, softmax
from assistant.nlu.tagging import spans_from_piece_tags
from learning.nlu.joint_data import batches


@dataclass
class LayerOutputs:
    """Every layer's outputs on some rows: what the early-exit table is simulated from."""

    logits: np.ndarray  # (L, N, K) intent logits
    tags: list[list[np.ndarray]]  # [layer][example] slot tag ids of the word pieces
    slot_entropy: np.ndarray  # (L, N) the largest normalised tag entropy over the word pieces


def layer_outputs(net, rows, idx, batch_size: int = 128) -> LayerOutputs:
    import torch

    n_layers = len(net.intent_heads)
    logits = np.zeros((n_layers, len(idx), net.intent_heads[0].out_features), np.float32)
    tags: list[list[np.ndarray]] = [[np.zeros(0, np.int64)] * len(idx) for _ in range(n_layers)]
    slot_entropy = np.zeros((n_layers, len(idx)), np.float32)
    where = {i: k for k, i in enumerate(idx)}
    with torch.inference_mode():
        for chunk, ids, mask, _, _ in batches(rows, idx, batch_size, None):
            intents, slots = net(ids, mask)
            for layer in range(n_layers):
                li = intents[layer].numpy()
                tag_probs = torch.softmax(slots[layer], dim=-1).numpy()
                for r, i in enumerate(chunk):
                    pieces = tag_probs[r, 1 : len(rows[i].ids) - 1]
                    logits[layer, where[i]] = li[r]
                    tags[layer][where[i]] = pieces.argmax(-1)
                    slot_entropy[layer, where[i]] = normalised_entropy(pieces).max() if len(pieces) else 0.0
    return LayerOutputs(logits=logits, tags=tags, slot_entropy=slot_entropy)


def measure(examples, rows, idx, intents, labels, outputs: LayerOutputs, temperatures, hyper) -> dict:
    """Per-layer accuracy, the early-exit table (simulated from every layer's outputs,
    which do not depend on where inference stops) and the full model's metrics."""
    logits, tags = outputs.logits, outputs.tags
    y = np.array([rows[i].intent for i in idx])
    probs = np.stack([softmax(logits[layer] / temperatures[layer]) for layer in range(len(logits))])
    n_layers = len(logits)
    per_layer = [round(float((probs[layer].argmax(1) == y).mean()), 4) for layer in range(n_layers)]
    gold_spans = [{(s.type, s.start, s.end) for s in examples[i].spans} for i in idx]

    def spans_at(exits: np.ndarray) -> list[set]:
        return [
            set(spans_from_piece_tags(examples[i].text, rows[i].offsets, tags[int(exits[k])][k], labels))
            for k, i in enumerate(idx)
        ]

    table = []
    for threshold in hyper["thresholds"]:
        for slot_threshold in hyper["slot_thresholds"]:
            exits = exit_layers(probs, threshold, outputs.slot_entropy, slot_threshold)
            pred = probs[exits, np.arange(len(idx))].argmax(1)
            table.append(
                {
                    "threshold": threshold,
                    "slot_threshold": slot_threshold,
                    "intent_accuracy": round(float((pred == y).mean()), 4),
                    "mean_layers": round(float(exits.mean() + 1), 3),
                    "compute_saving": round(1.0 - float(exits.mean() + 1) / n_layers, 4),
                    "slot_f1": slot_f1(gold_spans, spans_at(exits))["f1"],
                }
            )
    full = probs[-1]
    pred = full.argmax(1)
    metrics = {
        "examples": len(idx),
        "intent_accuracy": round(float((pred == y).mean()), 4),
        "intent_accuracy_by_layer": per_layer,
        "intent_recall_by_intent": {
            name: round(float((pred[y == k] == k).mean()), 4) for k, name in enumerate(intents) if (y == k).any()
        },
        **oos_metrics(y, pred, intents.index(OUT_OF_SCOPE)),
        "ece": round(expected_calibration_error(full, y), 4),
        "mean_confidence": round(float(full.max(axis=1).mean()), 4),
        "ece_uncalibrated": round(expected_calibration_error(softmax(logits[-1]), y), 4),
        "temperature": round(float(temperatures[-1]), 4),
        "slots": slot_f1(gold_spans, spans_at(np.full(len(idx), n_layers - 1))),
        "early_exit": table,
    }
    return metrics


def choose_thresholds(
    table: list[dict], full_accuracy: float, full_slot_f1: float, hyper: dict
) -> tuple[float, float, str]:
    """(threshold, slot_threshold, why): the largest compute saving within the accuracy and slot
    budgets; among equal savings the strictest pair."""
    allowed = [
        r
        for r in table
        if full_accuracy - r["intent_accuracy"] <= hyper["max_accuracy_cost"] + 1e-9
        and full_slot_f1 - r["slot_f1"] <= hyper["max_slot_f1_cost"] + 1e-9
    ]
    if not allowed:
        return 0.0, 1.0, "no thresholds within the accuracy and slot budgets: early exit off"
    best = max(allowed, key=lambda r: (r["compute_saving"], -r["threshold"], -r["slot_threshold"]))
    why = (
        f"saves {best['compute_saving']:.0%} of the layers for "
        f"{(full_accuracy - best['intent_accuracy']) * 100:.2f} points of intent accuracy and "
        f"{(full_slot_f1 - best['slot_f1']) * 100:.2f} of slot F1 on the validation split"
    )
    if best["compute_saving"] < hyper["min_compute_saving"]:
        why += f" (below the {hyper['min_compute_saving']:.0%} saving target)"
    return float(best["threshold"]), float(best["slot_threshold"]), why
