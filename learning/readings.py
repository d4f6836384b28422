"""What a turn meant, as the learners compare it: the intent and its slot values, normalised.

Two turns mean the same when their intents match and so do their slot values, ignoring
case, spacing and a leading article or possessive ("the kitchen" is "kitchen"): the NLU
tags "the kitchen" in one phrasing and "kitchen" in another, and both light the same room.
"""

from __future__ import annotations

import json
from typing import Any

LEADING_WORDS = ("the ", "my ", "a ", "an ", "our ", "this ", "some ")


def _value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = " ".join(value.lower().split())
    for word in LEADING_WORDS:
        if value.startswith(word):
            value = value[len(word) :]
    return value


def reading(intent: str, slots: dict | None) -> str:
    """A key equal for two readings that mean the same."""
    normalised = {str(k): _value(v) for k, v in (slots or {}).items()}
    return f"{intent} {json.dumps(normalised, sort_keys=True)}"
