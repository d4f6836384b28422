"""Who may review: staff, and members of the REVIEWERS_GROUP group (who label, but do not promote
models). Everyone else is refused every review page and action."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def can_review(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff) or user.groups.filter(name=settings.REVIEWERS_GROUP).exists()


def can_promote(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Promote or roll back a model, start a learning cycle: staff only (reviewers label, no more)."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)
