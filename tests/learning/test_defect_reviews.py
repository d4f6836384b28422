"""The defect model learns from reviewers too: their verdict on a turn replaces its self-label."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from feedback.labels import label_turn, undo
from feedback.models import Feedback, Session, Turn
from learning import defects

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _turn(user, text: str, minutes: int, intent: str = "iot_hue_lightoff") -> Turn:
    at = NOON + timedelta(minutes=minutes)
    session = Session.objects.create(user=user, channel=Session.Channel.WEB, started_at=at)
    return Turn.objects.create(
        session=session, user=user, created_at=at, raw_text=text, asr_text=text, intent=intent,
        response="Done.", nlu_confidence=0.8,
    )  # fmt: skip


def test_a_reviewers_verdict_replaces_the_self_label_and_undoing_it_restores_it(alice):
    reviewer = get_user_model().objects.create_user("rita", is_staff=True)
    disliked = _turn(alice, "lights off in the hall", 0)
    Feedback.objects.create(turn=disliked, kind=Feedback.Kind.THUMBS_UP)  # self-label: fine
    misread = _turn(alice, "turn of the kitchn lights", 10)
    confirmed = _turn(alice, "wake me at seven", 20, intent="alarm_set")
    Feedback.objects.create(turn=confirmed, kind=Feedback.Kind.THUMBS_DOWN)  # self-label: defect
    silent = _turn(alice, "what time is it", 30, intent="datetime_query")

    label_turn(disliked, reviewer, failure_point="execute")
    label_turn(misread, reviewer, intent="iot_hue_lightoff", slots_text="room = kitchn")
    confirmed_label = label_turn(confirmed, reviewer, intent="alarm_set")
    rows = defects.load_turns({"user": alice})
    verdict = dict(zip(rows.ids.tolist(), rows.self_label.tolist(), strict=True))
    assert verdict[disliked.pk] == defects.DEFECT  # the stage that failed was named
    assert verdict[misread.pk] == defects.DEFECT  # read otherwise: the slot the NLU missed
    assert verdict[confirmed.pk] == defects.FINE  # the reading confirmed
    assert silent.pk in verdict and rows.reviewed == 3

    undo(confirmed_label, reviewer)
    rows = defects.load_turns({"user": alice})
    assert dict(zip(rows.ids.tolist(), rows.self_label.tolist(), strict=True))[confirmed.pk] == defects.DEFECT
    assert rows.reviewed == 2
