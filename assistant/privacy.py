"""What the assistant has learned about a person: shown, exported, forgotten.

    what_is_known(user)       preferences, taught concepts and personal rewrite rules, with sources
    export(user)              all of it (and the turns it came from) as one JSON-able dict
    forget_everything(user)   delete it all, in one transaction, and mark the erasure so the
                              personal learners (online index, mining) skip what came before

Global learning is left alone: a global rule or index entry needs several distinct people
(MINE_MIN_USERS) and names nobody.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from assistant.models import Home
from assistant.skills import preferences as skill_preferences
from feedback.models import RewriteRule, Turn
from teaching import preferences
from teaching.models import Concept, Preference
from teaching.privacy import erased_at, forget_taught

EXPORT_FORMAT = "teachable-assistant/what-you-taught-me/1"


def personal_rules(user: AbstractBaseUser):
    return RewriteRule.objects.filter(user=user, scope=RewriteRule.Scope.PERSONAL).order_by("source_text")


def what_is_known(user: AbstractBaseUser) -> dict:
    return {
        "preferences": preferences.known(user.pk),
        "concepts": list(Concept.objects.filter(user=user).order_by("name")),
        "rules": list(personal_rules(user)),
        "erased_at": erased_at(user.pk),
    }


def export(user: AbstractBaseUser, now: datetime | None = None) -> dict:
    known = what_is_known(user)
    return {
        "format": EXPORT_FORMAT,
        "user": user.get_username(),
        "exported_at": (now or timezone.now()).isoformat(),
        "preferences": [
            {
                "kind": p.kind,
                "value": p.value,
                "said": p.said,
                "source": p.source,
                "confidence": p.confidence,
                "evidence_turns": p.evidence,
                "created_at": p.created_at.isoformat(),
                "updated_at": p.updated_at.isoformat(),
            }
            for p in known["preferences"]
        ],
        "concepts": [
            {
                "name": c.name,
                "definition": c.definition,
                "steps": c.steps,
                "created_at": c.created_at.isoformat(),
                "updated_at": c.updated_at.isoformat(),
            }
            for c in known["concepts"]
        ],
        "personal_rewrite_rules": [
            {
                "said": r.source_text,
                "understood_as": r.target_text,
                "status": r.status,
                "origin": r.origin,
                "confidence": r.confidence,
                "created_at": r.created_at.isoformat(),
            }
            for r in known["rules"]
        ],
        "turns": [
            {"at": at.isoformat(), "said": text, "understood": intent, "reply": reply}
            for at, text, intent, reply in Turn.objects.filter(user=user)
            .order_by("created_at", "id")
            .values_list("created_at", "raw_text", "intent", "response")
        ],
    }


def forget_everything(user: AbstractBaseUser, now: datetime | None = None) -> dict[str, int]:
    """Delete everything learned about `user`; returns how many of each were deleted."""
    now = now or timezone.now()
    with transaction.atomic():
        counts = forget_taught(user.pk, now)
        counts["personal_rewrite_rules"] = personal_rules(user).delete()[0]
    return counts


def own_preference(user: AbstractBaseUser, item_id: int) -> Preference | None:
    return Preference.objects.filter(user=user, pk=item_id).first()


def change_preference(user: AbstractBaseUser, item_id: int, text: str) -> tuple[Preference | None, str]:
    """Give one of the user's preferences a new value, checked as if they had said it; returns (the
    preference, "") or (None, why not). Not theirs or gone: (None, "")."""
    preference = own_preference(user, item_id)
    if preference is None:
        return None, ""
    home = Home.objects.filter(owner=user).first()
    words = " ".join(str(text or "").split())[:100]
    value = skill_preferences.canonical(preference.kind, words, home) if words and home else None
    if value is None:
        return None, skill_preferences.unknown_value(preference.kind, words or "that")
    preference.value, preference.said = value, words
    preference.source, preference.confidence, preference.updated_at = Preference.Source.TAUGHT, 1.0, timezone.now()
    preference.save(update_fields=["value", "said", "source", "confidence", "updated_at"])
    return preference, ""


def forget_one(user: AbstractBaseUser, kind: str, item_id: int) -> bool:
    """Delete one of the user's own items ("preference", "concept", "rule"); False if there is none."""
    rows = {
        "preference": Preference.objects.filter(user=user),
        "concept": Concept.objects.filter(user=user),
        "rule": personal_rules(user),
    }.get(kind)
    if rows is None:
        return False
    return rows.filter(pk=item_id).delete()[0] > 0
