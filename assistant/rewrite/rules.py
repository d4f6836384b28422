"""Stage 3, rewrite: replace an utterance known to fail by one known to work.

Precomputed rules (mined from rephrases, taught, or written by staff) live in
feedback.RewriteRule. A personal rule beats a global one. The rewritten text
goes through the NLU again, and the rewrite is kept only if its interpretation
wins: in scope, and at least as confident as the original.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q

from assistant.turns import NluResult
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
    """The active rule for this text: the user's own first, then the most confident, then the newest."""
    if not (allow_global or allow_personal):
        return None
    candidates = [
        rule
        # Other users' personal rules for the same text are never fetched.
        for rule in RewriteRule.objects.filter(
            Q(scope=RewriteRule.Scope.GLOBAL) | Q(user_id=user_id), source_text=text, status=RewriteRule.Status.ACTIVE
        )
        if (allow_personal and rule.scope == RewriteRule.Scope.PERSONAL and rule.user_id == user_id)
        or (allow_global and rule.scope == RewriteRule.Scope.GLOBAL)
    ]
    if not candidates:
        return None
    return min(
        candidates, key=lambda r: (r.scope != RewriteRule.Scope.PERSONAL, -r.confidence, -r.created_at.timestamp())
    )


def rewrite_wins(original: NluResult, rewritten: NluResult) -> bool:
    if rewritten.out_of_scope:
        return False
    return original.out_of_scope or rewritten.confidence >= original.confidence


def apply_rewrite(
    text: str,
    original: NluResult,
    user_id: int,
    understand: Callable[[str], NluResult],
    *,
    allow_global: bool = True,
    allow_personal: bool = True,
) -> tuple[RewriteOutcome | None, NluResult]:
    """Return the rewrite that was tried (or None) and the interpretation to act on.

    allow_global / allow_personal come from the user's experiment arm
    (feedback.experiments.rewrite_layers_for); with both off no rule is looked up.
    """
    if not (allow_global or allow_personal):
        return None, original
    rule = find_rule(text, user_id, allow_global=allow_global, allow_personal=allow_personal)
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
