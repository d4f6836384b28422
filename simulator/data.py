"""Goals and ASR pairs, read at run time from files in SLURP's shape, and the
mapping from SLURP's intents and slot types to ours.

A goal is one paraphrase group: a gold intent, a gold slot set and several real
phrasings (with their bracketed annotations, `[date : tomorrow]`). SLURP's label
set is larger than ours (assistant/intents.py): SLURP_INTENTS (assistant/nlu/labels.py, the
table the NLU importers use too) says, for every SLURP intent, which of our intents
fulfils it, or None when we have no skill for it.
Goals with such an intent can never succeed; by default the simulator leaves them
out (`unsupported="exclude"`) and reports how many it left out; with
`unsupported="include"` users bring them too and their turns count as defects
with the failure point `unsupported`, reported apart from the others.

SLURP_SLOTS does the same for slot types. A gold slot is checked only if its type
maps to a slot our intent takes; the rest (weather_descriptor, timeofday…) are
things our skills do not act on, so the judge ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assistant.intents import INTENTS
from assistant.nlu.datasets import DatasetError, jsonl_rows
from assistant.nlu.labels import SLURP_INTENTS, SLURP_SLOTS

DEFAULT_TIER = "goal_precise_heuristic"
_SPAN = re.compile(r"\[\s*([\w]+)\s*:\s*([^\]]*?)\s*\]")


def parse_annotation(annotation: str) -> list[tuple[str, str]]:
    """SLURP's `[type : value]` spans of one annotation, in order."""
    return [(m.group(1), m.group(2)) for m in _SPAN.finditer(annotation or "")]


@dataclass(frozen=True)
class Phrasing:
    sentence: str
    gold_slots: tuple[tuple[str, str], ...]  # SLURP (type, value) spans of this sentence


@dataclass(frozen=True)
class Goal:
    goal_id: int  # position in the goals file: stable for a given file
    slurp_intent: str
    intent: str | None  # ours, None when unsupported
    slots: tuple[tuple[str, str], ...]  # the group's SLURP slot set
    phrasings: tuple[Phrasing, ...]

    @property
    def supported(self) -> bool:
        return self.intent is not None

    def checked_slots(self, phrasing: Phrasing) -> list[tuple[str, str]]:
        """(our slot type, gold value) pairs the judge checks for this phrasing."""
        if self.intent is None:
            return []
        takes = set(INTENTS[self.intent].slots)
        out = []
        for slurp_type, value in phrasing.gold_slots:
            ours = SLURP_SLOTS.get(slurp_type)
            if ours is not None and ours in takes:
                out.append((ours, value))
        return out


class DataError(ValueError):
    pass


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    """(line number, object) per non-blank line; the NLU importers' reader, with the simulator's error."""
    try:
        yield from jsonl_rows(path)
    except DatasetError as exc:
        raise DataError(str(exc)) from None


def load_goals(path: Path, tier: str | None = DEFAULT_TIER) -> list[Goal]:
    """Goals of one tier (all tiers with tier=None) with at least one phrasing, in file order."""
    goals = []
    for number, row in _read_jsonl(Path(path)):
        if tier is not None and row.get("tier") != tier:
            continue
        intent = row.get("intent")
        paraphrases = row.get("paraphrases")
        if not isinstance(intent, str) or not isinstance(paraphrases, list):
            raise DataError(f"{path}:{number}: a goal needs `intent` and a `paraphrases` list")
        phrasings = []
        seen = set()
        for item in paraphrases:
            sentence = item.get("sentence") if isinstance(item, dict) else None
            if not isinstance(sentence, str) or not sentence.strip() or sentence in seen:
                continue
            seen.add(sentence)
            annotation = item.get("annotation") if isinstance(item.get("annotation"), str) else sentence
            phrasings.append(Phrasing(sentence=sentence, gold_slots=tuple(parse_annotation(annotation))))
        if not phrasings:
            continue
        slots = tuple(
            (str(s[0]), str(s[1])) for s in row.get("slots") or [] if isinstance(s, list | tuple) and len(s) == 2
        )
        goals.append(
            Goal(
                goal_id=number,
                slurp_intent=intent,
                intent=SLURP_INTENTS.get(intent),
                slots=slots,
                phrasings=tuple(phrasings),
            )
        )
    if not goals:
        raise DataError(f"{path}: no goals" + (f" of tier {tier!r}" if tier else ""))
    return goals


@dataclass(frozen=True)
class AsrPair:
    reference: str
    hypothesis: str
    headset: bool
    speaker: str = ""  # one recording session: its headset and far-field microphones share it


def _speaker(row: dict, number: int) -> str:
    """SLURP names a recording `audio-<session>[-headset].flac`: both microphones of one session
    heard the same speaker say the sentence once."""
    name = str(row.get("file") or "")
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0].removesuffix("-headset")
    return stem or f"line-{number}"


def load_asr_pairs(path: Path) -> list[AsrPair]:
    pairs = []
    for number, row in _read_jsonl(Path(path)):
        ref, hyp = row.get("reference"), row.get("hypothesis")
        if not isinstance(ref, str) or not isinstance(hyp, str):
            raise DataError(f"{path}:{number}: a pair needs `reference` and `hypothesis` strings")
        pairs.append(
            AsrPair(reference=ref, hypothesis=hyp, headset=bool(row.get("headset")), speaker=_speaker(row, number))
        )
    if not pairs:
        raise DataError(f"{path}: no ASR pairs")
    return pairs
