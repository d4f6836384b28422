"""Sentence embeddings of stored texts (utterances, replies) for the learners, with a cache.

The learners embed the same texts again and again (a popular request, a templated
reply): each distinct text goes through the shared MiniLM encoder once per process, in
batches, and stays in a bounded cache (a learning worker lives for many cycles).
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

import numpy as np

CACHE_SIZE = 100_000  # texts; 384 float32 each: about 150 MB when full
_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_lock = Lock()


def embed(texts: list[str]) -> dict[str, np.ndarray]:
    """{text: L2-normalised sentence vector} for the distinct non-empty texts given."""
    from assistant.nlu.encoder import shared_encoder  # imports torch lazily

    distinct = sorted({t for t in texts if t})
    with _lock:
        found = {t: _cache[t] for t in distinct if t in _cache}
    missing = [t for t in distinct if t not in found]
    if missing:
        encoded = shared_encoder().encode_batch(missing)
        new = {text: enc.sentence for text, enc in zip(missing, encoded, strict=True)}
        with _lock:
            _cache.update(new)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        found.update(new)
    return found
