"""Text as every layer sees it: the one utterance validator and normalisation.

Ground floor: imports no app. Every entry point (chat socket, JSON API, `say`,
the pipeline itself) validates an utterance with check_utterance(), so a text is
refused for the same reason with the same code wherever it comes in; the NLU,
the importers, the simulator and the pipeline normalise with normalise(), so the
model trains on exactly what it is fed at run time.
"""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings

# Whitespace controls a person may type; every other control character is refused.
ALLOWED_CONTROLS = frozenset("\t\n\r")


class TextError(ValueError):
    """Text that cannot be an utterance; `code` is stable, the message is a sentence for people."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def text_problem(text: str) -> TextError | None:
    """Why `text` cannot be stored at all (a control character, a lone surrogate), or None."""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in ALLOWED_CONTROLS:
            name = "NUL, " if ch == "\x00" else ""
            return TextError(
                f"Text must not contain control characters (found {name}U+{ord(ch):04X}).", "control_chars"
            )
        if category == "Cs":
            # Lone surrogates cannot be encoded as UTF-8, so Postgres would refuse them.
            return TextError("Text must be valid Unicode (found a lone surrogate).", "binary")
    return None


def check_utterance(text: object) -> str:
    """The one utterance validator: return `text`, or raise TextError saying what is wrong."""
    if not isinstance(text, str):
        raise TextError("`text` must be a string.", "wrong_type")
    problem = text_problem(text)
    if problem is not None:
        raise problem
    if not text.strip():
        raise TextError("Say something first: the text is empty.", "empty")
    limit = settings.MAX_UTTERANCE_CHARS  # read at call time: tests and operators may change it
    if len(text) > limit:
        raise TextError(f"Text is longer than {limit} characters.", "too_long")
    if not normalise(text):
        # Only punctuation, symbols or invisible characters (zero-width spaces…): nothing to understand.
        raise TextError("There are no words in that: say something first.", "no_words")
    return text


def check_name(text: object) -> str:
    """A short name a client sends (a device, a room): storable and not blank."""
    if not isinstance(text, str):
        raise TextError("A name must be a string.", "wrong_type")
    problem = text_problem(text)
    if problem is not None:
        raise problem
    if not text.strip():
        raise TextError("Text is empty.", "empty")
    return text


# -- normalisation -----------------------------------------------------------------------
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
    """Lower-case, drop punctuation and control characters, digits for spelled numbers.

    "Set a timer for Five minutes!" and "set a timer for 5 minutes" come out the same.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = text.lower().replace("\u2019", "'")
    text = _AM_PM.sub(r"\1m", text)
    text = _DROP.sub(" ", text)
    text = _TRAILING_PUNCT.sub(" ", text)
    words = _SPACES.sub(" ", text).strip().split(" ")
    return " ".join(_spell_numbers([w for w in words if w]))


def sound(word: str) -> str:
    """How a word sounds: its metaphone code, or the word itself where it has none (a number: "7" and "8"
    must not sound alike)."""
    import jellyfish

    return jellyfish.metaphone(word) or word


def sounds(text: str) -> str:
    """How an utterance sounds, word by word: misheard and mistyped words often keep their sound ("turn of
    the kitchn lights" sounds like "turn off the kitchen lights")."""
    return " ".join(sound(word) for word in text.split())
