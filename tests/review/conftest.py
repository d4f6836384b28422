"""A staff member and a member of the reviewers group, for every review test."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("sam", password="sam-password-1", is_staff=True)


@pytest.fixture
def reviewer(db, settings):
    user = get_user_model().objects.create_user("rita", password="rita-password-1")
    user.groups.add(Group.objects.get_or_create(name=settings.REVIEWERS_GROUP)[0])
    return user
