"""Records read as what they are in the admin and the logs (not "BargeIn object (1)")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assistant.models import ListItem, MediaPlayer, Timer
from assistant.pipeline.turn import handle_turn
from feedback.models import BargeIn, Feedback


@pytest.mark.django_db
def test_every_record_a_reviewer_opens_has_a_readable_name(alice):
    turn = handle_turn(alice, text="what time is it")
    barge_in = BargeIn.objects.create(turn=turn, offset_words=3, offset_ms=900, source=BargeIn.Source.STOP)
    feedback = Feedback.objects.create(turn=turn, kind=Feedback.Kind.THUMBS_DOWN)
    home = alice.home
    timer = Timer(home=home, kind=Timer.Kind.TIMER, label="5 minutes", fires_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    item = ListItem(home=home, list_name="shopping", text="milk")
    player = MediaPlayer(home=home, status="playing")

    assert str(barge_in) == f"Stop button at word 3 of turn {turn.pk}"
    assert str(feedback) == f"Thumbs down on turn {turn.pk}"
    assert str(timer) == "Timer 5 minutes at 2026-12-03 09:00"
    assert str(item) == "milk (on the shopping list)"
    assert str(player) == f"Media player of home {home.pk} (playing)"
    for record in (barge_in, feedback, timer, item, player):
        assert "object (" not in str(record)
