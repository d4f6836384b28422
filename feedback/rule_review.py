"""Reviewers' decisions on rewrite rules: approve (active), reject, retire; each kept with who, when and
the status it replaced, and undone by putting that status back. The miner never revives a rule a person
rejected or retired, and never retires or supersedes one a person approved (learning/mining.py): a person's
decision stands until a person changes it (the rule's outcomes can still retire it, learning/mining.py)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from feedback.models import RewriteRule, RuleDecision

Status = RewriteRule.Status
ACTIONS = {"approve": Status.ACTIVE, "reject": Status.REJECTED, "retire": Status.RETIRED}


class DecisionError(ValueError):
    pass


def win_rate(rule: RewriteRule) -> dict[str, float]:
    """Beta(1 + wins, 1 + losses): the posterior of P(a fire of the rule helps), its mean and 90% interval."""
    from scipy.stats import beta  # here, not at import: a web process must not load scipy's optimisers

    a, b = 1 + rule.wins, 1 + rule.losses
    return {
        "mean": round(a / (a + b), 3),
        "low": round(float(beta.ppf(0.05, a, b)), 3),
        "high": round(float(beta.ppf(0.95, a, b)), 3),
    }


def approved_by_a_person(rule_ids) -> set[int]:
    """Which of these active rules are active because a reviewer approved them (their latest decision)."""
    latest: dict[int, str] = {}
    for rule_id, to_status in (
        RuleDecision.objects.filter(rule_id__in=rule_ids, undone_at__isnull=True)
        .order_by("created_at", "id")
        .values_list("rule_id", "to_status")
    ):
        latest[rule_id] = to_status
    return {rule_id for rule_id, status in latest.items() if status == Status.ACTIVE}


def decide(rule: RewriteRule, reviewer: AbstractBaseUser, action: str, now: datetime | None = None) -> RuleDecision:
    if action not in ACTIONS:
        raise DecisionError(f"Unknown action {action!r}: approve, reject or retire.")
    to_status = ACTIONS[action]
    now = now or timezone.now()
    with transaction.atomic():
        locked = RewriteRule.objects.select_for_update().get(pk=rule.pk)
        if locked.status == to_status:
            raise DecisionError(f"The rule is {locked.get_status_display().lower()} already.")
        decision = RuleDecision.objects.create(
            rule=locked, reviewer=reviewer, from_status=locked.status, to_status=to_status, created_at=now
        )
        locked.status = to_status
        locked.status_reason = f"{action}d by {reviewer.get_username()} in review"
        locked.save(update_fields=["status", "status_reason", "updated_at"])
    return decision


def undo(decision: RuleDecision, reviewer: AbstractBaseUser, now: datetime | None = None) -> None:
    """Put the rule back as it was; refused when it was undone already or the rule changed since."""
    with transaction.atomic():
        locked = RuleDecision.objects.select_for_update().select_related("rule").get(pk=decision.pk)
        if locked.undone_at is not None:
            raise DecisionError("That decision was undone already.")
        if locked.rule.status != locked.to_status:
            raise DecisionError("The rule changed since; decide again instead.")
        locked.rule.status = locked.from_status
        locked.rule.status_reason = f"{locked.to_status} undone by {reviewer.get_username()} in review"
        locked.rule.save(update_fields=["status", "status_reason", "updated_at"])
        locked.undone_at, locked.undone_by = now or timezone.now(), reviewer
        locked.save(update_fields=["undone_at", "undone_by"])
