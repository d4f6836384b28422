"""feedback.reactions: barge-ins and thumbs of many turns, as every learner reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedback import reactions
from feedback.models import BargeIn, Feedback, Session, Turn
from feedback.reactions import Reactions


@pytest.mark.django_db
def test_reactions_keep_the_earliest_barge_in_the_latest_thumbs_and_every_thumbs_down(alice, monkeypatch):
    monkeypatch.setattr(reactions, "CHUNK", 2)  # more turns than one query takes
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    session = Session.objects.create(user=alice, channel="web", started_at=at)
    turns = [Turn.objects.create(session=session, user=alice, created_at=at, raw_text=f"turn {k}") for k in range(5)]
    cut, changed_mind, liked, _no_reaction, elsewhere = turns
    BargeIn.objects.create(turn=cut, offset_words=6, offset_ms=2000, source=BargeIn.Source.STOP)
    BargeIn.objects.create(turn=cut, offset_words=2, offset_ms=700, source=BargeIn.Source.NEW_MESSAGE)
    Feedback.objects.create(turn=changed_mind, kind=Feedback.Kind.THUMBS_DOWN)
    Feedback.objects.create(turn=changed_mind, kind=Feedback.Kind.THUMBS_UP)
    Feedback.objects.create(turn=liked, kind=Feedback.Kind.THUMBS_UP)
    Feedback.objects.create(turn=elsewhere, kind=Feedback.Kind.THUMBS_DOWN)

    seen = Reactions.of([t.pk for t in turns[:4]] + [cut.pk])  # a repeated id is read once
    assert seen.barge == {cut.pk: (2, 700)}  # the earliest: the fewest words heard
    assert seen.barged == {cut.pk}
    assert seen.latest == {changed_mind.pk: "thumbs_up", liked.pk: "thumbs_up"}
    assert seen.up == {changed_mind.pk, liked.pk}
    assert seen.down == {changed_mind.pk}  # once down stays down; the turn not asked about is not read
    assert Reactions.of([]) == Reactions(barge={}, latest={}, down=set())
