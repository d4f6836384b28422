"""Forgetting what was taught: the teaching side of "delete everything learned about me"
(assistant/privacy.py adds the learners' stores)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from teaching.models import Concept, Erasure, ForgottenPreference, InferredPreference, PendingQuestion, Preference


def erased_at(user_id: int) -> datetime | None:
    """When the user last had everything learned about them forgotten, if ever."""
    return Erasure.objects.filter(user_id=user_id).values_list("erased_at", flat=True).first()


def erasures() -> dict[int, datetime]:
    """Every user's erasure time (the learners skip what each said before it)."""
    return dict(Erasure.objects.values_list("user_id", "erased_at"))


def forget_taught(user_id: int, now: datetime) -> dict[str, int]:
    """Delete the user's preferences (taught and inferred), concepts and pending questions, and mark
    the erasure (the preference models then skip everything from before it)."""
    with transaction.atomic():
        counts = {
            "preferences": Preference.objects.filter(user_id=user_id).delete()[0],
            "concepts": Concept.objects.filter(user_id=user_id).delete()[0],
            "pending_questions": PendingQuestion.objects.filter(user_id=user_id).delete()[0],
            # Every version's rows: a rollback must not bring them back.
            "inferred_preferences": InferredPreference.objects.filter(user_id=user_id).delete()[0],
            "forgotten_preferences": ForgottenPreference.objects.filter(user_id=user_id).delete()[0],
        }
        Erasure.objects.update_or_create(user_id=user_id, defaults={"erased_at": now})
    return counts
