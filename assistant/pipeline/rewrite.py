"""Stage 3, rewrite: replace an utterance known to fail by one known to work.

Precomputed rules (mined from rephrases, taught, or written by staff) live in
feedback.RewriteRule. A personal rule beats a global one. The rewritten text
goes through the NLU again, and the rewrite is kept only if its interpretation
wins: in scope, and at least as confident as the original.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Case, IntegerField, Q, Value, When

from assistant.pipeline.types import NluResult
from feedback.models import RewriteRule


@dataclass(frozen=True)
class RewriteOutcome:
    rule_id: int
    scope: str
    source_text: str
    target_text: str
    kept: bool
    original_intent: str
    original_confidence: float
    rewritten_intent: str
    rewritten_confidence: float

    def as_dict(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "scope": self.scope,
            "from": self.source_text,
            "to": self.target_text,
            "kept": self.kept,
            "original": {"intent": self.original_intent, "confidence": round(self.original_confidence, 4)},
            "rewritten": {"intent": self.rewritten_intent, "confidence": round(self.rewritten_confidence, 4)},
        }


def find_rule(text: str, user_id: int, *, allow_global: bool = True, allow_personal: bool = True) -> RewriteRule | None:
    scopes = Q(pk__in=[])
    if allow_personal:
        scopes |= Q(scope=RewriteRule.Scope.PERSONAL, user_id=user_id)
    if allow_global:
        scopes |= Q(scope=RewriteRule.Scope.GLOBAL)
    return (
        RewriteRule.objects.filter(scopes, source_text=text, status=RewriteRule.Status.ACTIVE)
        .annotate(
            personal_first=Case(
                When(scope=RewriteRule.Scope.PERSONAL, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("personal_first", "-confidence", "-created_at")
        .first()
    )


def rewrite_wins(original: NluResult, rewritten: NluResult) -> bool:
    if rewritten.out_of_scope:
        return False
    return original.out_of_scope or rewritten.confidence >= original.confidence


def apply_rewrite(
    text: str, original: NluResult, user_id: int, understand: Callable[[str], NluResult]
) -> tuple[RewriteOutcome | None, NluResult]:
    """Return the rewrite that was tried (or None) and the interpretation to act on."""
    rule = find_rule(text, user_id)
    if rule is None or rule.target_text == text:
        return None, original
    rewritten = understand(rule.target_text)
    kept = rewrite_wins(original, rewritten)
    outcome = RewriteOutcome(
        rule_id=rule.pk,
        scope=rule.scope,
        source_text=text,
        target_text=rule.target_text,
        kept=kept,
        original_intent=original.intent,
        original_confidence=original.confidence,
        rewritten_intent=rewritten.intent,
        rewritten_confidence=rewritten.confidence,
    )
    return outcome, (rewritten if kept else original)
