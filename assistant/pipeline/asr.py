"""Stage 1, ASR text: choose a hypothesis and normalise it.

Typed text stands in for a recogniser's output. Either way the chosen text goes
through assistant.text.normalise, the normalisation the NLU was trained on.
"""

from __future__ import annotations

from assistant.text import normalise
from assistant.turns import AsrResult, Hypothesis


def recognise(nbest: list[Hypothesis]) -> AsrResult:
    """Choose the most confident hypothesis (the first on ties or missing scores)."""
    if not nbest:
        raise ValueError("no hypothesis to choose from")
    best = max(range(len(nbest)), key=lambda i: (nbest[i].confidence if nbest[i].confidence is not None else -1.0, -i))
    chosen = nbest[best]
    return AsrResult(text=normalise(chosen.text), confidence=chosen.confidence, chosen=best, alternatives=tuple(nbest))
