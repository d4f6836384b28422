"""Experiment assignment (stable hash, overrides, audience) and the rewrite stage obeying the arm."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from assistant.pipeline.turn import handle_turn
from feedback.experiments import (
    RewriteLayers,
    arm_for,
    bucket,
    ensure_experiment,
    rewrite_arms,
    rewrite_layers_for,
    validate_arms,
)
from feedback.models import Experiment, ExperimentAssignment, RewriteRule

pytestmark = pytest.mark.django_db
ARMS = ["control", "global", "global+personal"]


def _users(n, prefix="u"):
    User = get_user_model()
    return [User.objects.create_user(f"{prefix}{i}") for i in range(n)]


def test_bucket_is_stable_and_uniform_enough():
    assert bucket("exp", "alice") == bucket("exp", "alice")
    assert bucket("exp", "alice") != bucket("other", "alice")
    values = [bucket("exp", f"user{i}") for i in range(3000)]
    assert all(0 <= v < 1 for v in values)
    assert 0.3 < sum(v < 1 / 3 for v in values) / 3000 < 0.37


def test_arm_for_is_stable_and_splits_users():
    ensure_experiment("rw", rewrite_arms(ARMS))
    users = _users(60)
    first = [arm_for(u, "rw").name for u in users]
    assert first == [arm_for(u, "rw").name for u in users]
    assert set(first) == set(ARMS)


def test_override_wins_and_inactive_or_unknown_experiment_gives_none():
    exp = ensure_experiment("rw", rewrite_arms(ARMS))
    (user,) = _users(1)
    hashed = arm_for(user, "rw").name
    other = next(a for a in ARMS if a != hashed)
    ExperimentAssignment.objects.create(experiment=exp, user=user, arm=other)
    arm = arm_for(user, "rw")
    assert (arm.name, arm.overridden) == (other, True)
    assert arm_for(user, "nope") is None
    Experiment.objects.filter(pk=exp.pk).update(is_active=False)
    assert arm_for(user, "rw") is None
    assert rewrite_layers_for(user) == RewriteLayers(True, True)


def test_audience_prefix_limits_the_experiment():
    ensure_experiment("rw", rewrite_arms(["control"]), username_prefix="sim-")
    inside, outside = get_user_model().objects.create_user("sim-a"), get_user_model().objects.create_user("real")
    assert rewrite_layers_for(inside) == RewriteLayers(False, False)
    assert rewrite_layers_for(outside) == RewriteLayers(True, True)  # real users are not touched


def test_bad_arms_are_rejected():
    for bad in ([], [{"name": ""}], [{"name": "a"}, {"name": "a"}], [{"name": "a", "weight": 0}], "x"):
        with pytest.raises(ValueError):
            validate_arms(bad)
    with pytest.raises(ValueError):
        rewrite_arms(["control", "everything"])


@pytest.mark.parametrize("arm, fires", [("control", False), ("global", True), ("global+personal", True)])
def test_rewrite_stage_respects_the_arm(nlu_model, alice, arm, fires):
    ensure_experiment("rw", rewrite_arms([arm]))
    RewriteRule.objects.create(
        source_text="make it bright", target_text="turn on the lights", status=RewriteRule.Status.ACTIVE
    )
    turn = handle_turn(alice, text="make it bright")
    assert (turn.rewrite is not None) == fires


def test_personal_rules_only_in_the_personal_arm(nlu_model, alice):
    ensure_experiment("rw", rewrite_arms(["global"]))
    RewriteRule.objects.create(
        source_text="make it bright",
        target_text="turn on the lights",
        scope=RewriteRule.Scope.PERSONAL,
        user=alice,
        status=RewriteRule.Status.ACTIVE,
    )
    assert handle_turn(alice, text="make it bright").rewrite is None
    ensure_experiment("rw", rewrite_arms(["global+personal"]))
    assert handle_turn(alice, text="make it bright").rewrite["scope"] == "personal"
