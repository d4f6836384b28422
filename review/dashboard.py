"""The review dashboard's figures, from the feedback store: defect rate by day, intent and skill, where the
likely failures failed, each experiment arm's defect rate with its 95% interval, rule outcomes, and
reviewers' label counts.

A turn counts as defective when the defect model scores it REVIEW_DEFECT_AT or more (unscored turns are
left out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate

from feedback.models import Experiment, ExperimentAssignment, Label, RewriteRule, Turn
from review.charts import Bar

DAYS = 30
TOP_INTENTS = 12


@dataclass(frozen=True)
class Rate:
    label: str
    defective: int
    scored: int

    @property
    def value(self) -> float:
        return self.defective / self.scored if self.scored else 0.0

    def bar(self) -> Bar:
        if not self.scored:
            return Bar(self.label, 0.0, note="(none scored)")
        from scipy.stats import binomtest  # here, not at import: a web process must not load scipy's optimisers

        interval = binomtest(self.defective, self.scored).proportion_ci(method="wilson")
        return Bar(self.label, self.value, interval.low, interval.high, note=f"({self.defective}/{self.scored})")


def _rates(rows, label_of) -> list[Rate]:
    return [Rate(label_of(r), r["defective"], r["scored"]) for r in rows]


def _scored(since: datetime):
    defective = Count("id", filter=Q(defect_probability__gte=settings.REVIEW_DEFECT_AT))
    return Turn.objects.filter(created_at__gte=since, defect_probability__isnull=False), defective


def figures() -> dict:
    newest = Turn.objects.aggregate(m=Max("created_at"))["m"]
    if newest is None:
        return {"empty": True}
    since = newest - timedelta(days=DAYS)
    turns, defective = _scored(since)
    by_day = turns.annotate(day=TruncDate("created_at")).values("day").annotate(scored=Count("id"), defective=defective)
    by_intent = (
        turns.exclude(intent="")
        .values("intent")
        .annotate(scored=Count("id"), defective=defective)
        .order_by("-defective")
    )
    by_skill = (
        turns.exclude(skill="").values("skill").annotate(scored=Count("id"), defective=defective).order_by("-defective")
    )
    likely = turns.filter(defect_probability__gte=settings.REVIEW_DEFECT_AT)
    pointed = likely.exclude(failure_point="").values("failure_point").annotate(n=Count("id")).order_by("-n")
    with_point = sum(r["n"] for r in pointed)
    arms = []
    for experiment in Experiment.objects.filter(is_active=True):
        users = ExperimentAssignment.objects.filter(experiment=experiment)
        for arm in sorted(set(users.values_list("arm", flat=True))):
            members = users.filter(arm=arm).values("user_id")
            row = turns.filter(user_id__in=members).aggregate(scored=Count("id"), defective=defective)
            arms.append(Rate(f"{experiment.name}: {arm}", row["defective"], row["scored"]))
    rules = (
        RewriteRule.objects.filter(scope=RewriteRule.Scope.GLOBAL)
        .values("status")
        .annotate(rules=Count("id"), wins=Sum("wins"), losses=Sum("losses"))
    )
    labels = Label.objects.filter(undone_at__isnull=True).values("failure_point").annotate(n=Count("id"))
    return {
        "empty": False,
        "since": since,
        "by_day": [r.bar() for r in _rates(by_day.order_by("day"), lambda r: r["day"].isoformat())],
        "by_intent": [r.bar() for r in _rates(by_intent[:TOP_INTENTS], lambda r: r["intent"])],
        "by_skill": [r.bar() for r in _rates(by_skill, lambda r: r["skill"])],
        # Of the likely failures with a failure point, the share at each stage.
        "by_failure_point": [Rate(r["failure_point"], r["n"], with_point).bar() for r in pointed],
        "arms": [a.bar() for a in arms],
        "rules": list(rules.order_by("status")),
        "labels": {(r["failure_point"] or "intent only"): r["n"] for r in labels},
    }
