"""The simulated staff reviewer labels where the likeliest failures failed, through the product's labelling;
the report scores the product's failure points on the turns nobody labelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from feedback.models import Label, Session, Turn
from simulator.report import failure_point_accuracy
from simulator.reviewer import review

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_failure_points_are_scored_on_truly_failed_turns_with_an_interval():
    turns = [
        {"turn_id": 1, "met": False, "failure_point": "asr"},
        {"turn_id": 2, "met": False, "failure_point": "nlu"},
        {"turn_id": 3, "met": False, "failure_point": "nlu"},
        {"turn_id": 4, "met": False, "failure_point": "unsupported"},
        {"turn_id": 5, "met": True, "failure_point": "correct"},
        {"turn_id": 6, "met": False, "failure_point": "resolve"},  # no point stored: counts against coverage
    ]
    scored = failure_point_accuracy(turns, {1: "asr", 2: "nlu", 3: "asr", 4: "none", 5: "nlu"})
    assert scored["accuracy"] == 0.75 and scored["n"] == 4 and scored["coverage"] == 0.8
    assert scored["recall"] == {
        "asr": {"recall": 1.0, "n": 1},
        "nlu": {"recall": 0.5, "n": 2},
        "none": {"recall": 1.0, "n": 1},
    }
    low, high = scored["accuracy_ci"]
    assert low < 0.75 < high
    assert failure_point_accuracy(turns, None) is None
    assert failure_point_accuracy(turns, {})["accuracy"] is None


@pytest.mark.django_db
def test_the_reviewer_labels_the_likeliest_failures_and_skips_what_went_well():
    user = get_user_model().objects.create_user("sim-r-u0000")
    other = get_user_model().objects.create_user("someone")
    session = Session.objects.create(user=user, channel=Session.Channel.SIMULATOR, started_at=NOON)

    def turn(p: float, who=user) -> Turn:
        return Turn.objects.create(
            session=session, user=who, created_at=NOON + timedelta(seconds=p * 100), raw_text="x", defect_probability=p
        )

    likeliest, went_well, second, third, unlikely = turn(0.99), turn(0.95), turn(0.9), turn(0.8), turn(0.1)
    not_ours = turn(0.97, who=other)
    truth = {
        likeliest.pk: "asr",
        went_well.pk: "correct",
        second.pk: "unsupported",
        third.pk: "nlu",
        unlikely.pk: "nlu",
    }
    assert review("r", truth, 2) == 2
    labels = {label.turn_id: label for label in Label.objects.all()}
    assert {k: v.failure_point for k, v in labels.items()} == {likeliest.pk: "asr", second.pk: "none"}
    assert labels[likeliest.pk].reviewer.is_staff and labels[likeliest.pk].intent == ""
    assert review("r", truth, 5) == 1  # the next in line; labelled turns are not labelled again
    assert set(Label.objects.values_list("turn_id", flat=True)) == {likeliest.pk, second.pk, third.pk}
    assert not_ours.labels.count() == 0 and review("r", truth, 0) == 0

    # Once the model stored failure points, the reviewer takes the queue of those it is least sure of.
    sure, unsure = turn(0.7), turn(0.6)
    Turn.objects.filter(pk=sure.pk).update(failure_point="nlu", failure_point_confidence=0.95)
    Turn.objects.filter(pk=unsure.pk).update(failure_point="nlu", failure_point_confidence=0.4)
    truth.update({sure.pk: "nlu", unsure.pk: "asr"})
    assert review("r", truth, 1) == 1
    assert unsure.labels.get().failure_point == "asr" and not sure.labels.exists()
