"""Natural language understanding: intent, slots, calibrated confidence, out of scope.

    understand(text, ctx) -> NluResult   (the pipeline's stage 2)

The model is the active `nlu` ModelVersion (assistant/nlu/registry.py): MiniLM
sentence and word-piece states (assistant/nlu/encoder.py) feeding a calibrated
intent classifier and a BIO slot tagger (assistant/nlu/model.py), trained by
assistant/nlu/training.py on the seed utterances (assistant/nlu/seed.py).

Importing this package does not import torch; the first understand() call does.
"""

from __future__ import annotations

import re

from django.conf import settings

from assistant.intents import INTENTS, OUT_OF_SCOPE
from assistant.nlu.errors import NluUnavailable
from assistant.turns import NluResult, SlotSpan, TurnContext

__all__ = ["NluUnavailable", "understand"]


# What may stand between two pieces of one slot value: "on | friday" (a tagger
# that split one value) or "eggs and milk", "kitchen, bedroom" (a list of values).
_JOINABLE_GAP = re.compile(r"\s*(,|and|&|plus|or)?\s*")


def join_spans(text: str, spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Merge neighbouring spans of the same type, so each slot carries its whole value."""
    joined: list[tuple[str, int, int]] = []
    for kind, start, end in sorted(spans, key=lambda s: s[1]):
        if joined and joined[-1][0] == kind and _JOINABLE_GAP.fullmatch(text[joined[-1][2] : start]):
            joined[-1] = (kind, joined[-1][1], end)
        else:
            joined.append((kind, start, end))
    return joined


def understand(text: str, ctx: TurnContext | None = None) -> NluResult:
    """Intent + slots for one normalised utterance, with the active model.

    Span offsets index `text` as given. The result is out of scope when the model
    predicts that class or its calibrated confidence is below NLU_OOS_THRESHOLD;
    slots are kept only if the chosen intent takes them.
    """
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    from assistant.nlu.registry import active_model  # imports the ORM models: not at app loading

    model = active_model()
    if not text.strip():
        return NluResult(
            text=text, intent=OUT_OF_SCOPE, confidence=0.0, slots={}, out_of_scope=True, model_version=model.version
        )
    prediction = model.predict(text)
    order = prediction.probs.argsort()[::-1]
    alternatives = tuple((model.intents[int(i)], float(prediction.probs[int(i)])) for i in order[:3])
    intent, confidence = alternatives[0]
    out_of_scope = intent == OUT_OF_SCOPE or confidence < settings.NLU_OOS_THRESHOLD
    if out_of_scope:
        intent = OUT_OF_SCOPE
    allowed = set(INTENTS[intent].slots) if intent in INTENTS else set()
    spans = tuple(
        SlotSpan(type=kind, value=text[start:end], start=start, end=end)
        for kind, start, end in join_spans(text, [(k, a, b) for k, a, b in prediction.spans if k in allowed])
    )
    slots: dict[str, str] = {}
    for span in spans:
        slots.setdefault(span.type, span.value)
    return NluResult(
        text=text,
        intent=intent,
        confidence=min(1.0, max(0.0, confidence)),
        slots=slots,
        spans=spans,
        out_of_scope=out_of_scope,
        model_version=model.version,
        alternatives=alternatives,
    )
