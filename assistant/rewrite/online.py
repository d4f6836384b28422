"""Online rewriting: a risky turn with no precomputed rule is rewritten to an utterance known
to work, found at run time in an index of successful utterances and chosen by a trained ranker.

Two layers of candidates:
  global    utterances that went well for at least MINE_MIN_USERS distinct people (no user id
            is stored with them): what works for many, and what serves a new user
  personal  the user's own successful utterances, with how often and how lately they said
            them: the user who always asks about Wilkerson, California gets that one even
            though most people mean another Wilkerson

Retrieval takes the nearest utterances by MiniLM sentence embedding (exact search with
numpy: at our size a matrix product is faster than building an ANN index) and those that
sound the same (jellyfish metaphone keys, for misrecognitions). A LightGBM lambdarank
model scores each candidate on CANDIDATE_FEATURES; the best fires only above the
threshold its trainer chose on held-out queries (learning/online.py), and the rewritten
text then goes through the NLU and is kept only if it wins (as for rules).

Which turns to rewrite: the NLU is often confidently wrong (on misheard words, on phrasings it
never saw), so its confidence alone misses most failures. Once there is enough evidence, a
second LightGBM model, the fire model, estimates for any turn the probability that acting on
the ranker's top candidate is right, from that candidate (FIRE_FEATURES: the ranker's score and
the candidate's features) and the turn's own record (how often these words went well, for
everyone and for this user, the NLU's confidence and margin). It learns from failed turns
rephrased into a success and from turns that went well (where any rewrite to another reading
is a loss), and fires from the threshold that met ONLINE_FIRE_PRECISION on held-out turns of
both kinds. Without a fire model only risky turns are tried: out of scope, below
ONLINE_REWRITE_BELOW confidence, or words known to fail. Either way an utterance that usually
works as it is is never rewritten.

The index, ranker and fire model are one artifact (kind "rewrite_index" in the registry),
rebuilt by a learning step and hot-swapped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from assistant.artifacts import checked_file, read_manifest
from assistant.registry import ModelKind
from assistant.text import sounds
from assistant.turns import NluResult

FORMAT = "rewrite-index-2"  # 2: the candidate features compare the readings (same_intent, slots_kept)
TOP_K = 8  # nearest utterances per layer
SAME_VALUE = 85  # rapidfuzz partial ratio at which two slot values are the same words, one of them misheard
CANDIDATE_FEATURES = (
    "cosine",
    "char_ratio",
    "token_set",
    "phonetic_ratio",
    "same_sound",
    "log_count",
    "log_users",
    "success_rate",
    "personal",
    "log_personal_count",
    "personal_recency",
    "query_confidence",
    "query_out_of_scope",
    "candidate_intent_prob",
    "length_ratio",
    "same_intent",
    "slots_kept",
)
# The fire model's view of a turn and its top candidate: how sure the ranker is, the candidate,
# and the turn's own record (a text's counts and rate are NaN when it was never said before).
FIRE_FEATURES = (
    "ranker_score",
    *CANDIDATE_FEATURES,
    "query_margin",
    "log_text_seen",
    "text_success_rate",
    "log_personal_seen",
    "personal_success_rate",
    "log_candidates",
)


# What the fire model saw of a turn: both layers (the person has a personal layer and it is in use),
# or the global layer alone. Each view has its own threshold.
PERSONAL_VIEW, GLOBAL_VIEW = "personal", "global"


@dataclass
class Entry:
    text: str
    intent: str
    slots: dict[str, Any]
    count: int  # successful turns (global: across people; personal: the user's)
    users: int
    success_rate: float
    last_seen_days: float  # personal: days between its last success and the index's build


@dataclass
class Query:
    """The turn to rewrite, as the ranker sees it."""

    text: str
    vector: np.ndarray
    nlu: NluResult

    @cached_property
    def sound(self) -> str:
        return sounds(self.text)


@dataclass(frozen=True)
class Top:
    """The ranker's top candidate for a query."""

    entry: Entry
    personal: bool
    score: float
    features: list[float]  # its CANDIDATE_FEATURES
    candidates: int  # how many were ranked


@dataclass(frozen=True)
class Pick:
    """The candidate a turn is rewritten to."""

    entry: Entry
    personal: bool
    score: float  # the ranker's
    fire_probability: float | None = None  # the fire model's, when it decided

    @property
    def by_fire_model(self) -> bool:
        return self.fire_probability is not None


@dataclass(frozen=True)
class Record:
    """How often words were said and went well (for everyone, or for one person)."""

    seen: int = 0
    good: int = 0

    def features(self) -> list[float]:
        return [math.log1p(self.seen), self.good / self.seen if self.seen else math.nan]


class RewriteIndex:
    """The global and personal layers and the ranker, as loaded from an artifact."""

    def __init__(
        self,
        version: str,
        manifest: dict,
        arrays: dict[str, np.ndarray],
        meta: dict,
        ranker: Any,
        fire_model: Any = None,
    ) -> None:
        self.version = version
        threshold = manifest.get("threshold")
        self.threshold = float(threshold) if threshold is not None else math.inf
        self.disabled_layers = set(manifest.get("disabled_layers") or [])
        # When its layers were built: a person who had everything forgotten since gets no personal layer.
        built = manifest.get("built_at")
        self.built_at = datetime.fromisoformat(built) if isinstance(built, str) else None
        self.global_vectors = arrays["global_vectors"]
        self.personal_vectors = arrays["personal_vectors"]
        self.global_entries = [Entry(**e) for e in meta["global"]]
        self.personal_entries = [Entry(**e) for e in meta["personal"]]
        self.personal_rows: dict[int, list[int]] = {int(k): v for k, v in meta["personal_rows"].items()}
        self.known_good = set(meta.get("known_good", []))
        self.known_bad = set(meta.get("known_bad", []))
        self.personal_bad = {int(k): set(v) for k, v in (meta.get("personal_bad") or {}).items()}
        self.ranker = ranker
        self.fire_model = fire_model

        def threshold(key: str) -> float:
            return float(manifest[key]) if manifest.get(key) is not None else math.inf

        self.fire_thresholds = {
            PERSONAL_VIEW: threshold("fire_threshold"),
            # An index from before the views had one threshold for both.
            GLOBAL_VIEW: threshold(
                "global_fire_threshold" if "global_fire_threshold" in manifest else "fire_threshold"
            ),
        }
        self.records = {text: Record(*counts) for text, counts in (meta.get("records") or {}).items()}
        self.personal_records = {
            int(user): {text: Record(*counts) for text, counts in texts.items()}
            for user, texts in (meta.get("personal_records") or {}).items()
        }
        self.global_sounds: dict[str, list[int]] = {}
        for i, e in enumerate(self.global_entries):
            self.global_sounds.setdefault(sounds(e.text), []).append(i)
        # Row of each text in its layer's vectors (the same text has the same vector for everyone).
        self._global_row = {e.text: i for i, e in enumerate(self.global_entries)}
        self._personal_row = {e.text: i for i, e in enumerate(self.personal_entries)}

    def holds(self, user_id: int) -> bool:
        """Whether anything in the index was learned from this person (their layer, or their words' record)."""
        return user_id in self.personal_rows or user_id in self.personal_records or user_id in self.personal_bad

    def known_to_fail(self, text: str, user_id: int, *, use_personal: bool) -> bool:
        """The words usually fail as they are (for many people, or every time for this person)."""
        return text in self.known_bad or (use_personal and text in self.personal_bad.get(user_id, ()))

    # -- candidates -----------------------------------------------------------------------
    def candidates(
        self, query: Query, user_id: int, *, use_global: bool, use_personal: bool
    ) -> list[tuple[Entry, bool]]:
        """(entry, is_personal) near the query: by meaning, and by sound."""
        found: dict[tuple[str, bool], Entry] = {}
        if use_global and len(self.global_entries):
            scores = self.global_vectors @ query.vector
            for i in np.argsort(-scores)[:TOP_K].tolist():
                found[(self.global_entries[i].text, False)] = self.global_entries[i]
            for i in self.global_sounds.get(query.sound, []):
                found[(self.global_entries[i].text, False)] = self.global_entries[i]
        rows = self.personal_rows.get(user_id, []) if use_personal else []
        if rows:
            scores = self.personal_vectors[rows] @ query.vector
            for k in np.argsort(-scores)[:TOP_K].tolist():
                entry = self.personal_entries[rows[k]]
                found[(entry.text, True)] = entry
        return [(entry, personal) for (text, personal), entry in found.items() if text != query.text]

    def features(self, query: Query, cands: list[tuple[Entry, bool]], vectors: dict[str, np.ndarray]) -> np.ndarray:
        return np.array([candidate_features(query, e, p, vectors.get(e.text)) for e, p in cands], dtype=np.float32)

    def judges(self, user_id: int, *, use_personal: bool) -> bool:
        """Whether the fire model may fire on this person's turns, confident ones too: it serves, and the view
        their turns are judged in has a threshold (a view whose held-out fires never met the precision has none,
        and then only risky turns are tried)."""
        view = self.view(user_id, use_personal=use_personal)
        return self.fire_model is not None and math.isfinite(self.fire_thresholds[view])

    def in_use(self, layer: str, asked: bool) -> bool:
        """Whether a layer (online-global, online-personal) takes part: asked for, and not switched off."""
        return asked and layer not in self.disabled_layers

    def view(self, user_id: int, *, use_personal: bool) -> str:
        """The fire model's view of this person's turn: whether their personal layer takes part."""
        in_use = self.in_use("online-personal", use_personal)
        return PERSONAL_VIEW if in_use and self.personal_rows.get(user_id) else GLOBAL_VIEW

    def top(self, query: Query, user_id: int, *, use_global: bool, use_personal: bool) -> Top | None:
        """The ranker's top candidate for the query, or None."""
        if self.ranker is None:
            return None
        use_global = self.in_use("online-global", use_global)
        use_personal = self.in_use("online-personal", use_personal)
        cands = self.candidates(query, user_id, use_global=use_global, use_personal=use_personal)
        if not cands:
            return None
        features = self.features(query, cands, self.vectors_of(cands))
        scores = self.ranker.predict(features)
        top = int(np.argmax(scores))
        entry, personal = cands[top]
        return Top(entry, personal, float(scores[top]), features[top].tolist(), len(cands))

    def best(
        self, query: Query, user_id: int, *, use_global: bool, use_personal: bool, risky: bool = True
    ) -> Pick | None:
        """The candidate to fire, or None.

        A risky turn (out of scope, unsure, words known to fail) fires when the ranker's score reaches
        its threshold; any turn fires when the fire model's probability reaches the fire threshold."""
        if query.text in self.known_good:
            return None
        top = self.top(query, user_id, use_global=use_global, use_personal=use_personal)
        if top is None:
            return None
        if risky and top.score >= self.threshold:
            return Pick(top.entry, top.personal, top.score)
        if not self.judges(user_id, use_personal=use_personal):
            return None
        # The person's own record takes part only in the personal view, as in the fire model's training.
        view = self.view(user_id, use_personal=use_personal)
        record = self.records.get(query.text, Record())
        mine = self.personal_records.get(user_id, {}).get(query.text, Record()) if view == PERSONAL_VIEW else Record()
        fire = fire_features(query, top, record, mine)
        probability = float(self.fire_model.predict(np.array([fire], dtype=np.float64))[0])
        if probability < self.fire_thresholds[view]:
            return None
        return Pick(top.entry, top.personal, top.score, fire_probability=probability)

    def vectors_of(self, cands: list[tuple[Entry, bool]]) -> dict[str, np.ndarray]:
        out = {}
        for entry, personal in cands:
            if personal and entry.text in self._personal_row:
                out[entry.text] = self.personal_vectors[self._personal_row[entry.text]]
            elif entry.text in self._global_row:
                out[entry.text] = self.global_vectors[self._global_row[entry.text]]
        return out


def candidate_features(query: Query, entry: Entry, personal: bool, vector: np.ndarray | None) -> list[float]:
    from rapidfuzz import fuzz

    alternatives = dict(query.nlu.alternatives)
    sound = sounds(entry.text)
    return [
        float(vector @ query.vector) if vector is not None else 0.0,
        fuzz.ratio(query.text, entry.text) / 100.0,
        fuzz.token_set_ratio(query.text, entry.text) / 100.0,
        fuzz.ratio(query.sound, sound) / 100.0,
        float(query.sound == sound),
        math.log1p(entry.count if not personal else 0),
        math.log1p(entry.users if not personal else 0),
        entry.success_rate,
        float(personal),
        math.log1p(entry.count if personal else 0),
        math.exp(-entry.last_seen_days / 30.0) if personal else 0.0,
        float(query.nlu.confidence),
        float(query.nlu.out_of_scope),
        float(alternatives.get(entry.intent, 0.0)),
        min(len(entry.text), len(query.text)) / max(1, max(len(entry.text), len(query.text))),
        float(entry.intent == query.nlu.intent),
        slots_kept(query.nlu.slots, entry.slots),
    ]


def slots_kept(said: dict[str, str], candidate: dict[str, str]) -> float:
    """The share of the values the turn was read with that the candidate's reading keeps, near enough to be
    the same words misheard or said in part ("kitchn" and "kitchen", "wilkersen" and "wilkerson california");
    NaN when the turn was read without any. A candidate that swaps what the person named ("the kitchen lights"
    for "the bedroom lights", 5 am for 5 pm) means something else, however close its sentence."""
    from rapidfuzz import fuzz

    values = [str(v) for v in said.values() if v]
    if not values:
        return math.nan
    theirs = [str(w) for w in candidate.values() if w]
    return sum(any(fuzz.partial_ratio(v, w) >= SAME_VALUE for w in theirs) for v in values) / len(values)


def fire_features(query: Query, top: Top, record: Record, personal: Record) -> list[float]:
    """FIRE_FEATURES for a turn, its top candidate and the record of its words."""
    probabilities = sorted((p for _, p in query.nlu.alternatives), reverse=True) or [query.nlu.confidence]
    margin = probabilities[0] - (probabilities[1] if len(probabilities) > 1 else 0.0)
    return [top.score, *top.features, margin, *record.features(), *personal.features(), math.log1p(top.candidates)]


def load_index(path: Path) -> RewriteIndex:
    import lightgbm

    manifest = read_manifest(path)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} artifact")
    with np.load(checked_file(path, manifest, "vectors.npz")) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(checked_file(path, manifest, "entries.json").read_text(encoding="utf-8"))
    has_ranker = "ranker.txt" in (manifest.get("files") or {})
    ranker = lightgbm.Booster(model_file=str(checked_file(path, manifest, "ranker.txt"))) if has_ranker else None
    has_fire = "fire.txt" in (manifest.get("files") or {})
    fire = lightgbm.Booster(model_file=str(checked_file(path, manifest, "fire.txt"))) if has_fire else None
    return RewriteIndex(manifest["version"], manifest, arrays, meta, ranker, fire)


REWRITE_INDEXES = ModelKind("rewrite_index", load_index, label="online rewrite index", hint="run `manage.py learn`")
