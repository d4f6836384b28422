"""Evaluate an NLU model on public SLURP sentences (read from SHARED_DATA_DIR, never copied).

A sanity check for the seed model: accuracy on the SLURP intents we share, and how
often SLURP requests for skills we do not have are called out of scope. Nothing
is tuned on it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from django.conf import settings

from assistant.intents import INTENTS, OUT_OF_SCOPE
from assistant.nlu import NLU_MODELS
from assistant.nlu.metrics import prf, ratio, slot_pairs
from assistant.text import normalise

# SLURP intents whose meaning is ours under the same name. Others that are close
# but not the same (play_radio, calendar_set…) are left out of both sets.
SHARED = sorted(
    i
    for i in INTENTS
    if i
    in {
        "iot_hue_lighton",
        "iot_hue_lightoff",
        "iot_hue_lightdim",
        "iot_hue_lightup",
        "iot_hue_lightchange",
        "iot_cleaning",
        "iot_wemo_on",
        "iot_wemo_off",
        "play_music",
        "music_query",
        "audio_volume_up",
        "audio_volume_down",
        "audio_volume_mute",
        "alarm_set",
        "alarm_query",
        "alarm_remove",
        "lists_createoradd",
        "lists_query",
        "lists_remove",
        "weather_query",
        "datetime_query",
        "general_joke",
    }
)
# SLURP scenarios with no skill here at all: these should come out as out_of_scope.
FOREIGN_SCENARIOS = {"email", "takeaway", "transport", "cooking", "news", "social", "recommendation", "qa"}


def slurp_path() -> Path:
    return Path(settings.SHARED_DATA_DIR) / "slurp" / "annotated_devel_test.jsonl"


def evaluate_slurp(split: str = "test", path: Path | None = None, limit: int | None = None) -> dict:
    """Run the active model over SLURP sentences of `split` (the first `limit` relevant ones)."""
    model = NLU_MODELS.model()
    threshold = settings.NLU_OOS_THRESHOLD
    shared_total = shared_right = foreign_total = foreign_oos = 0
    confusions: Counter = Counter()
    with Path(path or slurp_path()).open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("split") != split:
                continue
            gold = row["intent"]
            is_shared = gold in SHARED
            is_foreign = row.get("scenario") in FOREIGN_SCENARIOS
            if not (is_shared or is_foreign):
                continue
            if limit is not None and shared_total + foreign_total >= limit:
                break
            text = normalise(row["sentence"])
            probs = model.predict(text).probs
            best = int(probs.argmax())
            predicted = model.intents[best]
            if probs[best] < threshold:
                predicted = OUT_OF_SCOPE
            if is_shared:
                shared_total += 1
                shared_right += predicted == gold
                if predicted != gold:
                    confusions[(gold, predicted)] += 1
            else:
                foreign_total += 1
                # Declined: out of scope, or an intent no skill handles (the pipeline answers both so).
                foreign_oos += predicted == OUT_OF_SCOPE or predicted not in INTENTS
    return {
        "split": split,
        "model_version": model.version,
        "shared_intents": len(SHARED),
        "shared_examples": shared_total,
        "shared_accuracy": round(shared_right / shared_total, 4) if shared_total else None,
        "foreign_examples": foreign_total,
        "foreign_oos_rate": round(foreign_oos / foreign_total, 4) if foreign_total else None,
        "top_confusions": [[g, p, n] for (g, p), n in confusions.most_common(10)],
    }


# -- evaluate_nlu: any imported file, or ASR hypotheses against their reference's labels ----------
def score(
    model,
    items: list[tuple[str, str, Counter]],
    *,
    threshold: float | None = None,
    clinc: bool = False,
) -> dict:
    """Metrics of `model` on (input text, gold intent, gold slot pairs) items.

    The predicted intent follows the pipeline's policy (out of scope below the
    threshold); `intent_accuracy_argmax` is the plain top class, for comparisons
    with published numbers. Latency is one single-threaded predict() per item.
    """
    import torch

    threshold = settings.NLU_OOS_THRESHOLD if threshold is None else threshold
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        latencies, rows = [], []
        for text, gold, gold_slots in items:
            started = time.perf_counter()
            prediction = model.predict(text)
            latencies.append((time.perf_counter() - started) * 1000.0)
            best = int(prediction.probs.argmax())
            top = model.intents[best]
            predicted = OUT_OF_SCOPE if prediction.probs[best] < threshold else top
            rows.append((gold, predicted, top, gold_slots, slot_pairs(prediction.spans, text)))
    finally:
        torch.set_num_threads(before)

    n = len(rows)
    tp_slots = sum(sum((g & p).values()) for _, _, _, g, p in rows)
    n_pred_slots = sum(sum(p.values()) for *_, p in rows)
    n_gold_slots = sum(sum(g.values()) for _, _, _, g, _ in rows)
    sp, sr, sf = prf(tp_slots, n_pred_slots, n_gold_slots)
    per_intent: dict[str, dict] = {}
    for name in sorted({r[0] for r in rows} | {r[1] for r in rows}):
        gold_n = sum(1 for r in rows if r[0] == name)
        pred_n = sum(1 for r in rows if r[1] == name)
        tp = sum(1 for r in rows if r[0] == name and r[1] == name)
        p, rc, f = prf(tp, pred_n, gold_n)
        per_intent[name] = {"n": gold_n, "accuracy": rc, "precision": p, "recall": rc, "f1": f}
    out = {
        "n": n,
        "model_version": model.version,
        "oos_threshold": threshold,
        "intent_accuracy": ratio(sum(r[0] == r[1] for r in rows), n),
        "intent_accuracy_argmax": ratio(sum(r[0] == r[2] for r in rows), n),
        "slot_precision": sp,
        "slot_recall": sr,
        "slot_f1": sf,
        "exact_match": ratio(sum(r[0] == r[1] and r[3] == r[4] for r in rows), n),
        "latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 2) if latencies else 0.0,
            "p95": round(float(np.percentile(latencies, 95)), 2) if latencies else 0.0,
        },
        "per_intent": per_intent,
    }
    if clinc:
        in_scope = [r for r in rows if r[0] != OUT_OF_SCOPE]
        gold_oos = sum(1 for r in rows if r[0] == OUT_OF_SCOPE)
        pred_oos = sum(1 for r in rows if r[1] == OUT_OF_SCOPE)
        both = sum(1 for r in rows if r[0] == OUT_OF_SCOPE and r[1] == OUT_OF_SCOPE)
        out.update(
            in_scope_accuracy=ratio(sum(r[0] == r[1] for r in in_scope), len(in_scope)),
            oos_precision=ratio(both, pred_oos),
            oos_recall=ratio(both, gold_oos),
        )
    return out


def in_situations(model, ranker, items: list[tuple[str, str, Counter]], *, threshold: float | None = None) -> dict:
    """Intent accuracy (the pipeline's policy) of the NLU alone and with the context re-ranker, each item
    read in a situation drawn from the context scenarios (assistant/nlu/context_seed.py, a fixed seed):
    on requests whose words say what they mean, the situation should change nothing."""
    import random

    from assistant.nlu.context import situation_of
    from assistant.nlu.context_seed import random_context

    threshold = settings.NLU_OOS_THRESHOLD if threshold is None else threshold
    rng = random.Random(3)
    alone = with_context = changed = 0
    for text, gold, _ in items:
        probs = model.predict(text).probs
        situation = situation_of(random_context(rng))
        best = int(probs.argmax())
        nlu_best = (model.intents[best], float(probs[best]))
        chosen, confidence = ranker.rank(text, probs, model.intents, situation)[0]
        before = OUT_OF_SCOPE if nlu_best[1] < threshold else nlu_best[0]
        after = OUT_OF_SCOPE if confidence < threshold else chosen
        alone += before == gold
        with_context += after == gold
        changed += before != after
    n = len(items)
    return {
        "n": n,
        "context_version": ranker.version,
        "intent_accuracy_alone": ratio(alone, n),
        "intent_accuracy": ratio(with_context, n),
        "changed": ratio(changed, n),
    }


def file_items(
    path: Path, fmt: str, split: str | None, limit: int | None, report=None, typos: int = 0
) -> list[tuple[str, str, Counter]]:
    """(text, gold intent, gold slot pairs) of an imported file, normalised and mapped as for training;
    with `typos`, each text with that many mistyped words (assistant/nlu/typos.py, a fixed seed), its
    gold slots the mistyped words."""
    import random

    from assistant.nlu.datasets import load_examples
    from assistant.nlu.typos import noisy_example

    if fmt == "clinc" and split is None:
        split = "test"
    examples = load_examples(path, fmt, split, report)
    if limit is not None:
        examples = examples[:limit]
    if typos:
        rng = random.Random(TYPO_SEED)
        examples = [noisy_example(e, rng, typos) for e in examples]
    return [(e.text, e.intent, Counter((s.type, s.value) for s in e.spans)) for e in examples]


TYPO_SEED = 20261203  # the keyboard-noise set is the same on every run


def asr_pair_items(path: Path, limit: int | None, report=None) -> tuple[list[tuple[str, str, Counter]], dict]:
    """Each pair's normalised `hypothesis` with the gold labels of its reference
    (`gold_intent`, `gold_annotation`), plus the baseline's accuracy (`pred_intent_on_hyp`)."""
    from assistant.nlu.datasets import (
        DatasetError,
        ImportReport,
        Labelled,
        jsonl_rows,
        parse_inline,
        to_example,
    )

    report = report if report is not None else ImportReport()
    items: list[tuple[str, str, Counter]] = []
    baseline_right = 0
    for number, row in jsonl_rows(path):
        if limit is not None and len(items) >= limit:
            break
        hypothesis, gold, annotation = row.get("hypothesis"), row.get("gold_intent"), row.get("gold_annotation")
        if not all(isinstance(v, str) for v in (hypothesis, gold, annotation)):
            raise DatasetError(f"{path}:{number}: an ASR pair needs hypothesis, gold_intent and gold_annotation")
        try:
            text, spans = parse_inline(annotation)
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: {exc}") from exc
        reference = to_example(Labelled(text=text, intent=gold, spans=tuple(spans), line=number), "slurp", report)
        if reference is None:
            continue  # counted in the report
        items.append((normalise(hypothesis), reference.intent, Counter((s.type, s.value) for s in reference.spans)))
        baseline = row.get("pred_intent_on_hyp")
        baseline_right += isinstance(baseline, str) and baseline == gold
    return items, {"baseline_intent_accuracy": ratio(baseline_right, len(items)), "baseline": "pred_intent_on_hyp"}


def early_exit_table(model, items: list[tuple[str, str, Counter]], pairs: list[tuple[float, float]]) -> list[dict]:
    """Accuracy, slot F1, mean layers run and p50/mean latency (single thread) per
    (threshold, slot_threshold) pair, on evaluate.py's (text, gold intent, gold slot pairs) items."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    index = {name: k for k, name in enumerate(model.intents)}
    out = []
    try:
        for threshold, slot_threshold in pairs:
            right, layers, ms, tp, n_pred, n_gold = 0, [], [], 0, 0, 0
            for text, gold, gold_slots in items:
                started = time.perf_counter()
                pred = model.predict(text, threshold=threshold, slot_threshold=slot_threshold)
                ms.append((time.perf_counter() - started) * 1000.0)
                layers.append(pred.layers)
                right += int(pred.probs.argmax()) == index.get(gold, -1)
                found = slot_pairs(pred.spans, text)
                tp += sum((found & gold_slots).values())
                n_pred += sum(found.values())
                n_gold += sum(gold_slots.values())
            out.append(
                {
                    "threshold": threshold,
                    "slot_threshold": slot_threshold,
                    "intent_accuracy": round(right / max(1, len(items)), 4),
                    "slot_f1": round(2 * tp / max(1, n_pred + n_gold), 4),
                    "mean_layers": round(float(np.mean(layers)), 3),
                    "compute_saving": round(1.0 - float(np.mean(layers)) / model.n_layers, 4),
                    "p50_ms": round(float(np.percentile(ms, 50)), 2),
                    "mean_ms": round(float(np.mean(ms)), 2),
                }
            )
    finally:
        torch.set_num_threads(before)
    return out
