"""Stage 1, ASR text: choose a hypothesis and normalise it.

Typed text stands in for a recogniser's output. Either way the text is
lower-cased, stripped of punctuation the NLU never saw in training, and spelled
numbers become digits ("twenty five" -> "25"), so that "Set a timer for
Five minutes!" and "set a timer for 5 minutes" reach the NLU identically.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.pipeline.types import AsrResult, Hypothesis

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000}

# Keep letters, digits, spaces and the few symbols that carry meaning in requests.
_DROP = re.compile(r"[^\w\s%°:'.-]")
_AM_PM = re.compile(r"\b([ap])\.m\.?")
_SPACES = re.compile(r"\s+")
_TRAILING_PUNCT = re.compile(r"(?<!\d)[.:'-]+(?=\s|$)|(?<=\s)[.:'-]+")


_TEENS = {w for w, n in _UNITS.items() if n >= 10}

# Which kind of number word may follow which inside one number: "twenty five" and
# "one hundred and five" are one number, "five thirty" (a time) and "two twenty"
# are two, so a tens word never follows a units word.
_MAY_FOLLOW = {
    None: {"unit", "teen", "tens"},
    "unit": {"hundred", "thousand"},
    "teen": {"hundred", "thousand"},
    "tens": {"unit", "thousand"},
    "hundred": {"unit", "teen", "tens", "thousand"},
    "thousand": {"unit", "teen", "tens"},
}


def _kind(word: str) -> str | None:
    if word in _TEENS:
        return "teen"
    if word in _UNITS:
        return "unit"
    if word in _TENS:
        return "tens"
    if word in _SCALES:
        return word
    return None


def _spell_numbers(words: list[str]) -> list[str]:
    """Replace runs of number words with digits ("twenty five" -> "25", "five thirty" -> "5 30").

    A run may not start with a scale word, so "a hundred" stays words.
    """
    out: list[str] = []
    total = current = 0
    last: str | None = None

    def flush() -> None:
        nonlocal total, current, last
        if last is not None:
            out.append(str(total + current))
        total = current = 0
        last = None

    for i, word in enumerate(words):
        kind = _kind(word)
        if word == "and" and last in ("hundred", "thousand") and i + 1 < len(words) and _kind(words[i + 1]) in (
            "unit", "teen", "tens",
        ):  # fmt: skip
            continue  # "one hundred and five"
        if kind is None or (last is None and kind in _SCALES):
            flush()
            out.append(word)
            continue
        if kind not in _MAY_FOLLOW[last]:
            flush()
            if kind in _SCALES:
                out.append(word)
                continue
        if kind in ("unit", "teen"):
            current += _UNITS[word]
        elif kind == "tens":
            current += _TENS[word]
        elif kind == "hundred":
            current = current * 100
        else:  # thousand
            total += current * 1000
            current = 0
        last = kind
    flush()
    return out


def normalise(text: str) -> str:
    """Lower-case, drop punctuation and control characters, digits for spelled numbers."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = text.lower().replace("\u2019", "'")
    text = _AM_PM.sub(r"\1m", text)
    text = _DROP.sub(" ", text)
    text = _TRAILING_PUNCT.sub(" ", text)
    words = _SPACES.sub(" ", text).strip().split(" ")
    return " ".join(_spell_numbers([w for w in words if w]))


def recognise(nbest: list[Hypothesis]) -> AsrResult:
    """Choose the most confident hypothesis (the first on ties or missing scores)."""
    if not nbest:
        raise ValueError("no hypothesis to choose from")
    best = max(range(len(nbest)), key=lambda i: (nbest[i].confidence if nbest[i].confidence is not None else -1.0, -i))
    chosen = nbest[best]
    return AsrResult(text=normalise(chosen.text), confidence=chosen.confidence, chosen=best, alternatives=tuple(nbest))
