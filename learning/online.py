"""Builds the online rewrite index and trains its ranker (served by assistant/rewrite/online.py).

Entries come from the turns that went well (P(defect) < GOOD, from learning/defects.py):

  global    utterances that went well for at least MINE_MIN_USERS distinct people; no user id
            is kept, only counts, the success rate and the NLU's usual reading
  personal  each user's own utterances that went well for them, with counts and how lately
  known_good utterances that usually work as they are: never rewritten
  known_bad  utterances that usually fail as they are (for at least MINE_MIN_USERS people), and each
             person's utterances that failed every time: risky even when the NLU is confident

The ranker (LightGBM lambdarank) learns from the product's own rephrases: for a turn that
failed and was followed by a rephrase that went well, the candidates the index retrieves
for the failed words are labelled relevant when they mean what the rephrase meant (same
intent and slots). The firing threshold is the lowest ranker score at which the top
candidate was right at least ONLINE_REWRITE_PRECISION of the time on held-out queries (a
hash of the turn id picks them); with too few, the index is written with no threshold and
never fires.

The fire model (LightGBM, binary) decides which turns to rewrite, confident ones included. Its
examples are the ranker's top candidate for those failed queries (right when it means what the
rephrase meant) and for the newest QUIET_TURNS turns that went well as said (wrong when it means
something else: acting on it would have been a loss; weighted up to all such turns, so that
their share is the real one). The words' record (how often said, how often well, for everyone
and for the person) leaves the example's own turn out. Each turn is an example twice, with
both layers and with the global layer alone (the view of the global arm and of a person with no
personal layer yet), when the person has a personal layer. Each view fires from its own threshold:
the lowest probability whose held-out fires of that view (at least ONLINE_FIRE_MIN_FIRES) were
right ONLINE_FIRE_PRECISION of the time. The global layer alone knows less of a person, so its
probabilities are lower; one threshold for both, set where the personal view's fires are right,
left the global view all but silent.

A layer (online-global, online-personal) whose outcomes' win rate has a 5% bound below
REWRITE_RETIRE_BELOW (learning/mining.layer_outcomes) is switched off in the next index.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max

from assistant.artifacts import version_name, write_artifact
from assistant.rewrite.online import (
    FORMAT,
    GLOBAL_VIEW,
    PERSONAL_VIEW,
    REWRITE_INDEXES,
    Entry,
    Query,
    Record,
    RewriteIndex,
    candidate_features,
    fire_features,
)
from assistant.turns import NluResult
from feedback.models import Rephrase, Turn
from learning.defects import defect_or_guess
from learning.embeddings import embed
from learning.readings import reading
from learning.registry import Decision, register_candidate
from teaching.privacy import erasures

GOOD, BAD = 0.3, 0.5  # P(defect) below GOOD went well; at or above BAD failed
KNOWN_GOOD_RATE, KNOWN_GOOD_MIN = 0.7, 3
KNOWN_BAD_RATE, KNOWN_BAD_MIN = 0.3, 3
HOLDOUT_SHARE = 0.3
MIN_QUERIES = 30  # labelled queries needed to train a ranker
QUIET_TURNS = 4000  # the newest turns that went well as said, where a rewrite to another reading is a loss
MIN_QUIET = 50  # of them, to train a fire model


@dataclass
class IndexEntries:
    global_entries: list[Entry]
    by_user: dict[int, list[Entry]]
    known_good: set[str]  # usually work as they are: never rewritten
    known_bad: set[str]  # usually fail, for several people: worth a rewrite however confident the NLU is
    personal_bad: dict[int, list[str]]  # what failed every time one person said it
    records: dict[str, Record]  # how often each text said by several people was said and went well
    personal_records: dict[int, dict[str, Record]]  # the same, per person (what they have not had forgotten)


def build_entries() -> IndexEntries:
    """The global layer, each user's personal layer, and what is known to work or to fail as said."""
    now = datetime.now(UTC)
    seen: Counter = Counter()
    good: Counter = Counter()
    users: dict[str, set[int]] = defaultdict(set)
    sayers: dict[str, set[int]] = defaultdict(set)
    personal_seen: Counter = Counter()
    readings: dict[str, Counter] = defaultdict(Counter)
    personal: dict[tuple[int, str], list] = {}
    erased = erasures()
    rows = Turn.objects.values_list(
        "user_id", "asr_text", "intent", "slots", "defect_probability", "status", "created_at", "rewrite__to",
        "rewrite__kept",
    )  # fmt: skip
    for user, text, intent, slots, p, status, at, rewritten_to, kept in rows.iterator(chunk_size=20_000):
        text = ((rewritten_to if kept else None) or text or "").strip()
        if not text:
            continue
        seen[text] += 1
        sayers[text].add(user)
        # What a person said before they had everything learned about them forgotten counts for the
        # global layer (several people, nobody named) but not for their own.
        forgotten = user in erased and at < erased[user]
        if not forgotten:
            personal_seen[(user, text)] += 1
        if defect_or_guess(p, status) >= GOOD:
            continue
        good[text] += 1
        users[text].add(user)
        if intent:
            readings[text][reading(intent, slots)] += 1
        if forgotten:
            continue
        entry = personal.setdefault((user, text), [0, at])
        entry[0] += 1
        entry[1] = max(entry[1], at)

    def usual_reading(text: str) -> tuple[str, dict]:
        meaning = readings[text].most_common(1)[0][0] if readings[text] else " {}"
        intent, _, slots = meaning.partition(" ")
        return intent, json.loads(slots)

    global_entries = []
    for text, count in sorted(good.items()):
        if len(users[text]) >= settings.MINE_MIN_USERS:
            intent, slots = usual_reading(text)
            global_entries.append(Entry(text, intent, slots, count, len(users[text]), count / seen[text], 0.0))
    by_user: dict[int, list[Entry]] = defaultdict(list)
    for (user, text), (count, last) in sorted(personal.items()):
        intent, slots = usual_reading(text)
        days = max(0.0, (now - last).total_seconds() / 86_400)
        by_user[user].append(Entry(text, intent, slots, count, 1, count / seen[text], round(days, 3)))
    known_good = {
        t for t, n in seen.items() if n >= KNOWN_GOOD_MIN and good[t] / n >= KNOWN_GOOD_RATE and len(users[t]) > 1
    }
    known_bad = {
        t
        for t, n in seen.items()
        if n >= KNOWN_BAD_MIN and good[t] / n <= KNOWN_BAD_RATE and len(sayers[t]) >= settings.MINE_MIN_USERS
    }
    personal_bad: dict[int, list[str]] = defaultdict(list)
    personal_records: dict[int, dict[str, Record]] = defaultdict(dict)
    for (user, text), n in sorted(personal_seen.items()):
        if n >= 2 and (user, text) not in personal:
            personal_bad[user].append(text)
        personal_records[user][text] = Record(n, personal.get((user, text), [0])[0])
    # A text's record for everyone is kept only when several people said it: the artifact holds no
    # one person's words outside their own layer.
    records = {text: Record(n, good[text]) for text, n in seen.items() if len(sayers[text]) >= settings.MINE_MIN_USERS}
    return IndexEntries(
        global_entries, dict(by_user), known_good, known_bad, dict(personal_bad), records, dict(personal_records)
    )


def _held_out(turn_id: int) -> bool:
    return int.from_bytes(hashlib.sha256(f"online-holdout|{turn_id}".encode()).digest()[:4], "big") / 2**32 < (
        HOLDOUT_SHARE
    )


def _nlu_of(turn: dict) -> NluResult:
    out = next((r.get("output") for r in turn["trace"] or [] if r.get("stage") == "nlu"), None) or {}
    return NluResult(
        text=turn["asr_text"],
        intent=out.get("intent") or turn["intent"] or "",
        confidence=float(out.get("confidence") or turn["nlu_confidence"] or 0.0),
        slots=dict(out.get("slots") or {}),
        out_of_scope=bool(out.get("out_of_scope")),
        alternatives=tuple((str(i), float(p)) for i, p in out.get("alternatives") or []),
    )


TURN_FIELDS = (
    "id",
    "user_id",
    "asr_text",
    "intent",
    "slots",
    "nlu_confidence",
    "trace",
    "defect_probability",
    "status",
)


def training_queries() -> list[dict]:
    """Failed turns followed by a rephrase that went well: the words, and what they meant."""
    pairs = Rephrase.objects.filter(first__rewrite__isnull=True).values_list("first_id", "second_id")
    pairs = list(pairs.iterator(chunk_size=20_000))
    turns = {}
    ids = [i for pair in pairs for i in pair]
    for start in range(0, len(ids), 5000):
        for t in Turn.objects.filter(id__in=ids[start : start + 5000]).values(*TURN_FIELDS):
            turns[t["id"]] = t
    queries = []
    for first_id, second_id in pairs:
        first, second = turns.get(first_id), turns.get(second_id)
        if not first or not second or not first["asr_text"]:
            continue
        if defect_or_guess(first["defect_probability"], first["status"]) < BAD:
            continue
        if defect_or_guess(second["defect_probability"], second["status"]) >= GOOD or not second["intent"]:
            continue
        queries.append({"turn": first, "wanted": reading(second["intent"], second["slots"])})
    return queries


def quiet_turns(limit: int = QUIET_TURNS) -> tuple[list[dict], float]:
    """The newest turns that went well as said, and how many such turns each stands for."""
    went_well = Turn.objects.filter(rewrite__isnull=True, defect_probability__lt=GOOD).exclude(asr_text="")
    rows = list(went_well.exclude(intent="").order_by("-id").values(*TURN_FIELDS)[:limit])
    return rows, (went_well.count() / len(rows) if rows else 1.0)


def _fire_examples(
    index: RewriteIndex,
    queries: list[dict],
    quiet: list[dict],
    quiet_weight: float,
    vectors: dict[str, np.ndarray],
    found: IndexEntries,
) -> list[dict]:
    """One example per turn: the fire features of its top candidate, whether acting on it is right,
    and its weight. A quiet turn whose top candidate means what it meant is left out (a rewrite to
    the same reading changes nothing)."""
    out = []
    for turn, wanted, weight in [(q["turn"], q["wanted"], 1.0) for q in queries] + [
        (t, None, quiet_weight) for t in quiet
    ]:
        text, user, went_well = turn["asr_text"], turn["user_id"], wanted is None
        query = Query(text=text, vector=vectors[text], nlu=_nlu_of(turn))
        # The words' record without this turn: at run time a turn is not in the record yet.
        record, mine = found.records.get(text, Record()), found.personal_records.get(user, {}).get(text, Record())
        record = Record(max(0, record.seen - 1), max(0, record.good - went_well))
        mine = Record(max(0, mine.seen - 1), max(0, mine.good - went_well))
        for use_personal in (True, False) if index.personal_rows.get(user) else (False,):
            top = index.top(query, user, use_global=True, use_personal=use_personal)
            if top is None:
                continue
            meant = reading(top.entry.intent, top.entry.slots)
            if went_well and meant == reading(turn["intent"], turn["slots"]):
                continue
            out.append(
                {
                    "id": turn["id"],
                    "x": fire_features(query, top, record, mine if use_personal else Record()),
                    "y": int(not went_well and meant == wanted),
                    "w": weight,
                    "view": PERSONAL_VIEW if use_personal else GLOBAL_VIEW,
                }
            )
    return out


def _train_fire_model(examples: list[dict], precision: float) -> tuple[Any, dict[str, float], dict]:
    """(booster or None, {view: threshold}, held-out stats) for the fire model."""
    import lightgbm

    train = [e for e in examples if not _held_out(e["id"])]
    held = [e for e in examples if _held_out(e["id"])]
    positives = sum(e["y"] for e in train)
    stats: dict[str, Any] = {"examples": len(train), "positives": positives, "trained": False}
    if positives < 5 or len(train) - positives < MIN_QUIET:
        return None, {}, stats
    model = lightgbm.LGBMClassifier(
        n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10, verbose=-1
    )
    model.fit(
        np.array([e["x"] for e in train], dtype=np.float64),
        np.array([e["y"] for e in train]),
        sample_weight=np.array([e["w"] for e in train]),
    )
    booster = model.booster_
    scores = booster.predict(np.array([e["x"] for e in held], dtype=np.float64)) if held else []
    thresholds, held_stats = {}, {}
    for view in (PERSONAL_VIEW, GLOBAL_VIEW):
        thresholds[view], held_stats[view] = choose_threshold(
            [(float(p), bool(e["y"]), e["w"]) for p, e in zip(scores, held, strict=True) if e["view"] == view],
            precision,
            min_fired=settings.ONLINE_FIRE_MIN_FIRES,
        )
    return booster, thresholds, {**stats, "trained": True, "holdout": held_stats}


def _dataset(index: RewriteIndex, queries: list[dict], vectors: dict[str, np.ndarray]) -> list[dict]:
    out = []
    for q in queries:
        turn = q["turn"]
        query = Query(text=turn["asr_text"], vector=vectors[turn["asr_text"]], nlu=_nlu_of(turn))
        cands = index.candidates(query, turn["user_id"], use_global=True, use_personal=True)
        if not cands:
            continue
        cand_vectors = index.vectors_of(cands)
        features = np.array([candidate_features(query, e, p, cand_vectors.get(e.text)) for e, p in cands])
        labels = np.array([int(reading(e.intent, e.slots) == q["wanted"]) for e, _ in cands])
        out.append({"id": turn["id"], "x": features, "y": labels})
    return out


def choose_threshold(scored: list[tuple], precision: float, min_fired: int = 5) -> tuple[float, dict]:
    """The lowest score from which the top candidates were right at least `precision` of the time,
    over at least `min_fired` of them.

    `scored`: (score, right) or (score, right, weight), a weight being how many turns one stands for."""
    best = math.inf
    right = fired = 0.0
    stats = {"fired": 0, "right": 0}
    for n, (score, correct, *weight) in enumerate(sorted(scored, key=lambda s: -s[0]), start=1):
        w = weight[0] if weight else 1.0
        fired += w
        right += w * correct
        if n >= min_fired and right / fired >= precision:
            best, stats = score, {"fired": round(fired, 2), "right": round(right, 2)}
    return best, {**stats, "queries": len(scored)}


def build_and_register(progress: Callable[[float, str], None], layer_outcomes: dict | None = None) -> dict[str, Any]:
    import lightgbm

    started = time.monotonic()
    progress(0.05, "collecting successful utterances")
    found = build_entries()
    global_entries, by_user, known_good = found.global_entries, found.by_user, found.known_good
    personal_entries: list[Entry] = []
    personal_rows: dict[int, list[int]] = {}
    for user, entries in by_user.items():
        personal_rows[user] = list(range(len(personal_entries), len(personal_entries) + len(entries)))
        personal_entries += entries
    queries = training_queries()
    quiet, quiet_weight = quiet_turns()
    progress(0.3, f"embedding {len(global_entries)} global and {len(personal_entries)} personal entries")
    vectors = embed(
        [e.text for e in global_entries + personal_entries]
        + [q["turn"]["asr_text"] for q in queries]
        + [t["asr_text"] for t in quiet]
    )
    dim = 384

    def stack(entries: list[Entry]) -> np.ndarray:
        return np.stack([vectors[e.text] for e in entries]) if entries else np.zeros((0, dim), np.float32)

    arrays = {"global_vectors": stack(global_entries), "personal_vectors": stack(personal_entries)}
    meta = {
        "global": [asdict(e) for e in global_entries],
        "personal": [asdict(e) for e in personal_entries],
        "personal_rows": {str(k): v for k, v in personal_rows.items()},
        "known_good": sorted(known_good),
        "known_bad": sorted(found.known_bad),
        "personal_bad": {str(k): v for k, v in found.personal_bad.items()},
        "records": {text: [r.seen, r.good] for text, r in found.records.items()},
        "personal_records": {
            str(user): {text: [r.seen, r.good] for text, r in texts.items()}
            for user, texts in found.personal_records.items()
        },
    }
    disabled = sorted(
        name
        for name, stats in (layer_outcomes or {}).items()
        if name.startswith("online-")
        and stats["wins"] + stats["losses"] >= settings.REWRITE_MIN_OUTCOMES
        and stats["win_rate_5pct"] < settings.REWRITE_RETIRE_BELOW
    )
    draft = RewriteIndex("draft", {"threshold": math.inf}, arrays, meta, ranker=None)
    progress(0.5, f"ranking data from {len(queries)} rephrases")
    data = _dataset(draft, queries, vectors)
    train = [d for d in data if not _held_out(d["id"]) and d["y"].any()]
    held = [d for d in data if _held_out(d["id"])]
    ranker = lightgbm.LGBMRanker(
        objective="lambdarank", n_estimators=150, learning_rate=0.05, num_leaves=15, min_child_samples=5, verbose=-1
    )
    threshold, fit_stats, booster = math.inf, {"queries": len(train), "trained": False}, None
    if len(train) >= MIN_QUERIES:
        ranker.fit(np.vstack([d["x"] for d in train]), np.concatenate([d["y"] for d in train]),
                   group=[len(d["y"]) for d in train])  # fmt: skip
        booster = ranker.booster_
        scored = [(float(np.max(s := booster.predict(d["x"]))), bool(d["y"][int(np.argmax(s))])) for d in held]
        threshold, fit_stats = choose_threshold(scored, settings.ONLINE_REWRITE_PRECISION)
    fire_model, fire_thresholds, fire_stats = None, {}, {"trained": False}
    if booster is not None:
        progress(0.7, f"fire model from {len(queries)} rephrases and {len(quiet)} turns that went well")
        ranked = RewriteIndex("draft", {"threshold": math.inf}, arrays, meta, ranker=booster)
        examples = _fire_examples(ranked, queries, quiet, quiet_weight, vectors, found)
        fire_model, fire_thresholds, fire_stats = _train_fire_model(examples, settings.ONLINE_FIRE_PRECISION)
    fire_thresholds = {view: t for view, t in fire_thresholds.items() if math.isfinite(t)}
    # Without a ranker (too little evidence yet) the index never fires; it still knows what works.
    newest = Turn.objects.aggregate(m=Max("id"))["m"] or 0
    version = version_name("rewrite-index", newest)
    manifest = {
        "format": FORMAT,
        "kind": "rewrite_index",
        "version": version,
        "threshold": threshold if math.isfinite(threshold) else None,
        "fire_threshold": fire_thresholds.get(PERSONAL_VIEW),
        "global_fire_threshold": fire_thresholds.get(GLOBAL_VIEW),
        "disabled_layers": disabled,
        "built_at": datetime.now(UTC).isoformat(),
        "metrics": {
            "global_entries": len(global_entries),
            "personal_entries": len(personal_entries),
            "users": len(by_user),
            "known_good": len(known_good),
            "known_bad": len(found.known_bad),
            "training_queries": len(train),
            "holdout": fit_stats,
            "fire": fire_stats,
            "precision_target": settings.ONLINE_REWRITE_PRECISION,
        },
    }
    out = Path(settings.MODEL_DIR) / "rewrite_index" / version
    progress(0.9, "writing the artifact")
    files: dict[str, Callable[[Path], Any]] = {
        "vectors.npz": lambda p: np.savez(p, **arrays),
        "entries.json": lambda p: p.write_text(json.dumps(meta), encoding="utf-8"),
    }
    if booster is not None:
        files["ranker.txt"] = lambda p: booster.save_model(str(p))
    if fire_model is not None and fire_thresholds:
        files["fire.txt"] = lambda p: fire_model.save_model(str(p))
    write_artifact(out, manifest, files)
    row, decision = register_candidate(REWRITE_INDEXES, out, manifest, gate=gate)
    return {
        "version": version,
        "status": row.status,
        "decision": decision.note if decision else None,
        "metrics": manifest["metrics"],
        "threshold": manifest["threshold"],
        "disabled_layers": disabled,
        "seconds": round(time.monotonic() - started, 2),
    }


def gate(candidate: dict, active: dict | None) -> Decision:
    """An index is promoted unless its ranker missed the precision target on its held-out queries."""
    metrics = candidate.get("metrics") or {}
    holdout = metrics.get("holdout") or {}
    fired, right = holdout.get("fired", 0), holdout.get("right", 0)
    if fired and right / fired < settings.ONLINE_REWRITE_PRECISION:
        return Decision(False, True, f"rejected: held-out precision {right}/{fired} below the target", ("precision",))
    for view, fire in ((metrics.get("fire") or {}).get("holdout") or {}).items():
        if fire.get("fired") and fire["right"] / fire["fired"] < settings.ONLINE_FIRE_PRECISION:
            note = (
                f"rejected: the fire model's held-out precision ({view} view) {fire['right']}/{fire['fired']} "
                "is below the target"
            )
            return Decision(False, True, note, ("precision",))
    note = (
        f"promoted: held-out top-1 right {right} of {fired} fired"
        if fired
        else "promoted: the ranker does not fire yet (too few held-out queries above the precision target)"
    )
    del active
    return Decision(True, bool(fired), note)
