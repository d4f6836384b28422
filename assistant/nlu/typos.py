"""Keyboard noise: the typos people make when they type a request, for training and for measuring.

One edit in a word is one of the four a typist makes (Damerau's): a neighbouring key instead of the
right one ("kitchn" has a deletion, "lughts" a substitution of a QWERTY neighbour), a letter left out,
two letters swapped, or a neighbouring key struck as well. Only letters of words of three or more
letters are edited: short words and numbers are rarely mistyped and a changed number is another
request, not a typo.

`noisy_example` keeps slot spans on their (edited) words, so a noisy copy of a labelled example is
labelled too. The trainer (learning/nlu/service.py, recipe "best") adds noisy copies of part of its
examples; `evaluate_nlu --typos` scores a model on a noisy copy of public data. Both draw from one
seeded generator: the same text and seed give the same typos.
"""

from __future__ import annotations

import random
from dataclasses import replace

from assistant.nlu.seed import Example
from assistant.turns import SlotSpan

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Row stagger of a QWERTY keyboard: each row starts a little to the right of the one above.
_OFFSETS = (0.0, 0.25, 0.75)


def _neighbours() -> dict[str, str]:
    where = {ch: (r, c + _OFFSETS[r]) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}
    return {
        ch: "".join(o for o, (r2, x2) in where.items() if o != ch and abs(r2 - r) <= 1 and abs(x2 - x) <= 1.0)
        for ch, (r, x) in where.items()
    }


NEIGHBOURS: dict[str, str] = _neighbours()
EDITS = ("substitute", "delete", "transpose", "insert")
# How often each edit is made: substitutions of a neighbouring key are the most common typing
# error, then omissions, transpositions and doubled strikes (the proportions of typing studies).
EDIT_WEIGHTS = (0.45, 0.25, 0.15, 0.15)


def mistype(word: str, rng: random.Random) -> str:
    """`word` with one typing error; a word with no letter to edit comes back unchanged."""
    letters = [i for i, ch in enumerate(word) if ch in NEIGHBOURS]
    if len(word) < 3 or not letters:
        return word
    edit = rng.choices(EDITS, EDIT_WEIGHTS)[0]
    i = rng.choice(letters)
    if edit == "substitute":
        return word[:i] + rng.choice(NEIGHBOURS[word[i]]) + word[i + 1 :]
    if edit == "delete":
        return word[:i] + word[i + 1 :]
    if edit == "transpose":
        j = i + 1 if i + 1 < len(word) else i - 1
        a, b = sorted((i, j))
        if word[a] == word[b]:
            return word[:i] + rng.choice(NEIGHBOURS[word[i]]) + word[i + 1 :]
        return word[:a] + word[b] + word[a] + word[b + 1 :]
    return word[: i + 1] + rng.choice(NEIGHBOURS[word[i]]) + word[i + 1 :]


def _editable(word: str) -> bool:
    return len(word) >= 3 and word.isalpha()


def noisy_example(example: Example, rng: random.Random, typos: int = 1) -> Example:
    """A copy of `example` with `typos` words mistyped (fewer when it has fewer editable words), its
    slot spans moved onto the edited words. The text's words are separated by single spaces, as
    assistant.text.normalise leaves them."""
    words = example.text.split(" ")
    starts, at = [], 0
    for word in words:
        starts.append(at)
        at += len(word) + 1
    candidates = [i for i, word in enumerate(words) if _editable(word)]
    for i in rng.sample(candidates, min(typos, len(candidates))):
        words[i] = mistype(words[i], rng)
    new_starts, at = [], 0
    for word in words:
        new_starts.append(at)
        at += len(word) + 1
    text = " ".join(words)

    def moved(offset: int, end: bool) -> int:
        # Offsets sit on word boundaries (the importers and the seed tag whole words).
        if end:
            k = max(i for i, s in enumerate(starts) if s < offset)
            return new_starts[k] + len(words[k])
        return new_starts[starts.index(offset)]

    spans = []
    for span in example.spans:
        if span.start not in starts:
            return example  # a span inside a word: leave the example as it is
        start, end = moved(span.start, False), moved(span.end, True)
        spans.append(SlotSpan(span.type, text[start:end], start, end))
    return replace(example, text=text, spans=tuple(spans))


def noisy_text(text: str, seed: int | str, typos: int = 1) -> str:
    """`text` with `typos` mistyped words, the same for the same text and seed."""
    return noisy_example(Example(text=text, intent=""), random.Random(f"{seed}:{text}"), typos).text
