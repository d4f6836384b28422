"""Evaluate an NLU model on public SLURP sentences (read from SHARED_DATA_DIR, never copied).

A sanity check for the seed model: accuracy on the SLURP intents we share, and how
often SLURP requests for skills we do not have are called out of scope. Nothing
is tuned on it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from django.conf import settings

from assistant.intents import INTENTS, OUT_OF_SCOPE
from assistant.pipeline.asr import normalise

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
    from assistant.nlu.registry import active_model

    model = active_model()
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
                foreign_oos += predicted == OUT_OF_SCOPE
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
