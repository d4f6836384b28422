"""Seed data: deterministic, covers every intent, and looks like the pipeline's normalised text."""

from __future__ import annotations

import random

from assistant.intents import INTENTS, SLOTS
from assistant.nlu.labels import SLURP_INTENTS
from assistant.nlu.seed import SEED_PATH, _load_spec, data_hash, render, seed_examples
from assistant.text import normalise


def test_seed_is_deterministic_and_covers_every_intent():
    first = seed_examples()
    second = seed_examples()
    assert [e.as_dict() for e in first] == [e.as_dict() for e in second]
    assert data_hash(first) == data_hash(second)
    # A fresh expansion (no cache) gives the same sentences.
    from assistant.nlu.seed import _generate

    assert [e.text for e in _generate(_load_spec(SEED_PATH))] == [e.text for e in first]
    assert 3000 <= len(first) <= 10000
    counts = {}
    for e in first:
        counts[e.intent] = counts.get(e.intent, 0) + 1
    # Every intent of ours, and public ones no skill handles that the fallback names ("I can't order food yet").
    assert set(INTENTS) <= set(counts) <= set(INTENTS) | set(SLURP_INTENTS)
    assert min(counts[intent] for intent in INTENTS) >= 40
    assert min(counts.values()) >= 4  # the public data brings most examples of the public intents
    assert len({e.text for e in first}) == len(first)


def test_seed_text_is_normalised_and_spans_are_exact():
    examples = seed_examples()
    seen_slots = set()
    for e in examples:
        assert e.text == normalise(e.text), e.text
        for span in e.spans:
            assert span.type in SLOTS
            assert e.text[span.start : span.end] == span.value
            # Spans cover whole words.
            assert span.start == 0 or e.text[span.start - 1] == " "
            assert span.end == len(e.text) or e.text[span.end] == " "
            seen_slots.add(span.type)
    assert seen_slots == set(SLOTS)


def test_templates_for_most_intents_are_varied():
    spec = _load_spec(SEED_PATH)
    assert sum(len(t) >= 15 for t in spec.intents.values()) >= 0.9 * len(INTENTS)


def test_render_expands_alternatives_and_tags_slots():
    values = {"room": ["living room"], "duration": ["10 minutes"]}
    text, spans = render("(turn|switch) off the {room} lights( please|) {_duration}", random.Random(1), values)
    assert text.split()[0] in {"turn", "switch"}
    assert [(s.type, s.value) for s in spans] == [("room", "living room")]
    assert text[spans[0].start : spans[0].end] == "living room"
    assert text.endswith("10 minutes")  # untagged filler
