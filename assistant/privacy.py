"""What the assistant has learned about a person: shown, exported, forgotten.

    what_is_known(user)       preferences (taught, and inferred from which turns), taught concepts
                              and personal rewrite rules, with sources
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
from assistant.skills.liking import inferred
from feedback.models import RewriteRule, Turn
from teaching import preferences
from teaching.models import Concept, InferredPreference, Preference
from teaching.privacy import erased_at, forget_taught

EXPORT_FORMAT = "teachable-assistant/what-you-taught-me/1"


def personal_rules(user: AbstractBaseUser):
    return RewriteRule.objects.filter(user=user, scope=RewriteRule.Scope.PERSONAL).order_by("source_text")


def inferred_with_evidence(user: AbstractBaseUser) -> list[InferredPreference]:
    """What the preference model infers about the user, each with `.because`: what they said in the
    turns behind it (most recent first)."""
    rows = inferred(user.pk)
    said = dict(
        Turn.objects.filter(user=user, pk__in=[t for r in rows for t in r.evidence]).values_list("pk", "raw_text")
    )
    for row in rows:
        row.because = [said[t] for t in row.evidence if t in said]
    return rows


def what_is_known(user: AbstractBaseUser) -> dict:
    return {
        "preferences": preferences.known(user.pk),
        "inferred": inferred_with_evidence(user),
        "concepts": list(Concept.objects.filter(user=user).order_by("name")),
        "rules": list(personal_rules(user)),
        "erased_at": erased_at(user.pk),
    }


def export(user: AbstractBaseUser, now: datetime | None = None, *, include_turns: bool = True) -> dict:
    known = what_is_known(user)
    data = {
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
        "inferred_preferences": [
            {
                "kind": i.kind,
                "value": i.value,
                "probability": i.probability,
                "distribution": i.distribution,
                "model_version": i.model_version,
                "evidence_turns": i.evidence,
                "because_you_said": i.because,
                "computed_at": i.computed_at.isoformat(),
            }
            for i in known["inferred"]
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
    }
    if include_turns:
        data["turns"] = [
            {"at": at.isoformat(), "said": text, "understood": intent, "reply": reply}
            for at, text, intent, reply in Turn.objects.filter(user=user)
            .order_by("created_at", "id")
            .values_list("created_at", "raw_text", "intent", "response")
        ]
    return data


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
    return _teach_as_said(user, preference.kind, text) if preference is not None else (None, "")


def teach_inferred(user: AbstractBaseUser, item_id: int, text: str) -> tuple[Preference | None, str]:
    """Make an inferred preference a taught one, with the value given (checked as if said); returns
    (the taught preference, "") or (None, why not). Not theirs or gone: (None, "")."""
    row = InferredPreference.objects.filter(user=user, pk=item_id).first()
    return _teach_as_said(user, row.kind, text) if row is not None else (None, "")


def _teach_as_said(user: AbstractBaseUser, kind: str, text: str) -> tuple[Preference | None, str]:
    home = Home.objects.filter(owner=user).first()
    words = " ".join(str(text or "").split())[:100]
    value = skill_preferences.canonical(kind, words, home) if words and home else None
    if value is None:
        return None, skill_preferences.unknown_value(kind, words or "that")
    return preferences.remember(user.pk, kind, value, said=words, now=timezone.now()).preference, ""


def forget_one(user: AbstractBaseUser, kind: str, item_id: int) -> bool:
    """Delete one of the user's own items ("preference", "inferred", "concept", "rule"); False if
    there is none. An inferred one is not inferred again from what the user said so far."""
    if kind == "inferred":
        row = InferredPreference.objects.filter(user=user, pk=item_id).first()
        return row is not None and preferences.forget_inferred(user.pk, row.kind, timezone.now()) > 0
    rows = {
        "preference": Preference.objects.filter(user=user),
        "concept": Concept.objects.filter(user=user),
        "rule": personal_rules(user),
    }.get(kind)
    if rows is None:
        return False
    return rows.filter(pk=item_id).delete()[0] > 0
