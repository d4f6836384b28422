"""How good an NLU model is: intent and slot metrics, out of scope, calibration.

Used by both trainers (validation metrics in the manifest, which the promotion
gate compares) and by evaluate.py (public data, ASR hypotheses).
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np

from assistant.text import normalise


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


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


def binary_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of probabilities `p` of a yes/no outcome `y` (equal-width bins of p)."""
    if len(y) == 0:
        return 0.0
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).sum() for b in np.unique(which))
    return float(ece / len(p))


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
        "oos_examples": int(gold_oos.sum()),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else 0.0


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p, r = (tp / n_pred if n_pred else 0.0), (tp / n_gold if n_gold else 0.0)
    return round(p, 4), round(r, 4), round(2 * p * r / (p + r), 4) if p + r else 0.0


def slot_pairs(spans, text: str) -> Counter:
    """Spans as a multiset of (type, normalised value): comparable across texts (gold
    reference vs ASR hypothesis), which offsets are not."""
    return Counter((kind, normalise(text[start:end])) for kind, start, end in spans)
