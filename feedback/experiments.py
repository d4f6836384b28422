"""Experiment assignment: which arm of an A/B test a user is in, and what that arm changes.

The arm comes from an operator's override (ExperimentAssignment) if there is one,
else from a stable hash: sha256("<experiment name>:<user key>") mapped to [0, 1)
and cut by the arms' weights. The user key is the username rather than the
numeric id so that a simulated population, recreated in another database (or
after a rerun), lands in the same arms: the benchmark must be reproducible.
Python's hash() is salted per process and would change the split every run.

Today one product setting is under test: which rewrite layers fire
(`rewrite_layers_for`). Arms carry {"global_rewrites": bool, "personal_rewrites": bool}.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from feedback.models import Experiment, ExperimentAssignment

# The standard arms of a rewrite experiment; they differ only in the rewrite config.
REWRITE_ARMS: dict[str, dict[str, bool]] = {
    "control": {"global_rewrites": False, "personal_rewrites": False},
    "global": {"global_rewrites": True, "personal_rewrites": False},
    "global+personal": {"global_rewrites": True, "personal_rewrites": True},
}
REWRITE_KEYS = ("global_rewrites", "personal_rewrites")


@dataclass(frozen=True)
class Arm:
    experiment: str
    name: str
    config: dict[str, Any]
    overridden: bool = False


@dataclass(frozen=True)
class RewriteLayers:
    global_rewrites: bool = True
    personal_rewrites: bool = True


def user_key(user: AbstractBaseUser) -> str:
    return user.get_username()


def bucket(experiment_name: str, key: str) -> float:
    """A stable number in [0, 1) for (experiment, user)."""
    digest = hashlib.sha256(f"{experiment_name}:{key}".encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15)


def validate_arms(arms: Any) -> list[dict[str, Any]]:
    """Check an arms list; return it with weights filled in. Raises ValueError saying what is wrong."""
    if not isinstance(arms, list) or not arms:
        raise ValueError("`arms` must be a non-empty list of {name, config, weight?}.")
    names: list[str] = []
    cleaned = []
    for arm in arms:
        if not isinstance(arm, dict) or not isinstance(arm.get("name"), str) or not arm["name"].strip():
            raise ValueError("Each arm needs a `name` string.")
        config = arm.get("config", {})
        if not isinstance(config, dict):
            raise ValueError(f"The config of arm {arm['name']!r} must be an object.")
        weight = arm.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise ValueError(f"The weight of arm {arm['name']!r} must be a positive number.")
        if arm["name"] in names:
            raise ValueError(f"Arm {arm['name']!r} appears twice.")
        names.append(arm["name"])
        cleaned.append({"name": arm["name"], "config": config, "weight": weight})
    return cleaned


def rewrite_arms(names: list[str]) -> list[dict[str, Any]]:
    """The standard rewrite arms, by name (control, global, global+personal)."""
    unknown = [n for n in names if n not in REWRITE_ARMS]
    if unknown:
        raise ValueError(f"Unknown arm(s) {', '.join(unknown)}; known: {', '.join(REWRITE_ARMS)}.")
    return [{"name": n, "config": dict(REWRITE_ARMS[n]), "weight": 1} for n in names]


def ensure_experiment(
    name: str, arms: list[dict[str, Any]], *, username_prefix: str = "", description: str = ""
) -> Experiment:
    """Create the experiment, or update its arms and audience and activate it."""
    arms = validate_arms(arms)
    with transaction.atomic():
        experiment, created = Experiment.objects.select_for_update().get_or_create(
            name=name,
            defaults={"arms": arms, "description": description, "is_active": True, "username_prefix": username_prefix},
        )
        if not created:
            experiment.arms, experiment.is_active, experiment.username_prefix = arms, True, username_prefix
            experiment.save(update_fields=["arms", "is_active", "username_prefix"])
    return experiment


def _pick(experiment: Experiment, key: str) -> dict[str, Any] | None:
    arms = experiment.arms if isinstance(experiment.arms, list) else []
    arms = [a for a in arms if isinstance(a, dict) and isinstance(a.get("name"), str)]
    if not arms:
        return None
    total = sum(float(a.get("weight", 1) or 0) for a in arms)
    if total <= 0:
        return None
    point = bucket(experiment.name, key) * total
    for arm in arms:
        point -= float(arm.get("weight", 1) or 0)
        if point < 0:
            return arm
    return arms[-1]


def arm_for(user: AbstractBaseUser, experiment: str | Experiment) -> Arm | None:
    """The user's arm in an active experiment (override first), or None."""
    if isinstance(experiment, str):
        experiment = Experiment.objects.filter(name=experiment, is_active=True).first()
    if experiment is None or not experiment.is_active:
        return None
    override = ExperimentAssignment.objects.filter(experiment=experiment, user_id=user.pk).first()
    if override is not None:
        for arm in experiment.arms or []:
            if isinstance(arm, dict) and arm.get("name") == override.arm:
                return Arm(experiment.name, override.arm, dict(arm.get("config") or {}), overridden=True)
        # An override naming an arm that was since removed falls back to the hash.
    if experiment.username_prefix and not user_key(user).startswith(experiment.username_prefix):
        return None  # not in this experiment's audience
    arm = _pick(experiment, user_key(user))
    if arm is None:
        return None
    return Arm(experiment.name, arm["name"], dict(arm.get("config") or {}))


def rewrite_layers_for(user: AbstractBaseUser) -> RewriteLayers:
    """Which rewrite layers fire for this user: both, unless an active experiment says otherwise.

    Only experiments whose arms configure rewrites count; if several do, the first
    by name decides (running two rewrite experiments on one user is an operator error).
    """
    for experiment in Experiment.objects.filter(is_active=True).order_by("name"):
        if not any(
            isinstance(a, dict) and any(k in (a.get("config") or {}) for k in REWRITE_KEYS)
            for a in experiment.arms or []
        ):
            continue
        arm = arm_for(user, experiment)
        if arm is None:
            continue
        return RewriteLayers(
            global_rewrites=bool(arm.config.get("global_rewrites", True)),
            personal_rewrites=bool(arm.config.get("personal_rewrites", True)),
        )
    return RewriteLayers()
