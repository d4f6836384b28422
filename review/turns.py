"""A stored turn made readable for a reviewer: the stages as a timeline, the reply with where the user
cut it short, feedback, the rephrases before and after it, and what the learners concluded.

Plain functions over the feedback store; the views (review/views.py) only render what these return.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from assistant.nlu import NLU_MODELS
from feedback.labels import reviewed
from feedback.models import CLUSTER_RANKING, DefectCluster, Rephrase, Turn

SHOWN_CHARS = 400  # of a stage's input or output, as JSON


@dataclass(frozen=True)
class Stage:
    name: str
    input: str
    output: str
    confidence: float | None
    ms: float | None
    model_version: str
    error: str
    alternatives: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Reply:
    heard: str  # the words delivered before the first barge-in (all of them without one)
    cut: str  # the words the user did not wait for
    barge_in: dict | None  # {"offset_words", "offset_ms", "source"} of the first barge-in


@dataclass(frozen=True)
class Neighbour:
    turn_id: int
    text: str
    score: float
    created_at: datetime


@dataclass(frozen=True)
class ReadableTurn:
    turn: Turn
    stages: list[Stage]
    reply: Reply
    feedback: list[dict]
    rephrase_of: list[Neighbour]  # earlier turns this one rephrased
    rephrased_by: list[Neighbour]  # later turns that rephrased this one
    conclusions: dict[str, Any]


def _shown(value: Any) -> str:
    if value in (None, "", [], {}):
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def stages(trace: list[dict] | None) -> list[Stage]:
    rows = []
    for step in trace or []:
        if not isinstance(step, dict):
            continue
        output = step.get("output")
        alternatives = output.get("alternatives") if isinstance(output, dict) else None
        rows.append(
            Stage(
                name=str(step.get("stage", "?")),
                input=_shown(step.get("input")),
                output=_shown(output),
                confidence=step.get("confidence"),
                ms=step.get("ms"),
                model_version=str(step.get("model_version") or ""),
                error=str(step.get("error") or ""),
                alternatives=[a for a in alternatives or [] if isinstance(a, dict)][:5],
            )
        )
    return rows


def reply(turn: Turn) -> Reply:
    words = (turn.response or "").split()
    first = turn.barge_ins.order_by("offset_words", "id").first()
    if first is None:
        return Reply(heard=" ".join(words), cut="", barge_in=None)
    at = min(first.offset_words, len(words))
    return Reply(heard=" ".join(words[:at]), cut=" ".join(words[at:]), barge_in=first.as_dict())


def readable(turn: Turn) -> ReadableTurn:
    before = Rephrase.objects.filter(second=turn).select_related("first").order_by("first__created_at")
    after = Rephrase.objects.filter(first=turn).select_related("second").order_by("second__created_at")
    label = turn.labels.filter(undone_at__isnull=True).exclude(failure_point="").order_by("-created_at", "-id").first()
    reviewed_point = label.failure_point if label else ""
    current = reviewed().filter(turn=turn).first()
    serving = NLU_MODELS.active_version() if current is not None and current.intent else None
    if serving is not None:
        # Imported here: resolving any URL imports this module, and a served turn must load no training code.
        from learning.nlu.service import trained_on
    return ReadableTurn(
        turn=turn,
        stages=stages(turn.trace),
        reply=reply(turn),
        feedback=[f.as_dict() for f in turn.feedback.order_by("created_at")],
        rephrase_of=[Neighbour(r.first_id, r.first.raw_text, r.score, r.first.created_at) for r in before],
        rephrased_by=[Neighbour(r.second_id, r.second.raw_text, r.score, r.second.created_at) for r in after],
        conclusions={
            "defect_probability": turn.defect_probability,
            "defect_model_version": turn.defect_model_version,
            "failure_point": turn.failure_point,
            "failure_point_confidence": turn.failure_point_confidence,
            "failure_point_model_version": turn.failure_point_model_version,
            "reviewed_failure_point": reviewed_point,
            # The serving NLU learned the reviewer's reading of this turn ("" when not, or no reading was given).
            "label_learned_by": serving.version if serving and trained_on(current, serving.manifest) else "",
            "label_intent": current.intent if current is not None else "",
            "rewrite": turn.rewrite,
            "prompt_reason": turn.prompt_reason,
            "preference_used": ((turn.action or {}).get("params") or {}).get("preference"),
        },
    )


# How the one-by-one list is ordered: the likeliest failures first, or those whose failure point the model
# is least sure of first (what a reviewer's failure point teaches it most: active learning).
LIKELIEST, UNSURE = "likeliest", "unsure"


def likely_defects(
    *, intent: str = "", since: datetime | None = None, search: str = "", failed_at: str = "", order: str = LIKELIEST
) -> QuerySet[Turn]:
    """Turns the defect model thinks failed (REVIEW_DEFECT_AT or more), most likely first (`order` UNSURE: those
    with a failure point, least sure first, and none a reviewer labelled); `failed_at`: only those the
    failure-point model says failed at that stage."""
    rows = Turn.objects.filter(defect_probability__gte=settings.REVIEW_DEFECT_AT).select_related("user")
    if order == UNSURE:
        rows = rows.filter(failure_point_confidence__isnull=False, labels__isnull=True)
    if intent:
        rows = rows.filter(intent=intent)
    if failed_at:
        rows = rows.filter(failure_point=failed_at)
    if search:
        # Compared lower-cased, which the words' trigram index (on their upper case) cannot serve: the planner
        # then reads the likely defects once, keeping the top page as it goes (0.6 s at 1M turns). Through the
        # trigram index it fetched and sorted every turn with a common word instead (5.5 s for "kitchen").
        rows = rows.alias(lowered=Lower("raw_text")).filter(lowered__contains=search.lower())
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if order == UNSURE:
        return rows.order_by("failure_point_confidence", "-defect_probability", "-id")
    return rows.order_by("-defect_probability", "-created_at", "-id")


def ranked_clusters(
    *, intent: str = "", since: datetime | None = None, search: str = "", failed_at: str = ""
) -> QuerySet[DefectCluster]:
    """The last grouping's clusters, most people affected first, then most turns, then growing fastest;
    `failed_at`: only those most of whose turns failed at that stage."""
    rows = DefectCluster.objects.all()
    if intent:
        rows = rows.filter(top_intent=intent)
    if failed_at:
        rows = rows.filter(failure_point=failed_at)
    if since is not None:
        rows = rows.filter(last_seen__gte=since)
    if search:
        # A subquery rather than a join: it reads the words' trigram index once, with no DISTINCT over clusters.
        saying = Turn.objects.filter(defect_cluster__isnull=False, raw_text__icontains=search)
        rows = rows.filter(Q(representative__icontains=search) | Q(pk__in=saying.values("defect_cluster")))
    return rows.order_by(*CLUSTER_RANKING)
