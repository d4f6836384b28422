"""feedback.store: recording barge-ins and thumbs, with ownership and validation."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from feedback.models import BargeIn, Feedback, Session, Turn
from feedback.store import current_feedback, record_barge_in, record_feedback


def make_turn(user, response="It is sunny in London today") -> Turn:
    now = timezone.now()
    session = Session.objects.create(user=user, channel=Session.Channel.WEB, started_at=now)
    return Turn.objects.create(session=session, user=user, created_at=now, raw_text="weather", response=response)


@pytest.mark.django_db
class TestRecordBargeIn:
    def test_it_stores_where_the_reply_was_cut(self, alice):
        turn = make_turn(alice)
        barge_in = record_barge_in(turn, 2, 640, "stop", user=alice)
        assert BargeIn.objects.get() == barge_in
        assert barge_in.as_dict() == {"offset_words": 2, "offset_ms": 640, "source": "stop"}

    def test_it_accepts_a_cut_before_the_first_word_and_at_the_last(self, alice):
        turn = make_turn(alice, "one two three")
        record_barge_in(turn, 0, 0, "new_message")
        record_barge_in(turn, 3, 1000, "api")
        assert turn.barge_ins.count() == 2

    def test_it_validates_ownership(self, alice, bob):
        turn = make_turn(alice)
        with pytest.raises(PermissionDenied):
            record_barge_in(turn, 1, 100, "stop", user=bob)
        assert not BargeIn.objects.exists()

    @pytest.mark.parametrize(
        ("words", "ms", "source"),
        [(1, 100, "shout"), (-1, 100, "stop"), (1, -5, "stop"), (7, 100, "stop"), (True, 1, "stop"), (1.5, 1, "stop")],
    )
    def test_it_refuses_offsets_and_sources_that_make_no_sense(self, alice, words, ms, source):
        turn = make_turn(alice)  # six words
        with pytest.raises(ValueError):
            record_barge_in(turn, words, ms, source)
        assert not BargeIn.objects.exists()


@pytest.mark.django_db
class TestRecordFeedback:
    def test_it_stores_a_thumb(self, alice):
        turn = make_turn(alice)
        feedback = record_feedback(turn, alice, "thumbs_up")
        assert Feedback.objects.get() == feedback
        assert current_feedback(turn) == "thumbs_up"

    def test_the_same_thumb_twice_is_one_row_and_a_change_of_mind_is_another(self, alice):
        turn = make_turn(alice)
        record_feedback(turn, alice, "thumbs_up")
        record_feedback(turn, alice, "thumbs_up")
        record_feedback(turn, alice, "thumbs_down")
        assert list(turn.feedback.order_by("id").values_list("kind", flat=True)) == ["thumbs_up", "thumbs_down"]
        assert current_feedback(turn) == "thumbs_down"

    def test_it_validates_ownership(self, alice, bob):
        turn = make_turn(alice)
        with pytest.raises(PermissionDenied):
            record_feedback(turn, bob, "thumbs_down")
        with pytest.raises(PermissionDenied):
            record_feedback(turn, None, "thumbs_down")
        assert not Feedback.objects.exists()

    def test_it_refuses_an_unknown_kind(self, alice):
        turn = make_turn(alice)
        with pytest.raises(ValueError):
            record_feedback(turn, alice, "meh")
        assert current_feedback(turn) is None
