"""The joint model's training data: examples as word-piece rows, and length-bucketed batches."""

from __future__ import annotations

import random
from dataclasses import dataclass

from assistant.nlu.seed import Example
from assistant.nlu.tagging import piece_labels


@dataclass
class Row:
    ids: list[int]
    offsets: tuple[tuple[int, int], ...]  # of the word pieces, [CLS]/[SEP] excluded
    intent: int
    tags: list[int]  # per position incl. [CLS]/[SEP] (-100 there)


def encode_rows(examples: list[Example], tok, intent_index: dict[str, int], label_index: dict[str, int]) -> list[Row]:
    rows = []
    for e, enc in zip(examples, tok.encode_batch([e.text for e in examples]), strict=True):
        offsets = tuple(tuple(o) for o in enc.offsets[1:-1])
        tags = [-100, *piece_labels(e.text, e.spans, offsets, label_index).tolist(), -100]
        rows.append(Row(ids=list(enc.ids), offsets=offsets, intent=intent_index[e.intent], tags=tags))
    return rows


def batches(rows: list[Row], idx: list[int], batch_size: int, rng: random.Random | None):
    """Length-bucketed batches: sorted by length (ties shuffled), batch order shuffled."""
    import torch

    keyed = sorted(idx, key=lambda i: (len(rows[i].ids), rng.random() if rng else i))
    chunks = [keyed[s : s + batch_size] for s in range(0, len(keyed), batch_size)]
    if rng:
        rng.shuffle(chunks)
    for chunk in chunks:
        width = max(len(rows[i].ids) for i in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        tags = torch.full((len(chunk), width), -100, dtype=torch.long)
        for r, i in enumerate(chunk):
            n = len(rows[i].ids)
            ids[r, :n] = torch.tensor(rows[i].ids)
            mask[r, :n] = 1
            tags[r, :n] = torch.tensor(rows[i].tags)
        yield chunk, ids, mask, torch.tensor([rows[i].intent for i in chunk]), tags
