"""Rephrase detection: did the user try again, in other words (or the same), right after a turn?

A rephrase is the strongest implicit signal that a turn failed, and the raw material
of rewrite mining (pairs "what failed" -> "what the user said instead").

Candidates: pairs of one user's turns (ordered by created_at, id) less than
REPHRASE_MAX_GAP_S seconds apart, the second at most LOOKBACK turns after the first
(usually the next one; requests may interleave). A turn is linked to the nearest
earlier candidate that passes the threshold, and each turn is matched at most once
each way. Each candidate is scored by a small, fixed,
transparent logistic model over these features (all in [0, 1]):

  sem       cosine of the MiniLM sentence embeddings of the two texts, clipped at 0
  lex       rapidfuzz token_set_ratio / 100 (repeats and partial rewordings)
  close     1 - gap / max gap (a quick retry is more likely a retry)
  failed    the first turn looked failed: barge-in, thumbs down, or status error/oos
  same      both turns got the same (non-empty) NLU intent

  score = sigmoid(BIAS + sum(WEIGHTS[f] * f))

The weights are set by hand, not fitted: meaning dominates (a retry says the same
thing), wording and speed add evidence, a visible failure of the first turn tips
borderline pairs. Two unrelated requests in quick succession ("turn on the lights",
then "what's the weather") have low sem and lex and stay well below the threshold
even when the first one failed; a paraphrase with no failure signal passes on
meaning alone. Pairs scoring at least REPHRASE_THRESHOLD are stored as
feedback.Rephrase rows (get_or_create: reruns add nothing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Max, Min, Q
from rapidfuzz import fuzz

from feedback.models import BargeIn, Feedback, Rephrase, Turn
from learning.embeddings import embed

DETECTOR_VERSION = "fixed-logistic-1"
# How many earlier turns a turn may rephrase: usually the one just before, but requests can
# interleave (two devices, a quick aside) and the retry then follows an unrelated turn.
LOOKBACK = 3
BIAS = -4.0
WEIGHTS = {"sem": 4.0, "lex": 2.0, "close": 1.5, "failed": 1.0, "same": 0.5}
FAILED_STATUSES = (Turn.Status.ERROR, Turn.Status.OUT_OF_SCOPE)


def max_gap_s() -> float:
    return float(getattr(settings, "REPHRASE_MAX_GAP_S", 45.0))


def threshold() -> float:
    return float(getattr(settings, "REPHRASE_THRESHOLD", 0.5))


def turn_text(turn: Turn) -> str:
    """What the assistant heard (the ASR top hypothesis), else what was typed."""
    return (turn.asr_text or turn.raw_text or "").strip()


@dataclass(frozen=True)
class PairFeatures:
    sem: float
    lex: float
    close: float
    failed: float
    same: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 4) for k in WEIGHTS}


def score_features(f: PairFeatures) -> float:
    """The fixed logistic scorer: a value in [0, 1]."""
    z = BIAS + sum(WEIGHTS[name] * getattr(f, name) for name in WEIGHTS)
    return 1.0 / (1.0 + math.exp(-z))


def pair_features(
    first: Turn, second: Turn, vectors: dict[str, Any], failed_ids: set[int], max_gap: float
) -> PairFeatures:
    a, b = turn_text(first), turn_text(second)
    va, vb = vectors.get(a), vectors.get(b)
    sem = max(0.0, float(va @ vb)) if va is not None and vb is not None else 0.0  # both L2-normalised
    lex = fuzz.token_set_ratio(a.lower(), b.lower()) / 100.0 if a and b else 0.0
    gap = (second.created_at - first.created_at).total_seconds()
    close = max(0.0, min(1.0, 1.0 - gap / max_gap)) if max_gap > 0 else 0.0
    failed = 1.0 if (first.pk in failed_ids or first.status in FAILED_STATUSES) else 0.0
    same = 1.0 if first.intent and first.intent == second.intent else 0.0
    return PairFeatures(sem=min(sem, 1.0), lex=lex, close=close, failed=failed, same=same)


def _candidate_pairs(new_turns: Q, max_gap: float) -> list[tuple[Turn, Turn]]:
    """Pairs of a user's turns (one of them new) less than max_gap apart, up to LOOKBACK turns back."""
    from datetime import timedelta

    pairs: list[tuple[Turn, Turn]] = []
    spans = Turn.objects.filter(new_turns).values("user_id").annotate(lo=Min("created_at"), hi=Max("created_at"))
    new_ids = set(Turn.objects.filter(new_turns).values_list("id", flat=True))
    for span in spans:
        # The turn just before the earliest new one may be the first of a pair.
        window = Turn.objects.filter(
            user_id=span["user_id"],
            created_at__gte=span["lo"] - timedelta(seconds=max_gap),
            created_at__lte=span["hi"],
        ).order_by("created_at", "id")
        turns = list(window)
        for j, second in enumerate(turns):
            for first in turns[max(0, j - LOOKBACK) : j]:
                if first.pk not in new_ids and second.pk not in new_ids:
                    continue
                gap = (second.created_at - first.created_at).total_seconds()
                if 0 <= gap < max_gap:
                    pairs.append((first, second))
    return pairs


def _failed_ids(turn_ids: Iterable[int]) -> set[int]:
    ids = list(turn_ids)
    barged = BargeIn.objects.filter(turn_id__in=ids).values_list("turn_id", flat=True)
    down = Feedback.objects.filter(turn_id__in=ids, kind=Feedback.Kind.THUMBS_DOWN).values_list("turn_id", flat=True)
    return set(barged) | set(down)


def detect_rephrases(since: datetime | None = None, *, after_id: int | None = None) -> dict[str, Any]:
    """Find and store rephrases among turns created at/after `since` and with id > `after_id`.

    Both None: every turn. Returns counts and `watermark_id`, the largest turn id seen,
    which the next run can pass as `after_id` (ids, not times: simulated turns carry
    simulated, possibly past, timestamps).
    """
    new_turns = Q()
    if since is not None:
        new_turns &= Q(created_at__gte=since)
    if after_id is not None:
        new_turns &= Q(pk__gt=after_id)
    watermark = Turn.objects.filter(new_turns).aggregate(m=Max("id"))["m"]
    gap_limit, cutoff = max_gap_s(), threshold()
    pairs = _candidate_pairs(new_turns, gap_limit)
    vectors = embed([turn_text(t) for pair in pairs for t in pair]) if pairs else {}
    failed_ids = _failed_ids(first.pk for first, _ in pairs)
    scored = [(score_features(pair_features(a, b, vectors, failed_ids, gap_limit)), a, b) for a, b in pairs]
    # Each turn rephrases at most one earlier turn, the nearest that passes (a chain of retries
    # links each try to the one before), and is rephrased at most once.
    scored.sort(key=lambda item: (item[2].created_at, item[2].pk, -item[1].created_at.timestamp(), -item[1].pk))
    ids = {t.pk for pair in pairs for t in pair}
    stored = set(
        Rephrase.objects.filter(Q(first_id__in=ids) | Q(second_id__in=ids)).values_list("first_id", "second_id")
    )
    used_first = {a for a, _ in stored}  # earlier runs' matches hold: reruns change nothing
    used_second = {b for _, b in stored}
    created = existing = 0
    for score, first, second in scored:
        if score < cutoff:
            continue
        if (first.pk, second.pk) in stored:
            existing += 1
            continue
        if first.pk in used_first or second.pk in used_second:
            continue
        used_first.add(first.pk)
        used_second.add(second.pk)
        gap_ms = int((second.created_at - first.created_at).total_seconds() * 1000)
        # get_or_create: a concurrent run may have stored the same pair meanwhile.
        _, was_created = Rephrase.objects.get_or_create(
            first=first,
            second=second,
            defaults={"score": round(score, 4), "gap_ms": gap_ms, "detector_version": DETECTOR_VERSION},
        )
        created += was_created
        existing += not was_created
    return {
        "candidates": len(pairs),
        "detected": created + existing,
        "created": created,
        "already_stored": existing,
        "threshold": cutoff,
        "max_gap_s": gap_limit,
        "detector_version": DETECTOR_VERSION,
        "watermark_id": watermark if watermark is not None else after_id,
    }
