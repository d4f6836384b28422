"""A simulated staff reviewer: before each learning cycle, says where some likely failures failed.

A reviewer who hears the recording knows what was said and where a turn went wrong. The simulator plays
that reviewer with its ground truth, through the product's own labelling (feedback.labels.label_turn, what
/review/ calls), on the first `per_cycle` not yet labelled turns of this run's users in the inbox's queue of
the failures whose failure point the model is least sure of (review.turns.likely_defects, UNSURE; the
likeliest failures while there is no model). The product learns from those labels as from any reviewer's
(learning/failure_points.py); no learner reads the truth. A turn the truth says went well gets no label, as
a reviewer who finds nothing wrong labels nothing; the report scores the failure-point model on the turns
nobody labelled. Around each turn it labels, the reviewer also says whether the turns just before and after
it were retries (feedback.labels.label_rephrase), as the review page asks, and judges as many pairs drawn at
random (review's "Retries to judge", feedback.labels.random_pairs): the rephrase detector's verdicts, the
random ones those its gate measures on.
"""

from __future__ import annotations

import random

from django.contrib.auth import get_user_model

from feedback.labels import label_rephrase, label_turn, neighbours, random_pairs
from feedback.models import Label, RephraseLabel, Turn
from review.turns import UNSURE, likely_defects

# The simulator's truth (simulator/truth.py) in the product's failure points.
AS_LABEL = {
    "asr": Label.FailurePoint.ASR,
    "nlu": Label.FailurePoint.NLU,
    "rewrite": Label.FailurePoint.REWRITE,
    "resolve": Label.FailurePoint.RESOLVE,
    "execute": Label.FailurePoint.EXECUTE,
    "unsupported": Label.FailurePoint.NONE,
}


def reviewer_for(run_tag: str):
    """The run's reviewer: a staff account outside the simulated users' name prefix."""
    user, _ = get_user_model().objects.get_or_create(username=f"simreviewer-{run_tag}", defaults={"is_staff": True})
    return user


def review(
    run_tag: str, truth_by_turn: dict[int, str], per_cycle: int, retry_of: dict[int, int | None] | None = None
) -> int:
    """Label where up to `per_cycle` of this run's users' failures in the queue failed, and, with `retry_of`
    ({turn id: the turn it truly retried, or None}, the goals' turns), whether the turns just around each were
    retries; returns how many turns were labelled."""
    if per_cycle <= 0:
        return 0
    reviewer = reviewer_for(run_tag)
    # The inbox's queue of the likely failures whose failure point the model is least sure of (until there is a
    # model, the likeliest failures): a reviewer's label teaches the model most there.
    ours = {"user__username__startswith": f"sim-{run_tag}-", "labels__isnull": True}
    inbox = likely_defects(order=UNSURE).filter(**ours)
    if not inbox.exists():
        inbox = likely_defects().filter(**ours)
    if retry_of is not None:
        judge_random_pairs(run_tag, reviewer, retry_of, per_cycle)
    done = 0
    for turn in inbox[: per_cycle * 3]:
        point = AS_LABEL.get(truth_by_turn.get(turn.pk, ""))
        if point is None:
            continue
        label_turn(turn, reviewer, failure_point=point)
        if retry_of is not None:
            judge_neighbours(turn, reviewer, retry_of)
        done += 1
        if done >= per_cycle:
            break
    return done


def judge_neighbours(turn: Turn, reviewer, retry_of: dict[int, int | None]) -> int:
    """Say whether each pair of `turn` and the user's turns just before or after it (feedback.labels.neighbours:
    the pairs the rephrase detector judges) was a retry, where the truth knows both turns; returns how many
    verdicts were stored."""
    before, after = neighbours(turn)
    stored = 0
    for first, second in [(first, turn) for first in before] + [(turn, second) for second in after]:
        if first.pk not in retry_of or second.pk not in retry_of:
            continue  # a teaching probe or an answer: the truth does not say
        if RephraseLabel.objects.filter(first=first, second=second).exists():
            continue
        label_rephrase(first, second, reviewer, is_rephrase=retry_of[second.pk] == first.pk)
        stored += 1
    return stored


def judge_random_pairs(run_tag: str, reviewer, retry_of: dict[int, int | None], count: int) -> int:
    """Judge up to `count` pairs of this run's users' turns drawn at random, as review's queue of retries to
    judge shows them, where the truth knows both turns; returns how many verdicts were stored."""
    ours = Turn.objects.filter(user__username__startswith=f"sim-{run_tag}-")
    rng = random.Random(f"retries:{run_tag}:{RephraseLabel.objects.count()}")
    stored = 0
    for first, second in random_pairs(count, turns=ours, rng=rng):
        if first.pk not in retry_of or second.pk not in retry_of:
            continue  # a teaching probe or an answer: the truth does not say
        label_rephrase(first, second, reviewer, is_rephrase=retry_of[second.pk] == first.pk, sampled=True)
        stored += 1
    return stored
