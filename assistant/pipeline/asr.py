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
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_SCALES)

# Keep letters, digits, spaces and the few symbols that carry meaning in requests.
_DROP = re.compile(r"[^\w\s%°:'.-]")
_AM_PM = re.compile(r"\b([ap])\.m\.?")
_SPACES = re.compile(r"\s+")
_TRAILING_PUNCT = re.compile(r"(?<!\d)[.:'-]+(?=\s|$)|(?<=\s)[.:'-]+")


def _words_to_number(words: list[str]) -> int | None:
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
    return total + current


def _spell_numbers(words: list[str]) -> list[str]:
    """Replace runs of number words with digits; 'a hundred' stays words (ambiguous)."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in _NUMBER_WORDS and words[i] not in _SCALES:
            j = i
            while j < len(words) and (
                words[j] in _NUMBER_WORDS
                or (words[j] == "and" and j + 1 < len(words) and words[j + 1] in _NUMBER_WORDS and j > i)
            ):
                j += 1
            run = [w for w in words[i:j] if w != "and"]
            number = _words_to_number(run)
            if number is not None:
                out.append(str(number))
                i = j
                continue
        out.append(words[i])
        i += 1
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
