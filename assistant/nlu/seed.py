"""Seed training data: the templates in assistant/data/seed_utterances.yaml expanded
into labelled examples (intent + slot spans), deterministically.

Every sentence is built piece by piece from normalised literals and normalised
slot values, so the span offsets are exact, and the whole sentence must equal
its own normalise(): the model trains on exactly what the pipeline feeds it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from assistant.intents import INTENTS, SLOTS
from assistant.nlu.labels import SLURP_INTENTS
from assistant.text import normalise
from assistant.turns import SlotSpan

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SEED_PATH = DATA_DIR / "seed_utterances.yaml"
CATALOGUE_PATH = DATA_DIR / "catalogue.json"

_GROUP = re.compile(r"\(([^()]*)\)")  # innermost alternation group
_PLACEHOLDER = re.compile(r"\{(_?)(\w+)(?::(\w+))?\}")


@dataclass(frozen=True)
class Example:
    """One labelled utterance. `group` ties examples made from one template together,
    so that the validation split holds out whole phrasings, not near-duplicates."""

    text: str
    intent: str
    spans: tuple[SlotSpan, ...] = ()
    group: str = ""

    @property
    def slots(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for span in self.spans:
            out.setdefault(span.type, span.value)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent,
            "spans": [[s.type, s.start, s.end] for s in self.spans],
            "group": self.group,
        }


class SeedError(ValueError):
    """The seed file is malformed (unknown intent, slot or value list)."""


def _catalogue_values() -> dict[str, list[str]]:
    """Artists, songs, genres, playlists and titles from the demo catalogue."""
    with CATALOGUE_PATH.open(encoding="utf-8") as f:
        catalogue = json.load(f)
    tracks = catalogue.get("tracks", [])
    return {
        "artist": sorted({t["artist"] for t in tracks if t.get("artist")}),
        "song": sorted({t["title"] for t in tracks if t.get("title")}),
        "genre": sorted({t["genre"] for t in tracks if t.get("genre")}),
        "playlist": sorted({p["name"] for p in catalogue.get("playlists", []) if p.get("name")}),
        "title": sorted({m["title"] for m in catalogue.get("media", []) if m.get("title")}),
    }


# Names that are not in the catalogue, so that the tagger learns the context of a
# slot rather than a closed list (the skills answer "I can't find ..." for these).
_EXTRA_MEDIA = {
    "artist": ["elton john", "madonna", "the rolling stones", "lady gaga", "bruno mars", "abba", "rihanna"],
    "song": ["imagine", "wonderwall", "billie jean", "purple rain", "dancing queen", "hotel california"],
    "genre": ["blues", "indie", "folk", "techno", "disco", "punk", "lo-fi"],
    "playlist": ["workout", "chill", "dinner party", "road trip", "focus", "sleep", "party"],
    "title": ["toy story", "frozen", "the matrix", "star wars", "the great gatsby", "jurassic park"],
}


@dataclass
class _Spec:
    seed: int
    per_intent: int
    per_public_intent: int  # for the public intents no skill handles (the public data brings more)
    overrides: dict[str, int]
    values: dict[str, list[str]]
    intents: dict[str, list[str]] = field(default_factory=dict)


def _load_spec(path: Path) -> _Spec:
    with path.open(encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    settings = raw.get("settings", {})
    values = {k: [normalise(str(v)) for v in vs] for k, vs in raw.get("values", {}).items()}
    for slot, names in _catalogue_values().items():
        values[slot] = sorted({normalise(n) for n in names + _EXTRA_MEDIA[slot]} - {""})
    intents = {k: [str(t) for t in v] for k, v in raw.get("intents", {}).items()}
    # Ours, or a public intent no skill handles (the NLU names it when it declines: "I can't order food yet").
    unknown = set(intents) - set(INTENTS) - set(SLURP_INTENTS)
    if unknown:
        raise SeedError(f"unknown intents in {path.name}: {sorted(unknown)}")
    for intent, templates in intents.items():
        for template in templates:
            for _, name, source in _PLACEHOLDER.findall(template):
                if (source or name) not in values:
                    raise SeedError(f"{intent}: no value list {source or name!r} in {template!r}")
    return _Spec(
        seed=int(settings.get("seed", 0)),
        per_intent=int(settings.get("per_intent", 100)),
        per_public_intent=int(settings.get("per_public_intent", settings.get("per_intent", 100))),
        overrides={k: int(v) for k, v in settings.get("per_intent_overrides", {}).items()},
        values=values,
        intents=intents,
    )


def _expand_groups(template: str, rng: random.Random) -> str:
    """Resolve (a|b|) alternations, innermost first."""
    while True:
        match = _GROUP.search(template)
        if match is None:
            return template
        choice = rng.choice(match.group(1).split("|"))
        template = template[: match.start()] + choice + template[match.end() :]


def render(template: str, rng: random.Random, values: dict[str, list[str]]) -> tuple[str, tuple[SlotSpan, ...]]:
    """One sentence from a template, with exact character spans for its slots."""
    expanded = _expand_groups(template, rng)
    text = ""
    spans: list[SlotSpan] = []
    used: set[str] = set()

    def append(piece: str) -> tuple[int, int] | None:
        nonlocal text
        piece = piece.strip()
        if not piece:
            return None
        if text:
            text += " "
        start = len(text)
        text += piece
        return start, len(text)

    pos = 0
    for m in _PLACEHOLDER.finditer(expanded):
        append(normalise(expanded[pos : m.start()]))
        untagged, name, source = m.groups()
        choices = [v for v in values[source or name] if v not in used] or values[source or name]
        value = rng.choice(choices)
        used.add(value)  # "add milk and milk" would teach nothing
        where = append(value)
        if where and not untagged:
            if name not in SLOTS:
                raise SeedError(f"unknown slot {name!r} in {template!r}")
            spans.append(SlotSpan(type=name, value=value, start=where[0], end=where[1]))
        pos = m.end()
    append(normalise(expanded[pos:]))
    return text, tuple(spans)


def _generate(spec: _Spec) -> list[Example]:
    examples: list[Example] = []
    for intent in sorted(spec.intents):
        templates = spec.intents[intent]
        target = spec.overrides.get(intent, spec.per_intent if intent in INTENTS else spec.per_public_intent)
        # One generator per intent: editing one intent's templates leaves the others' sentences alone.
        rng = random.Random(f"{spec.seed}:{intent}")
        seen: set[str] = set()
        made: list[Example] = []
        exhausted: set[int] = set()
        attempts = [0] * len(templates)
        # Round-robin over the templates so every phrasing is represented evenly.
        while len(made) < target and len(exhausted) < len(templates):
            for index, template in enumerate(templates):
                if index in exhausted or len(made) >= target:
                    continue
                text, spans = render(template, rng, spec.values)
                attempts[index] += 1
                if attempts[index] > 60:
                    exhausted.add(index)
                if not text or text in seen or normalise(text) != text:
                    continue
                seen.add(text)
                attempts[index] = 0
                made.append(Example(text=text, intent=intent, spans=spans, group=f"{intent}:{index}"))
        examples.extend(made)
    return examples


@cache
def _seed_examples_cached(path: str, mtime: float) -> tuple[Example, ...]:
    return tuple(_generate(_load_spec(Path(path))))


def seed_examples(path: Path | None = None) -> list[Example]:
    """The seed training set: a few thousand examples, the same on every call."""
    path = Path(path or SEED_PATH)
    return list(_seed_examples_cached(str(path), path.stat().st_mtime))


def data_hash(examples: list[Example]) -> str:
    """A stable fingerprint of a training set (order-independent)."""
    digest = hashlib.sha256()
    for line in sorted(json.dumps(e.as_dict(), sort_keys=True) for e in examples):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def intent_counts(examples: list[Example]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.intent] = counts.get(e.intent, 0) + 1
    return dict(sorted(counts.items()))
