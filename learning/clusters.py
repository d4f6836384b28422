"""Defect clusters for the review inbox: the turns that probably failed, grouped by what was asked.

Turns the defect model scores REVIEW_DEFECT_AT or more in the last REVIEW_CLUSTER_DAYS are grouped by
their normalised words' MiniLM embeddings: wordings are taken most frequent first, and each joins the
cluster whose centroid is closest if the cosine is at least REVIEW_CLUSTER_SIMILARITY, or one whose
first wording it spells almost alike (REVIEW_CLUSTER_SPELLING: typos move MiniLM a long way), else
starts one (leader clustering: one pass, no number of clusters to guess, and a frequent wording
anchors its cluster). Clusters whose turns were meant as the same request (a reviewer's reading, else
that of the first retry that went well, following the rephrases) are then merged: one failing request, however people worded it. Each
cluster counts its turns, distinct people, the turns of the last REVIEW_TREND_DAYS against the days before
(the trend), what the NLU mostly read, the rewrites that fired, and where most of its turns failed (the
point the failure-point model stored on them, learning/failure_points.py); the inbox ranks those a label or
a rule can fix first, then by people, turns and trend (feedback.models.CLUSTER_RANKING). A run replaces the previous grouping in one transaction.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from rapidfuzz import fuzz, process

from assistant.text import normalise
from feedback.labels import reviewed
from feedback.models import FIXABLE_POINTS, DefectCluster, Turn
from learning.embeddings import embed
from learning.failure_points import added_unsaid
from learning.generated_labels import first_success, learnable, rephrases_from

log = logging.getLogger(__name__)

MAX_TURNS = 100_000  # the most recent likely defects a run groups
SEARCHED_WORDINGS = 500  # of a cluster's wordings, the most frequent, kept for the inbox's word search
MAX_WORDINGS = 20_000  # distinct wordings embedded (the most frequent); the rest join by their exact words only
EXAMPLES = 5


def leader_clusters(wordings: list[str], vectors: np.ndarray, similarity: float, spelling: float) -> list[int]:
    """Cluster index of each wording (in the order they anchor: most frequent first). A wording joins the
    cluster with the nearest centroid at cosine `similarity` or more, else the cluster whose first
    wording it spells almost alike (rapidfuzz ratio `spelling` or more: MiniLM puts "turn of the kitchn
    lights" far from "turn of the kitchen light", 0.55), else starts its own."""
    centroids: list[np.ndarray] = []
    sums: list[np.ndarray] = []
    anchors: list[str] = []
    assigned = []
    for wording, vector in zip(wordings, vectors, strict=True):
        best = None
        if centroids:
            sims = np.stack(centroids) @ vector
            nearest = int(np.argmax(sims))
            if sims[nearest] >= similarity:
                best = nearest
            elif (alike := process.extractOne(wording, anchors, scorer=fuzz.ratio, score_cutoff=spelling)) is not None:
                best = alike[2]
        if best is None:
            sums.append(vector.copy())
            centroids.append(vector.copy())
            anchors.append(wording)
            assigned.append(len(centroids) - 1)
            continue
        sums[best] = sums[best] + vector
        centroids[best] = sums[best] / np.linalg.norm(sums[best])
        assigned.append(best)
    return assigned


def _reading_key(intent: str, slots: dict | None) -> tuple:
    return intent, tuple(sorted((str(k), normalise(str(v))) for k, v in (slots or {}).items()))


@dataclass
class Retries:
    """What the retries after the failed turns say of them."""

    meant: dict[int, tuple] = field(default_factory=dict)  # turn -> the (intent, slots) it was meant as
    # Turns whose retry that went well kept their intent and slots and added slots their words never said
    # (failure_points.added_unsaid): underspecified requests, which a preference or a taught concept fixes
    # rather than a label or a rewrite rule.
    underspecified: set[int] = field(default_factory=set)


def retries(rows: list[tuple]) -> Retries:
    """What each failed turn (a row of build_clusters) was meant as, where the store says, as (intent, slots):
    a reviewer's reading, else that of the first retry that went well, following the rephrases
    (generated_labels.success_after), whether or not the failed words carry its slots, which a training
    label needs and a meaning does not."""
    found = Retries()
    turn_ids = [row[0] for row in rows]
    by_first = rephrases_from(turn_ids)
    for row in rows:
        success = first_success(row[0], by_first)
        if success is None or not learnable(success[0]):
            continue
        found.meant[row[0]] = _reading_key(success[0].intent, success[0].slots)
        words, slots = normalise(row[4] or row[3] or ""), row[9] or {}
        if row[5] == success[0].intent and added_unsaid(words, slots, success[0].slots or {}):
            found.underspecified.add(row[0])
    for start in range(0, len(turn_ids), 5000):
        for label in reviewed().filter(turn_id__in=turn_ids[start : start + 5000]).exclude(intent=""):
            found.meant[label.turn_id] = _reading_key(label.intent, label.slots)
    return found


def merged_by_meaning(
    groups: dict[int, list[str]], by_words: dict[str, list[tuple]], meant: dict[int, tuple]
) -> dict[int, list[str]]:
    """Clusters whose turns were mostly meant as the same request become one (their wordings most frequent
    first): people who said "wake me at 7" and "alarm for seven please" and then got what they wanted in
    the same reading failed on one request, however differently they put it."""
    by_meaning: dict[tuple, int] = {}
    merged: dict[int, list[str]] = {}
    for cluster, members in groups.items():
        said = Counter(meant[row[0]] for wording in members for row in by_words[wording] if row[0] in meant)
        if not said:
            merged[cluster] = list(members)
            continue
        into = by_meaning.setdefault(said.most_common(1)[0][0], cluster)
        merged.setdefault(into, []).extend(members)
    return {k: sorted(v, key=lambda w: (-len(by_words[w]), w)) for k, v in merged.items()}


def underspecified(turns: list[tuple], retried: Retries) -> bool:
    """Most of a group's turns that were retried into a success were underspecified requests."""
    known = [row[0] for row in turns if row[0] in retried.meant]
    return bool(known) and sum(1 for t in known if t in retried.underspecified) > len(known) / 2


def build_clusters(progress: Callable[[float, str], None] | None = None, now: datetime | None = None) -> dict[str, Any]:
    # "Now" is the newest stored turn's time, so a replayed history (the simulator's days) is grouped as
    # it was lived; in production the two are the same.
    now = now or Turn.objects.aggregate(newest=Max("created_at"))["newest"] or timezone.now()
    since = now - timedelta(days=settings.REVIEW_CLUSTER_DAYS)
    rows = list(
        Turn.objects.filter(defect_probability__gte=settings.REVIEW_DEFECT_AT, created_at__gte=since)
        .order_by("-id")
        .values_list(
            "id",
            "user_id",
            "created_at",
            "raw_text",
            "asr_text",
            "intent",
            "defect_probability",
            "rewrite",
            "failure_point",
            "slots",
        )[:MAX_TURNS]
    )
    by_words: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        words = normalise(row[4] or row[3] or "")
        if words:
            by_words[words].append(row)
    wordings = sorted(by_words, key=lambda w: (-len(by_words[w]), w))
    embedded = wordings[:MAX_WORDINGS]
    if progress:
        progress(0.2, f"{len(rows)} likely defects, {len(wordings)} wordings")
    vectors = embed(embedded)
    matrix = np.stack([vectors[w] for w in embedded]) if embedded else np.zeros((0, 1))
    assigned = leader_clusters(
        embedded, matrix, float(settings.REVIEW_CLUSTER_SIMILARITY), float(settings.REVIEW_CLUSTER_SPELLING)
    )
    groups: dict[int, list[str]] = defaultdict(list)
    for wording, cluster in zip(embedded, assigned, strict=True):
        groups[cluster].append(wording)
    for offset, wording in enumerate(wordings[MAX_WORDINGS:]):
        groups[len(embedded) + offset] = [wording]
    retried = retries(rows)
    groups = merged_by_meaning(groups, by_words, retried.meant)
    recent_from = now - timedelta(days=settings.REVIEW_TREND_DAYS)
    earlier_from = recent_from - timedelta(days=settings.REVIEW_TREND_DAYS)
    clusters, member_turns = [], []
    for members in groups.values():
        turns = [row for wording in members for row in by_words[wording]]
        times = [row[2] for row in turns]
        intents = Counter(row[5] for row in turns if row[5])
        points = Counter(row[8] for row in turns if row[8])
        point, point_turns = points.most_common(1)[0] if points else ("", 0)
        clusters.append(
            DefectCluster(
                representative=members[0],
                examples=members[:EXAMPLES],
                wordings="\n".join(members[:SEARCHED_WORDINGS]),
                turns=len(turns),
                users=len({row[1] for row in turns}),
                recent_turns=sum(1 for t in times if t >= recent_from),
                earlier_turns=sum(1 for t in times if earlier_from <= t < recent_from),
                top_intent=intents.most_common(1)[0][0] if intents else "",
                mean_defect=round(sum(row[6] for row in turns) / len(turns), 4),
                rewrites_fired=sum(1 for row in turns if row[7]),
                failure_point=point,
                failure_point_share=round(point_turns / len(turns), 4),
                underspecified_share=round(sum(1 for row in turns if row[0] in retried.underspecified) / len(turns), 4),
                fixable=(not point or point in FIXABLE_POINTS) and not underspecified(turns, retried),
                first_seen=min(times),
                last_seen=max(times),
                built_at=now,
            )
        )
        member_turns.append([row[0] for row in turns])
    with transaction.atomic():
        Turn.objects.filter(defect_cluster__isnull=False).update(defect_cluster=None)
        DefectCluster.objects.all().delete()
        DefectCluster.objects.bulk_create(clusters, batch_size=2000)
        updates = [
            Turn(pk=turn_id, defect_cluster_id=c.pk)
            for c, ids in zip(clusters, member_turns, strict=True)
            for turn_id in ids
        ]
        Turn.objects.bulk_update(updates, ["defect_cluster"], batch_size=2000)
    result = {"turns": len(rows), "wordings": len(wordings), "clusters": len(groups)}
    log.info("defect clusters: %s", result)
    return result
