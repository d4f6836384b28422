"""The demo media catalogue (assistant/data/catalogue.json) and fuzzy look-ups in it."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

CATALOGUE_PATH = Path(__file__).resolve().parent.parent / "data" / "catalogue.json"

# Other names of genres people ask for.
GENRE_ALIASES = {
    "rap": "hip hop",
    "hiphop": "hip hop",
    "hip-hop": "hip hop",
    "r n b": "soul",
    "rnb": "soul",
    "r&b": "soul",
    "rhythm and blues": "soul",
    "motown": "soul",
    "classic": "classical",
    "classic rock": "rock",
    "soft rock": "rock",
    "hard rock": "rock",
    "indie": "rock",
    "grunge": "rock",
    "heavy metal": "metal",
    "dance": "electronic",
    "edm": "electronic",
    "techno": "electronic",
    "house": "electronic",
    "western": "country",
    "blues": "jazz",
    "swing": "jazz",
    "pop music": "pop",
    "r and b": "soul",
    "romantic": "soul",
    "love songs": "soul",
    "party": "pop",
    "upbeat": "pop",
}


@cache
def catalogue() -> dict[str, Any]:
    with CATALOGUE_PATH.open(encoding="utf-8") as f:
        return json.load(f)


@cache
def items_by_id() -> dict[str, dict[str, Any]]:
    data = catalogue()
    return {item["id"]: item for item in [*data["tracks"], *data["media"]]}


def clean(text: str) -> str:
    """Lower case, no possessive 's, no punctuation, no leading article: for comparing names."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"[^\w\s]", " ", text)
    words = text.split()
    while words and words[0] in ("the", "a", "an", "some", "my"):
        words = words[1:]
    return " ".join(words)


def score(query: str, candidate: str) -> float:
    """Similarity 0-100 of two names, forgiving small misspellings and missing words."""
    q, c = clean(query), clean(candidate)
    if not q or not c:
        return 0.0
    if q == c:
        return 100.0
    best = max(fuzz.ratio(q, c), fuzz.token_sort_ratio(q, c))
    # "senatra" -> "frank sinatra", "beethoven" -> "ludwig van beethoven": a close
    # match to a whole part of the name. Short queries are too ambiguous for that.
    if len(q) >= 5:
        best = max(best, 0.95 * fuzz.partial_ratio(q, c) if q in c or len(q) >= 6 else 0)
    return best


def best(query: str, candidates: list[tuple[str, Any]], cutoff: float = 80) -> tuple[Any, float] | None:
    """The value of the best-scoring (name, value) pair at or above `cutoff`, with its score."""
    scored = [(score(query, name), i) for i, (name, _) in enumerate(candidates)]
    if not scored:
        return None
    top, index = max(scored, key=lambda s: (s[0], -s[1]))
    return (candidates[index][1], top) if top >= cutoff else None


def find_artist(query: str) -> tuple[str, list[dict]] | None:
    artists = sorted({t["artist"] for t in catalogue()["tracks"]})
    hit = best(query, [(a, a) for a in artists])
    if hit is None:
        return None
    return hit[0], [t for t in catalogue()["tracks"] if t["artist"] == hit[0]]


def find_song(query: str, artist: str | None = None) -> dict | None:
    tracks = catalogue()["tracks"]
    if artist:
        tracks = [t for t in tracks if t["artist"] == artist] or tracks
    hit = best(query, [(t["title"], t) for t in tracks], cutoff=82)
    return hit[0] if hit else None


def find_genre(query: str) -> tuple[str, list[dict]] | None:
    genres = sorted({t["genre"] for t in catalogue()["tracks"]})
    q = clean(query).removesuffix(" music").removesuffix(" songs").strip()
    q = GENRE_ALIASES.get(q, q)
    hit = best(q, [(g, g) for g in genres], cutoff=85)
    if hit is None:
        # "old school rap", "classic jazz": a genre word inside a longer description
        for word in sorted([*genres, *GENRE_ALIASES], key=len, reverse=True):
            if re.search(rf"\b{re.escape(word)}\b", q):
                hit = (GENRE_ALIASES.get(word, word), 100.0)
                break
    if hit is None:
        return None
    return hit[0], [t for t in catalogue()["tracks"] if t["genre"] == hit[0]]


def find_playlist(query: str) -> dict | None:
    q = re.sub(r"\b(playlist|play list|list|songs|music)\b", " ", clean(query))
    q = " ".join(q.split())
    if not q:
        return None
    hit = best(q, [(p["name"], p) for p in catalogue()["playlists"]], cutoff=80)
    return hit[0] if hit else None


def find_media(query: str) -> list[dict]:
    """Films and audiobooks whose title matches (both versions of a title when there are two)."""
    media = catalogue()["media"]
    hit = best(query, [(m["title"], m["title"]) for m in media], cutoff=80)
    if hit is None:
        return []
    return [m for m in media if m["title"] == hit[0]]
