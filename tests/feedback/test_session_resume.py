"""Which session a new page's first turn joins (feedback.models.Session.resumable)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import Session, Turn

pytestmark = pytest.mark.django_db


def turn_in(session: Session, at) -> Turn:
    return Turn.objects.create(session=session, user=session.user, created_at=at, raw_text="hi", response="Hello!")


def test_only_a_recent_conversation_with_the_same_device_and_channel_goes_on(alice, bob, settings):
    settings.SESSION_RESUME_MINUTES = 30
    now = timezone.now()
    kitchen, bedroom = alice.home.devices.filter(kind="speaker").order_by("name")[:2]
    web = Session.objects.create(user=alice, device=kitchen, channel=Session.Channel.WEB, started_at=now)
    turn_in(web, now - timedelta(minutes=10))
    assert Session.resumable(alice, kitchen, Session.Channel.WEB, now) == web
    assert Session.resumable(alice, bedroom, Session.Channel.WEB, now) is None  # another device
    assert Session.resumable(alice, kitchen, Session.Channel.API, now) is None  # another entry point
    assert Session.resumable(bob, kitchen, Session.Channel.WEB, now) is None  # someone else
    assert Session.resumable(alice, kitchen, Session.Channel.WEB, now + timedelta(minutes=25)) is None  # too long ago
    settings.SESSION_RESUME_MINUTES = 0
    assert Session.resumable(alice, kitchen, Session.Channel.WEB, now) is None
