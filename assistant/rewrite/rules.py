"""Stage 3, rewrite: replace an utterance known to fail by one known to work.

Precomputed rules (mined from rephrases, taught, or written by staff) live in
feedback.RewriteRule. A personal rule beats a global one. Without a rule, a risky
turn may be rewritten online (assistant/rewrite/online.py). The rewritten text
goes through the NLU again, and the rewrite is kept only if its interpretation
wins (rewrite_wins): in scope, and, unless there is evidence that the words fail
as they are read, at least as confident as the original.

For the words of a person whose turns the fire model judges, the sentence embedding online
rewriting needs is started before the NLU, on another thread (early_embedding): torch runs
outside the GIL, so the two overlap on two cores and the rewrite stage mostly finds it done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q

from assistant.registry import ModelUnavailable
from assistant.rewrite.online import REWRITE_INDEXES, Query
from assistant.turns import NluResult
from feedback.models import RewriteRule
from teaching.privacy import erased_at


@dataclass(frozen=True)
class RewriteOutcome:
    rule_id: int | None  # None for an online rewrite
    scope: str  # global or personal
    source_text: str
    target_text: str
    kept: bool
    original_intent: str
    original_confidence: float
    rewritten_intent: str
    rewritten_confidence: float
    layer: str = ""  # rule-global, rule-personal, online-global, online-personal
    score: float | None = None  # the ranker's, for an online rewrite
    fire_probability: float | None = None  # the fire model's, when it decided to try
    index_version: str = ""

    def as_dict(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "scope": self.scope,
            # Whose win/loss posterior its outcome updates (learning/mining.py).
            "layer": self.layer or f"rule-{self.scope}",
            **({"score": round(self.score, 4), "index_version": self.index_version} if self.score is not None else {}),
            **({"fire_probability": round(self.fire_probability, 4)} if self.fire_probability is not None else {}),
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


_EARLY: ThreadPoolExecutor
_EARLY_FREE: threading.BoundedSemaphore


def _new_early_executor() -> None:
    """One embedding at a time beside the turns of a process: under load a turn embeds its own words after the NLU.
    Made again in a forked process (a worker, a simulator process), which has none of its parent's threads: the
    executor it inherited would queue work for a thread that does not exist, and the slot may be held by a turn
    it never saw."""
    global _EARLY, _EARLY_FREE
    _EARLY = ThreadPoolExecutor(max_workers=1, thread_name_prefix="early-embedding")
    _EARLY_FREE = threading.BoundedSemaphore(1)


_new_early_executor()
os.register_at_fork(after_in_child=_new_early_executor)


def early_embedding(
    text: str,
    user_id: int,
    embed: Callable[[str], np.ndarray] | None,
    *,
    allow_global: bool,
    allow_personal: bool,
) -> Callable[[str], np.ndarray] | None:
    """`embed`, already at work on `text` beside the NLU when the fire model will judge this person's words
    (and nothing else is being embedded early): the rewrite stage then waits only for what is left of it.
    Other words, or no early start, are embedded when asked."""
    if embed is None or not (allow_global or allow_personal):
        return embed
    try:
        index = REWRITE_INDEXES.model()
    except ModelUnavailable:
        return embed
    if text in index.known_good or not index.judges(user_id, use_personal=allow_personal):
        return embed
    if not _EARLY_FREE.acquire(blocking=False):
        return embed
    future = _EARLY.submit(embed, text)
    future.add_done_callback(lambda _: _EARLY_FREE.release())

    def early(words: str) -> np.ndarray:
        return future.result() if words == text else embed(words)

    return early


def online_rewrite(
    text: str,
    original: NluResult,
    user_id: int,
    understand: Callable[[str], NluResult],
    embed: Callable[[str], np.ndarray] | None,
    *,
    allow_global: bool,
    allow_personal: bool,
) -> tuple[RewriteOutcome | None, NluResult]:
    """The best candidate for a risky turn (or any turn, once a fire model judges), kept if its reading wins;
    else the original.

    `embed(text)` is the sentence embedding the index was built with (assistant.nlu.sentence_vector)."""
    if embed is None:
        return None, original
    try:
        index = REWRITE_INDEXES.model()
    except ModelUnavailable:
        return None, original
    if (
        allow_personal
        and index.holds(user_id)
        and (erased := erased_at(user_id)) is not None
        and (index.built_at is None or erased > index.built_at)
    ):
        allow_personal = False  # built from what the person said before they had it forgotten
    known_to_fail = index.known_to_fail(text, user_id, use_personal=allow_personal)
    risky = original.out_of_scope or original.confidence < settings.ONLINE_REWRITE_BELOW or known_to_fail
    if (not risky and not index.judges(user_id, use_personal=allow_personal)) or text in index.known_good:
        return None, original  # nothing could fire: leave before the sentence embedding, the stage's largest cost
    query = Query(text=text, vector=embed(text), nlu=original)
    pick = index.best(query, user_id, use_global=allow_global, use_personal=allow_personal, risky=risky)
    if pick is None:
        return None, original
    scope = RewriteRule.Scope.PERSONAL if pick.personal else RewriteRule.Scope.GLOBAL
    # Online candidates were not checked against this reading: one that means the same changes nothing.
    # Evidence that the words fail as they are read (their record, or the fire model's judgement of it)
    # lets a less confident reading win.
    return _try(
        text, pick.entry.text, original, understand, require_new_reading=True,
        fails_as_read=known_to_fail or pick.by_fire_model, rule_id=None, scope=scope, layer=f"online-{scope}",
        score=pick.score, fire_probability=pick.fire_probability, index_version=index.version,
    )  # fmt: skip


def _try(
    text: str,
    target: str,
    original: NluResult,
    understand: Callable[[str], NluResult],
    *,
    require_new_reading: bool = False,
    fails_as_read: bool = False,
    **outcome: Any,
) -> tuple[RewriteOutcome, NluResult]:
    """Read `target` with the NLU; keep it if its reading wins. (What was tried, the reading to act on.)"""
    rewritten = understand(target)
    kept = rewrite_wins(original, rewritten, fails_as_read=fails_as_read)
    if require_new_reading:
        kept = kept and (rewritten.intent, rewritten.slots) != (original.intent, original.slots)
    tried = RewriteOutcome(
        source_text=text,
        target_text=target,
        kept=kept,
        original_intent=original.intent,
        original_confidence=original.confidence,
        rewritten_intent=rewritten.intent,
        rewritten_confidence=rewritten.confidence,
        **outcome,
    )
    return tried, (rewritten if kept else original)


def rewrite_wins(original: NluResult, rewritten: NluResult, *, fails_as_read: bool = False) -> bool:
    """Whether to act on the rewritten reading rather than the original.

    It must be in scope. Where the stored evidence says the words fail as they are read (a rule
    mined, taught or approved for them, or words known to fail), that is enough: the NLU is often
    confidently wrong on exactly those words, so its confidence in the original proves nothing, and
    each rule's or layer's outcomes retire it if it loses (learning/mining.py). Otherwise the
    rewritten reading must be at least as confident as the original."""
    if rewritten.out_of_scope:
        return False
    return fails_as_read or original.out_of_scope or rewritten.confidence >= original.confidence


def apply_rewrite(
    text: str,
    original: NluResult,
    user_id: int,
    understand: Callable[[str], NluResult],
    *,
    embed: Callable[[str], np.ndarray] | None = None,
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
        # No precomputed rule: a risky turn may still be rewritten online (assistant/rewrite/online.py).
        return online_rewrite(
            text, original, user_id, understand, embed, allow_global=allow_global, allow_personal=allow_personal
        )
    return _try(text, rule.target_text, original, understand, fails_as_read=True, rule_id=rule.pk, scope=rule.scope)
