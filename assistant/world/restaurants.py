"""Restaurants near the home, offline: the catalogue of assistant/data/restaurants.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from assistant.world.catalogue import best, clean

RESTAURANTS_PATH = Path(__file__).resolve().parent.parent / "data" / "restaurants.json"


@dataclass(frozen=True)
class Restaurant:
    name: str
    cuisine: str
    area: str
    rating: float
    price: str


@cache
def _data() -> dict:
    with RESTAURANTS_PATH.open(encoding="utf-8") as f:
        return json.load(f)


@cache
def restaurants() -> tuple[Restaurant, ...]:
    return tuple(Restaurant(**row) for row in _data()["restaurants"])


def cuisines() -> tuple[str, ...]:
    return tuple(_data()["cuisines"])


def find_cuisine(text: str | None) -> str | None:
    """The cuisine a word means ("italian food", "sushi", "a curry"), or None."""
    if not text:
        return None
    q = clean(text)
    for suffix in (" food", " cuisine", " cooking", " restaurant", " restaurants", " place"):
        q = q.removesuffix(suffix)
    words = [(word, cuisine) for cuisine, aliases in _data()["cuisines"].items() for word in (cuisine, *aliases)]
    hit = best(q, words, cutoff=85)
    return hit[0] if hit else None


def recommend(cuisine: str | None = None, limit: int = 3) -> list[Restaurant]:
    """The best-rated restaurants of a cuisine (any cuisine when None)."""
    chosen = [r for r in restaurants() if cuisine is None or r.cuisine == cuisine]
    return sorted(chosen, key=lambda r: (-r.rating, r.name))[:limit]
