"""Train the context re-ranker (assistant/nlu/context.py) for the serving NLU version.

Examples, each words + the context they were said in + what they meant:
  - the context-labelled seed (assistant/nlu/context_seed.py): words whose meaning the situation decides;
  - stored turns with a reviewer's label or a label generated from feedback, in their stored context;
  - seed utterances whose words say all, each in a situation drawn from the scenarios, so that the
    re-ranker learns when the situation does not matter.
The serving NLU reads each example's words; its best CONTEXT_CANDIDATES readings become the rows
(one per candidate, labelled 1 for the right one) of a LightGBM binary model, whose score is the
probability that a reading is right in that situation.

Measured on held-out phrasings and turns, as served (a reading below NLU_OOS_THRESHOLD is out of
scope), against the NLU alone: the gate promotes a re-ranker that reads the held-out context
examples better and reads neither the held-out ordinary requests nor the requests that recently
went well worse (beyond NLU_PROMOTION_TOLERANCE).
"""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from assistant.artifacts import write_artifact
from assistant.intents import OUT_OF_SCOPE
from assistant.nlu import NLU_MODELS
from assistant.nlu.context import (
    CATEGORICAL,
    CONTEXT_CANDIDATES,
    CONTEXT_MODELS,
    FEATURES,
    FORMAT,
    MODEL_FILE,
    MONOTONE,
    active_for,
    candidates,
    choose,
    feature_rows,
    situation_of,
)
from assistant.nlu.context_seed import ContextExample, context_examples, held_out, is_context_phrasing, random_context
from assistant.nlu.seed import seed_examples
from assistant.nlu.typos import noisy_example
from feedback.labels import reviewed, turn_words
from learning.generated_labels import recent_successes, training_labels
from learning.nlu.run import FEEDBACK_GROUPS
from learning.registry import Decision, register_candidate

log = logging.getLogger(__name__)

PARAMS = {
    "objective": "binary",
    "learning_rate": 0.08,
    "num_leaves": 15,
    "min_data_in_leaf": 8,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "cat_smooth": 5,
    "min_data_per_group": 5,
    "seed": 7,
    "deterministic": True,
    "force_col_wise": True,
    "num_threads": 2,
    "verbose": -1,
}
ROUNDS = 200
ORDINARY_EXAMPLES = 800  # seed requests whose words say all, each in a drawn situation


def feedback_examples() -> list[ContextExample]:
    """Stored turns that reviewers or feedback labelled, in the context they were said in (a reviewer's
    label wins over a generated one for the same turn)."""
    examples: dict[int, ContextExample] = {}
    for label in reviewed():
        if label.intent:
            examples[label.turn_id] = ContextExample(
                turn_words(label.turn), label.turn.context or {}, label.intent, f"review:{label.turn_id}"
            )
    for label in training_labels():
        if label.turn_id not in examples:
            examples[label.turn_id] = ContextExample(
                turn_words(label.turn), label.turn.context or {}, label.intent, f"generated:{label.turn_id}"
            )
    return [e for e in examples.values() if e.text]


def ordinary_examples(n: int = ORDINARY_EXAMPLES, seed: int = 5) -> list[ContextExample]:
    """Seed requests whose words say what they mean, each in a situation drawn from the scenarios. Half
    are mistyped: the NLU trained on the clean words and is surer of them than of words it never saw,
    and the re-ranker must learn what the NLU's probability is worth on those too."""
    rng = random.Random(seed)
    pool = [e for e in seed_examples() if not is_context_phrasing(e.text)]
    chosen = [noisy_example(e, rng) if i % 2 else e for i, e in enumerate(rng.sample(pool, min(n, len(pool))))]
    return [ContextExample(e.text, random_context(rng), e.intent, f"ordinary:{e.group}") for e in chosen]


def _part(example: ContextExample) -> str:
    """Which of the three sources an example is from: "context" (the scenarios), "ordinary", "feedback"."""
    if example.group.startswith("ordinary:"):
        return "ordinary"
    return "feedback" if example.group.startswith(FEEDBACK_GROUPS) else "context"


class _Readings:
    """The NLU's intent probabilities for each text (read once per distinct text), and the candidate
    readings the re-ranker chooses among in a situation."""

    def __init__(self, model) -> None:
        self.model = model
        self.intents = list(model.intents)
        self.cache: dict[str, np.ndarray] = {}

    def probs(self, text: str) -> np.ndarray:
        if text not in self.cache:
            self.cache[text] = self.model.predict(text).probs
        return self.cache[text]

    def __call__(self, example: ContextExample) -> list[tuple[str, float]]:
        return candidates(self.probs(example.text), self.intents, situation_of(example.context))


def _served(intent: str, confidence: float) -> str:
    """What understand() answers for a best reading: out of scope below the threshold."""
    return OUT_OF_SCOPE if confidence < settings.NLU_OOS_THRESHOLD else intent


def _matrix(examples: list[ContextExample], readings: _Readings, intents: list[str]):
    """Rows, labels, and each example's (first row, row count) for the examples whose right reading
    is among the candidates (the rest cannot be learned from)."""
    rows, labels, spans = [], [], []
    for example in examples:
        choices = readings(example)
        if example.intent not in {intent for intent, _ in choices}:
            spans.append(None)
            continue
        spans.append((len(labels), len(choices)))
        rows.append(feature_rows(example.text, choices, situation_of(example.context), intents))
        labels.extend(float(intent == example.intent) for intent, _ in choices)
    x = np.vstack(rows) if rows else np.zeros((0, len(FEATURES)))
    return x, np.array(labels), spans


def _accuracy(examples, readings, scores, spans) -> dict[str, Any]:
    """Served intent accuracy of the NLU alone and with the re-ranker on `examples`."""
    if not examples:
        return {"n": 0}
    before = after = 0
    for example, span in zip(examples, spans, strict=True):
        choices = readings(example)
        before += _served(*choices[0]) == example.intent
        if span is None:
            after += _served(*choices[0]) == example.intent
            continue
        start, count = span
        chosen, confidence = choose(choices, scores[start : start + count], situation_of(example.context))[0]
        after += _served(chosen, confidence) == example.intent
    return {
        "n": len(examples),
        "nlu_accuracy": round(before / len(examples), 4),
        "accuracy": round(after / len(examples), 4),
    }


def _fit(x: np.ndarray, y: np.ndarray):
    import lightgbm

    categorical = [FEATURES.index(name) for name in CATEGORICAL]
    data = lightgbm.Dataset(x, y, feature_name=list(FEATURES), categorical_feature=categorical, free_raw_data=False)
    monotone = [MONOTONE.get(name, 0) for name in FEATURES]
    return lightgbm.train({**PARAMS, "monotone_constraints": monotone}, data, num_boost_round=ROUNDS)


def _data_hash(examples: list[ContextExample]) -> str:
    digest = hashlib.sha256()
    for e in examples:
        digest.update(repr((e.text, sorted(e.context.items()), e.intent, e.group)).encode())
    return digest.hexdigest()


def _works(readings: _Readings, booster, intents: list[str]) -> dict[str, Any]:
    """Requests that recently went well (generated success labels), read alone and with the re-ranker
    in the context they were said in: what works must keep working."""
    works = [
        ContextExample(turn_words(label.turn), label.turn.context or {}, label.intent, f"works:{label.turn_id}")
        for label in recent_successes()
    ]
    if not works:
        return {"n": 0}
    x, _, spans = _matrix(works, readings, intents)
    scores = booster.predict(x) if len(x) else np.zeros(0)
    return _accuracy(works, readings, scores, spans)


def gate(candidate: dict, active: dict | None) -> Decision:
    """Promote a re-ranker that reads held-out context examples better than the NLU alone, and neither
    held-out ordinary requests nor recent successes worse."""
    tol = float(settings.NLU_PROMOTION_TOLERANCE)
    metrics = candidate.get("metrics") or {}
    context, ordinary, works = metrics.get("context", {}), metrics.get("ordinary", {}), metrics.get("works", {})
    if not context.get("n") or context["accuracy"] <= context["nlu_accuracy"]:
        return Decision(False, True, "rejected: it reads held-out context examples no better than the NLU alone")
    for name, figures in (("held-out ordinary requests", ordinary), ("requests that recently went well", works)):
        if figures.get("n") and figures["accuracy"] < figures["nlu_accuracy"] - tol:
            return Decision(
                False,
                True,
                f"rejected: it reads {name} {figures['accuracy']:.4f}, the NLU alone {figures['nlu_accuracy']:.4f}",
            )
    return Decision(
        True,
        True,
        f"promoted: held-out context examples {context['accuracy']:.4f} (NLU alone {context['nlu_accuracy']:.4f}), "
        f"ordinary requests {ordinary.get('accuracy', '-')} ({ordinary.get('nlu_accuracy', '-')})",
    )


def train_and_register(*, force: bool = False, progress=None) -> dict[str, Any]:
    """Train a re-ranker for the serving NLU version, register it and let the gate decide.
    Skips when the active re-ranker serves this NLU version and was trained on the same examples."""
    report = progress or (lambda fraction, message: None)
    model = NLU_MODELS.model()
    examples = [*context_examples(), *feedback_examples(), *ordinary_examples()]
    digest = _data_hash(examples)
    active = active_for(model.version)
    if (
        not force
        and active is not None
        and active.manifest.get("data_hash") == digest
        and active.manifest.get("features") == list(FEATURES)
    ):
        return {"skipped": f"{active.version} serves {model.version} and was trained on the same examples"}
    report(0.1, f"reading {len(examples)} examples with {model.version}")
    readings = _Readings(model)
    intents = list(model.intents)
    # A quarter held out by group: the scenarios' phrasings whole, the ordinary requests, the labelled turns.
    train = [e for e in examples if not held_out(e.group)]
    test = [e for e in examples if held_out(e.group)]
    x, y, _ = _matrix(train, readings, intents)
    if not len(y) or y.min() == y.max():
        return {"skipped": "no example whose right reading is among the NLU's candidates"}
    report(0.6, "fitting on the training split")
    booster = _fit(x, y)
    metrics: dict[str, Any] = {}
    for name in ("context", "ordinary", "feedback"):
        part = [e for e in test if _part(e) == name]
        tx, _, spans = _matrix(part, readings, intents)
        metrics[name] = _accuracy(part, readings, booster.predict(tx) if len(tx) else np.zeros(0), spans)
    metrics["works"] = _works(readings, booster, intents)
    reachable = sum(e.intent in {i for i, _ in readings(e)} for e in examples)
    metrics["reachable"] = round(reachable / len(examples), 4)
    report(0.8, "refitting on all examples")
    x, y, _ = _matrix(examples, readings, intents)
    booster = _fit(x, y)

    version = f"context-{datetime.now(UTC):%Y%m%d-%H%M%S}-{digest[:8]}"
    out = Path(settings.MODEL_DIR) / CONTEXT_MODELS.name / version
    manifest = {
        "format": FORMAT,
        "kind": CONTEXT_MODELS.name,
        "version": version,
        "nlu_version": model.version,
        "intents": intents,
        "features": list(FEATURES),
        "data_hash": digest,
        "examples": len(examples),
        "params": {**PARAMS, "rounds": ROUNDS, "candidates": CONTEXT_CANDIDATES},
        "metrics": metrics,
        "created_at": datetime.now(UTC).isoformat(),
    }
    write_artifact(out, manifest, {MODEL_FILE: lambda path: booster.save_model(str(path))})
    row, decision = register_candidate(CONTEXT_MODELS, out, manifest, gate=gate)
    log.info("context re-ranker %s for %s: %s", version, model.version, row.note or row.status)
    report(1.0, "done")
    return {
        "version": version,
        "nlu_version": model.version,
        "status": row.status,
        "note": decision.note if decision else row.note,
        "metrics": metrics,
    }
