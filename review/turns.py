"""A stored turn made readable for a reviewer: the stages as a timeline, the reply with where the user
cut it short, feedback, the rephrases before and after it, and what the learners concluded.

Plain functions over the feedback store; the views (review/views.py) only render what these return.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from assistant import skills
from assistant.models import ModelVersion
from assistant.nlu import NLU_MODELS
from feedback.labels import neighbours, random_pairs, reviewed, reviewed_rephrases
from feedback.models import (
    CLUSTER_RANKING,
    DefectCluster,
    Experiment,
    ExperimentAssignment,
    Label,
    Rephrase,
    RewriteRule,
    Turn,
)

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
class RetryQuestion:
    """An earlier turn this one may have retried: what the detector said, what a reviewer said."""

    turn_id: int
    text: str
    created_at: datetime
    detector_score: float | None  # the stored link's score, None when the detector linked none
    verdict: bool | None  # the reviewer's current verdict: a retry, not one, or not judged
    verdict_id: int | None  # the RephraseLabel to undo


@dataclass(frozen=True)
class ReadableTurn:
    turn: Turn
    stages: list[Stage]
    reply: Reply
    feedback: list[dict]
    rephrase_of: list[Neighbour]  # earlier turns this one rephrased
    rephrased_by: list[Neighbour]  # later turns that rephrased this one
    conclusions: dict[str, Any]
    retry_questions: list[RetryQuestion] = field(default_factory=list)  # was this turn a retry of one of these?


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


def retry_questions(turn: Turn) -> list[RetryQuestion]:
    """The earlier turns this one may have retried (the pairs the rephrase detector judges), with the
    detector's and the reviewers' verdicts."""
    earlier = neighbours(turn)[0]
    ids = [t.pk for t in earlier]
    linked = dict(Rephrase.objects.filter(second=turn, first_id__in=ids).values_list("first_id", "score"))
    verdicts = {v.first_id: v for v in reviewed_rephrases().filter(second=turn, first_id__in=ids)}
    return [
        RetryQuestion(
            turn_id=t.pk,
            text=t.raw_text,
            created_at=t.created_at,
            detector_score=linked.get(t.pk),
            verdict=verdicts[t.pk].is_rephrase if t.pk in verdicts else None,
            verdict_id=verdicts[t.pk].pk if t.pk in verdicts else None,
        )
        for t in earlier
    ]


@dataclass(frozen=True)
class PairToJudge:
    """Two turns of one person drawn at random (feedback.labels.random_pairs): was the later a retry?"""

    first: Turn
    second: Turn
    gap_s: float
    detector_score: float | None  # the stored link's score, None when the detector linked none


PAIRS_TO_JUDGE = 10  # a page of the random queue


def pairs_to_judge(count: int = PAIRS_TO_JUDGE) -> list[PairToJudge]:
    """A page of the random queue of pairs to judge, with what the detector said of each."""
    drawn = random_pairs(count)
    links = Rephrase.objects.filter(second_id__in=[b.pk for _, b in drawn]).values_list(
        "first_id", "second_id", "score"
    )
    scores = {(a, b): score for a, b, score in links}
    return [
        PairToJudge(a, b, (b.created_at - a.created_at).total_seconds(), scores.get((a.pk, b.pk))) for a, b in drawn
    ]


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
        retry_questions=retry_questions(turn),
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


SEARCHED_WORDS = 10


def with_words(rows: QuerySet, field: str, search: str) -> QuerySet:
    """`rows` whose `field` has every word of `search`, the last also as the start of a word ("kitch" finds
    "kitchen"), in any case. On PostgreSQL by full-text search ('simple': no stemming), which the turns'
    GIN index serves (feedback migration 0019); elsewhere (the SQLite file of a bare `make run`) by
    substring, scanning."""
    words = re.findall(r"\w+", search.lower())[:SEARCHED_WORDS]
    if not words:
        return rows.none()
    if connection.vendor != "postgresql":
        for word in words:
            rows = rows.filter(**{f"{field}__icontains": word})
        return rows
    # Quoted terms: \w+ holds none of tsquery's operators or quotes.
    query = " & ".join([*(f"'{w}'" for w in words[:-1]), f"'{words[-1]}':*"])
    matches = SearchVector(field, config="simple")
    return rows.alias(words=matches).filter(words=SearchQuery(query, search_type="raw", config="simple"))


# How the one-by-one list is ordered: the likeliest failures first, or those whose failure point the model
# is least sure of first (what a reviewer's failure point teaches it most: active learning).
LIKELIEST, UNSURE = "likeliest", "unsure"


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox is narrowed to (each blank or None: any). `arm` is "<experiment>:<arm>"."""

    intent: str = ""
    since: datetime | None = None
    search: str = ""
    failed_at: str = ""
    skill: str = ""
    nlu_version: str = ""
    arm: str = ""
    bad_since: bool = False  # a "since" was given that is not a date (every date is shown)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> InboxFilters:
        """The filters a request asks for, each cut to its column's size; an unknown failure point is no filter."""

        def value(name: str, size: int) -> str:
            # Control characters cannot be in a stored text (assistant.text), and PostgreSQL refuses a NUL.
            return "".join(ch for ch in str(query.get(name, "")) if unicodedata.category(ch) != "Cc")[:size]

        since_text = value("since", 10)
        try:
            day = date.fromisoformat(since_text) if since_text else None
        except ValueError:
            day = None
        failed_at = value("failed_at", 10)
        return cls(
            intent=value("intent", 80),
            since=timezone.make_aware(datetime.combine(day, time.min)) if day else None,
            search=" ".join(value("q", 1000).split())[:100],
            failed_at=failed_at if failed_at in Label.FailurePoint.values else "",
            skill=value("skill", 40),
            nlu_version=value("nlu_version", 80),
            arm=value("arm", 200),
            bad_since=bool(since_text) and day is None,
        )

    def as_query(self) -> dict[str, str]:
        """The filters as the form's fields (for links to another page of the same list)."""
        values = {
            "q": self.search,
            "intent": self.intent,
            "since": self.since.date().isoformat() if self.since else "",
            "failed_at": self.failed_at,
            "skill": self.skill,
            "nlu_version": self.nlu_version,
            "arm": self.arm,
        }
        return {k: v for k, v in values.items() if v}

    def arm_users(self) -> QuerySet | None:
        """The users in the chosen experiment arm (None: no arm chosen)."""
        if not self.arm:
            return None
        experiment, _, arm = self.arm.partition(":")
        return ExperimentAssignment.objects.filter(experiment__name=experiment, arm=arm).values("user_id")

    def turns(self, rows: QuerySet[Turn]) -> QuerySet[Turn]:
        """`rows` narrowed to the turns these filters ask for (the search is left to the caller)."""
        if self.intent:
            rows = rows.filter(intent=self.intent)
        if self.failed_at:
            rows = rows.filter(failure_point=self.failed_at)
        if self.skill:
            rows = rows.filter(skill=self.skill)
        if self.nlu_version:
            rows = rows.filter(nlu_model_version=self.nlu_version)
        users = self.arm_users()
        if users is not None:
            rows = rows.filter(user_id__in=users)
        if self.since is not None:
            rows = rows.filter(created_at__gte=self.since)
        return rows


def likely_defects(filters: InboxFilters = InboxFilters(), order: str = LIKELIEST) -> QuerySet[Turn]:
    """Turns the defect model thinks failed (REVIEW_DEFECT_AT or more), most likely first (`order` UNSURE: those
    with a failure point, least sure first, and none a reviewer labelled), narrowed by `filters`."""
    rows = Turn.objects.filter(defect_probability__gte=settings.REVIEW_DEFECT_AT).select_related("user")
    if order == UNSURE:
        rows = rows.filter(failure_point_confidence__isnull=False, labels__isnull=True)
    rows = filters.turns(rows)
    if filters.search:
        # The planner reads a rare word's few turns from the words' index and sorts them, and finds a common
        # one's by walking the likeliest defects until a page is full (PostgreSQL's statistics of the words).
        rows = with_words(rows, "raw_text", filters.search)
    if order == UNSURE:
        return rows.order_by("failure_point_confidence", "-defect_probability", "-id")
    return rows.order_by("-defect_probability", "-created_at", "-id")


def ranked_clusters(filters: InboxFilters = InboxFilters()) -> QuerySet[DefectCluster]:
    """The last grouping's clusters, most people affected first, then most turns, then growing fastest.
    Intent and failure point narrow by the cluster's own (what most of its turns were read as and failed
    at); the other filters keep the clusters with a turn that matches them."""
    rows = DefectCluster.objects.all()
    if filters.intent:
        rows = rows.filter(top_intent=filters.intent)
    if filters.failed_at:
        rows = rows.filter(failure_point=filters.failed_at)
    if filters.since is not None:
        rows = rows.filter(last_seen__gte=filters.since)
    by_member = InboxFilters(skill=filters.skill, nlu_version=filters.nlu_version, arm=filters.arm)
    if by_member != InboxFilters():
        # A subquery rather than a join: no DISTINCT over clusters.
        members = by_member.turns(Turn.objects.filter(defect_cluster__isnull=False))
        rows = rows.filter(pk__in=members.values("defect_cluster"))
    if filters.search:
        rows = with_words(rows, "wordings", filters.search)
    return rows.order_by(*CLUSTER_RANKING)


NLU_VERSIONS_SHOWN = 20


def filter_options() -> dict[str, list]:
    """What the inbox's filters offer: failure points, skills, the NLU versions that served, experiment arms."""
    served = ModelVersion.objects.filter(
        kind=NLU_MODELS.name, status__in=(ModelVersion.Status.ACTIVE, ModelVersion.Status.RETIRED)
    )
    return {
        "failure_points": Label.FailurePoint.choices,
        "skills": sorted(skills.REGISTRY),
        "nlu_versions": list(
            served.order_by("-created_at", "-id").values_list("version", flat=True)[:NLU_VERSIONS_SHOWN]
        ),
        "arms": [
            f"{experiment.name}:{arm['name']}"
            for experiment in Experiment.objects.order_by("name")
            for arm in experiment.arms or []
            if isinstance(arm, dict) and arm.get("name")
        ],
    }


RULES_SHOWN = 10


def cluster_rules(cluster: DefectCluster) -> list[RewriteRule]:
    """The global rules that fired on the cluster's turns or would fire on its wordings: active ones do,
    proposed ones could once approved; retired and rejected ones show what was decided before."""
    fired = (
        Turn.objects.filter(defect_cluster=cluster, rewrite__rule_id__isnull=False)
        .order_by()  # no ordering: DISTINCT over the turns' default order read the whole table by date
        .values_list("rewrite__rule_id", flat=True)
        .distinct()[:RULES_SHOWN]
    )
    wordings = {cluster.representative, *(w for w in cluster.examples or [] if isinstance(w, str))}
    rules = RewriteRule.objects.filter(
        Q(source_text__in=wordings) | Q(pk__in=[i for i in fired if isinstance(i, int)]), scope=RewriteRule.Scope.GLOBAL
    )
    return list(rules.prefetch_related("decisions__reviewer").order_by("status", "-distinct_users", "id")[:RULES_SHOWN])


OUTCOME_TURNS = 500  # of a cluster's turns, the newest, whose retries the cluster page follows


@dataclass(frozen=True)
class ChainEnds:
    """How the people behind a cluster's turns went on: the rephrase chain each turn started, and its end."""

    turns: int  # the turns followed (the newest OUTCOME_TURNS)
    got_it: list[tuple[str, int]]  # (the reading that went well, turns), most turns first
    never: int  # retried, and no retry went well
    no_retry: int  # no rephrase followed


def chain_ends(cluster: DefectCluster) -> ChainEnds:
    # Imported here: resolving any URL imports this module, and a served turn must load no training code.
    from learning.generated_labels import MAX_CHAIN, first_success, rephrases_from

    ids = list(cluster.members.order_by("-created_at", "-id").values_list("pk", flat=True)[:OUTCOME_TURNS])
    by_first = rephrases_from(ids, depth=MAX_CHAIN)  # the links of the turns, then of their retries, and so on
    got_it: Counter = Counter()
    never = 0
    for turn_id in ids:
        if turn_id not in by_first:
            continue
        success = first_success(turn_id, by_first)
        if success is None:
            never += 1
        else:
            got_it[success[0].intent or "—"] += 1
    retried = sum(1 for turn_id in ids if turn_id in by_first)
    return ChainEnds(turns=len(ids), got_it=got_it.most_common(), never=never, no_retry=len(ids) - retried)
