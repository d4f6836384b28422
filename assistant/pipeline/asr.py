"""Stage 1, ASR text: the recogniser's hypotheses, normalised, and the reading chosen among them.

Typed text stands in for a recogniser's output. Either way the text goes through
assistant.text.normalise, the normalisation the NLU was trained on.

With several hypotheses the interpretation is chosen jointly over hypotheses and intents
(choose_reading), not by taking the most confident hypothesis first: a recogniser's runner-up
is often the words that make sense ("turn of the kitchen lights" 0.52, "turn off the kitchen
lights" 0.48).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from assistant.intents import OUT_OF_SCOPE
from assistant.text import normalise
from assistant.turns import AsrResult, Hypothesis, NluResult


def by_confidence(nbest: list[Hypothesis]) -> list[int]:
    """Indices of the hypotheses, most confident first (the earlier on ties; without a score, last)."""
    return sorted(
        range(len(nbest)), key=lambda i: (-(nbest[i].confidence if nbest[i].confidence is not None else -1.0), i)
    )


def recognise(nbest: list[Hypothesis]) -> AsrResult:
    """Choose the most confident hypothesis (the first on ties or missing scores)."""
    if not nbest:
        raise ValueError("no hypothesis to choose from")
    best = by_confidence(nbest)[0]
    chosen = nbest[best]
    return AsrResult(text=normalise(chosen.text), confidence=chosen.confidence, chosen=best, alternatives=tuple(nbest))


@dataclass(frozen=True)
class Reading:
    """One hypothesis as the NLU read it, with its share of the joint choice (the trace shows them)."""

    index: int  # into the n-best list
    text: str
    prior: float  # P(hypothesis): its confidence, normalised over the hypotheses read
    nlu: NluResult

    def as_dict(self, chosen_intent: str) -> dict:
        return {
            "index": self.index,
            "text": self.text,
            "prior": round(self.prior, 4),
            "intent": self.nlu.intent,
            "confidence": round(self.nlu.confidence, 4),
            "joint": round(self.prior * intent_probability(self.nlu, chosen_intent), 4),
        }


def intent_probability(nlu: NluResult, intent: str) -> float:
    """P(intent | words) from the NLU's alternatives (its top intents, before the out-of-scope policy)."""
    for name, probability in nlu.alternatives:
        if name == intent:
            return float(probability)
    return float(nlu.confidence) if nlu.intent == intent else 0.0


def priors(nbest: list[Hypothesis]) -> list[float]:
    """P(hypothesis) from the recogniser's confidences, normalised; a hypothesis without one gets the
    mean of the others' (all equal when none has one)."""
    known = [max(0.0, float(h.confidence)) for h in nbest if h.confidence is not None]
    fill = sum(known) / len(known) if known else 1.0
    raw = [max(0.0, float(h.confidence)) if h.confidence is not None else fill for h in nbest]
    total = sum(raw)
    return [r / total for r in raw] if total > 0 else [1.0 / len(nbest)] * len(nbest)


def choose_reading(
    nbest: list[Hypothesis], understand: Callable[[str], NluResult]
) -> tuple[AsrResult, NluResult, list[dict]]:
    """The reading of an n-best list: (the chosen hypothesis, its NLU result, every reading for the trace).

    Over the ASR_NBEST_READ most confident hypotheses, P(intent) = sum_h P(h) P(intent | h); the intent
    with the largest mass wins, and the hypothesis that gives it the most, P(h) P(intent | h), supplies the
    words and slots. Out of scope takes part as an intent only when nothing else has mass: a hypothesis the
    NLU cannot place does not outvote one it can.
    """
    if not nbest:
        raise ValueError("no hypothesis to choose from")
    order = by_confidence(nbest)[: max(1, settings.ASR_NBEST_READ)]
    weights = priors([nbest[i] for i in order])
    by_text: dict[str, Reading] = {}  # in the order first read
    for i, prior in zip(order, weights, strict=True):
        text = normalise(nbest[i].text)
        if not text:
            continue
        if text in by_text:  # the same words twice: one reading, both priors
            first = by_text[text]
            by_text[text] = Reading(first.index, text, first.prior + prior, first.nlu)
        else:
            by_text[text] = Reading(i, text, prior, understand(text))
    readings = list(by_text.values())
    if not readings:
        raise ValueError("nothing left after normalisation")
    mass: dict[str, float] = {}
    for r in readings:
        for name, probability in r.nlu.alternatives or ((r.nlu.intent, r.nlu.confidence),):
            if name != OUT_OF_SCOPE:
                mass[name] = mass.get(name, 0.0) + r.prior * float(probability)
    if mass:
        intent = max(mass, key=lambda name: mass[name])
        best = max(readings, key=lambda r: (r.prior * intent_probability(r.nlu, intent), r.prior))
    else:
        intent = OUT_OF_SCOPE
        best = max(readings, key=lambda r: r.prior)
    chosen = nbest[best.index]
    asr = AsrResult(text=best.text, confidence=chosen.confidence, chosen=best.index, alternatives=tuple(nbest))
    return asr, best.nlu, [r.as_dict(intent) for r in readings]
