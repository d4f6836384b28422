"""The simulation loop: users bring goals day after day, the system learns between days.

    run_simulation(SimConfig(...)) -> report dict (simulator/report.py)

Determinism: every random draw comes from a random.Random seeded by (seed, user,
day), users are visited in index order, goals and pairs are kept in file order,
and the arm split hashes usernames (feedback/experiments.py), which depend only
on the tag and the index. A rerun with the same tag first deletes the previous
run's simulated users (and with them their turns), so it starts from the same
state; learned artifacts (NLU versions, rewrite rules) are global and are not reset.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from assistant.models import Device, ModelVersion
from assistant.nlu import NLU_MODELS
from assistant.nlu.context import CONTEXT_MODELS
from assistant.registry import ModelKind, activate_version
from assistant.world import ensure_home
from feedback.experiments import arm_for, ensure_experiment, rewrite_arms
from learning.cycle import LEARNERS, run_learning_cycle, steps_for
from simulator.data import DEFAULT_TIER, Goal, load_asr_pairs, load_goals
from simulator.day import Participant, ReferenceReader, user_day
from simulator.drivers import make_driver
from simulator.noise import NoiseModel
from simulator.report import build_report
from simulator.reviewer import review
from simulator.teaching import inferred_records
from simulator.users import Behaviour, make_user
from simulator.workers import ParticipantRow, UserPool

log = logging.getLogger(__name__)

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; fixed so that runs are comparable


@dataclass
class SimConfig:
    goals: Path
    asr_pairs: Path
    users: int = 200
    days: int = 7
    turns_per_user_day: int = 10
    seed: int = 0
    arms: list[str] = field(default_factory=lambda: ["control", "global", "global+personal"])
    sync: bool = False
    via: str = "inprocess"
    url: str | None = None
    tier: str | None = DEFAULT_TIER
    unsupported: str = "exclude"  # or "include": see simulator/data.py
    behaviour: Behaviour = field(default_factory=Behaviour)
    tag: str | None = None  # usernames sim-<tag>-uNNNN; default s<seed>
    start: datetime = DEFAULT_START
    learning: str = "all"  # which learners run between days: all, none, rewrites, nlu (learning/cycle.py)
    processes: int = 1  # in-process driver only: users are split across this many processes
    learning_timeout: float = 3600.0
    truth_path: Path | None = None  # optional JSONL of every turn's ground truth
    # Failure points a simulated staff reviewer labels before each learning cycle (simulator/reviewer.py).
    reviewer_labels: int = 0

    def validate(self) -> None:
        if self.users < 1 or self.days < 1 or self.turns_per_user_day < 1:
            raise ValueError("--users, --days and --turns-per-user-day must be at least 1")
        if not self.arms:
            raise ValueError("--arms needs at least one arm")
        if self.unsupported not in ("exclude", "include"):
            raise ValueError("--unsupported is exclude or include")
        if self.tag is not None and not re.fullmatch(r"[A-Za-z0-9_]{1,20}", self.tag):
            raise ValueError("--tag: 1-20 letters, digits or _")
        if self.learning not in LEARNERS:
            raise ValueError(f"--learning is one of {', '.join(LEARNERS)}")
        if self.reviewer_labels < 0:
            raise ValueError("--reviewer-labels must be 0 or more")
        if self.processes < 1:
            raise ValueError("--processes must be at least 1")
        if self.processes > 1 and self.via != "inprocess":
            raise ValueError("--processes splits users of the in-process driver only")

    @property
    def run_tag(self) -> str:
        return self.tag or f"s{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "goals": str(self.goals),
            "asr_pairs": str(self.asr_pairs),
            "users": self.users,
            "days": self.days,
            "turns_per_user_day": self.turns_per_user_day,
            "seed": self.seed,
            "arms": list(self.arms),
            "via": self.via,
            "tier": self.tier,
            "unsupported": self.unsupported,
            "tag": self.run_tag,
            "start": self.start.isoformat(),
            "learning": self.learning,
            "reviewer_labels": self.reviewer_labels,
            "behaviour": self.behaviour.as_dict(),
        }


def _prepare_users(config: SimConfig, goals: list[Goal], experiment_name: str) -> list[Participant]:
    User = get_user_model()
    prefix = f"sim-{config.run_tag}-"
    stale = User.objects.filter(username__startswith=prefix)
    if stale.exists():
        log.info("deleting %d simulated users of an earlier run tagged %s", stale.count(), config.run_tag)
        stale.delete()
    participants = []
    for index in range(config.users):
        sim = make_user(index, config.run_tag, goals, config.behaviour, config.seed)
        with transaction.atomic():
            user = User.objects.create_user(sim.username, password=None)
            home = ensure_home(user)
        speaker = (
            Device.objects.filter(home=home, kind=Device.Kind.SPEAKER, room=sim.speaker_room).order_by("pk").first()
            or Device.objects.filter(home=home, kind=Device.Kind.SPEAKER).order_by("pk").first()
        )
        arm = arm_for(user, experiment_name)
        participants.append(Participant(sim, user, arm.name if arm else "default", speaker.pk if speaker else None))
    return participants


def _retries(records: list[dict]) -> dict[int, int | None]:
    """{turn id: the turn it truly retried, or None} of the goals' turns so far, for the simulated reviewer."""
    return {r["turn_id"]: r["rephrase_of"] for r in records if not r.get("teaching") and "rephrase_of" in r}


def _failures(records: list[dict]) -> dict[int, str]:
    """{turn id: true failure point} of the failed requests so far, for the simulated reviewer."""
    return {r["turn_id"]: r["failure_point"] for r in records if not r.get("teaching") and not r["met"]}


def _final_labelling(config: SimConfig, learning: list[dict]) -> dict[str, Any]:
    """After the last day, run the steps that label stored turns once more (rephrase detection,
    the defect model, the review inbox's clusters…), so the last day's turns are scored too; return
    what they stored about the simulated users' turns: {"links": {(first, second)} or None,
    "defects": {turn id: p} or None, "inbox": {"top": [turn ids of each of the 10 first-ranked
    clusters], "clusters": n} or None, "generated": {turn id: (intent, source)} or None, "failure_points":
    {turn id: the failure point the product stored, on turns no reviewer labelled} or None}."""
    from feedback.models import CLUSTER_RANKING, DefectCluster, GeneratedLabel, Rephrase, Turn
    from learning.models import Job

    found: dict[str, Any] = {"links": None, "defects": None, "inbox": None, "generated": None, "failure_points": None}
    steps = [s for s in steps_for(config.learning) if s.labels_turns] if config.learning != "none" else []
    if not steps:
        return found
    t0 = time.monotonic()
    cycle = run_learning_cycle(sync=config.sync, timeout=config.learning_timeout, steps=steps)
    learning.append({"after_day": config.days, "seconds": round(time.monotonic() - t0, 2), "steps": cycle})
    prefix = f"sim-{config.run_tag}-"
    if cycle.get("rephrases", {}).get("status") == Job.Status.DONE:
        rows = Rephrase.objects.filter(second__user__username__startswith=prefix)
        found["links"] = set(rows.values_list("first_id", "second_id"))
    if cycle.get("defects", {}).get("status") == Job.Status.DONE:
        scored = Turn.objects.filter(user__username__startswith=prefix, defect_probability__isnull=False)
        found["defects"] = dict(scored.values_list("id", "defect_probability"))
    if cycle.get("generated_labels", {}).get("status") == Job.Status.DONE:
        rows = GeneratedLabel.objects.filter(turn__user__username__startswith=prefix)
        found["generated"] = {
            turn: (intent, source) for turn, intent, source in rows.values_list("turn_id", "intent", "source")
        }
    if cycle.get("failure_points", {}).get("status") == Job.Status.DONE:
        # What the model concluded, on the turns no reviewer labelled (those it learned from).
        rows = Turn.objects.filter(user__username__startswith=prefix).exclude(failure_point="")
        rows = rows.exclude(labels__failure_point__gt="")
        found["failure_points"] = dict(rows.values_list("id", "failure_point"))
    if cycle.get("defect_clusters", {}).get("status") == Job.Status.DONE:
        # The inbox as a reviewer sees it (review/turns.py ranks the same way), this run's users only.
        ranked = DefectCluster.objects.filter(members__user__username__startswith=prefix).distinct()
        ranked = ranked.order_by(*CLUSTER_RANKING)
        found["inbox"] = {
            "top": [set(c.members.values_list("id", flat=True)) for c in ranked[:10]],
            "clusters": ranked.count(),
        }
    return found


def _restore_nlu(serving: dict[ModelKind, ModelVersion | None]) -> None:
    """Serve again the NLU version (and its context re-ranker) that served when the run began. What
    simulated users taught the NLU is a measurement, not a lesson for real users, and the next run of
    the same seed must start where this one did (the versions it trained stay registered, retired, for
    a look)."""
    for kind, row in serving.items():
        if row is None:
            continue
        active = kind.active_version()
        if active is None or active.pk != row.pk:
            row.refresh_from_db()
            activate_version(row)


def run_simulation(config: SimConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the whole simulation and return the report."""
    config.validate()
    say = progress or (lambda message: log.info("%s", message))
    started = time.monotonic()
    all_goals = load_goals(config.goals, config.tier)
    goals = all_goals if config.unsupported == "include" else [g for g in all_goals if g.supported]
    if not goals:
        raise ValueError("none of the goals has an intent the assistant supports")
    noise = NoiseModel.learn(load_asr_pairs(config.asr_pairs))
    experiment_name = f"sim-{config.run_tag}-rewrites"
    ensure_experiment(
        experiment_name,
        rewrite_arms(config.arms),
        username_prefix=f"sim-{config.run_tag}-",
        description="Created by `manage.py simulate`: rewrite layers per arm for the simulated users.",
    )
    driver = make_driver(config.via, config.url)
    say(f"{len(goals)} goals ({len(all_goals) - len(goals)} unsupported left out), {noise.pairs} ASR pairs")
    participants = _prepare_users(config, goals, experiment_name)
    pool = None
    if config.processes > 1:
        rows = [ParticipantRow(p.sim, p.user.pk, p.arm, p.device_id) for p in participants]
        pool = UserPool(config, connection.settings_dict["NAME"], rows)
    setup_s = time.monotonic() - started
    records: list[dict] = []
    episodes: list[dict] = []
    learning: list[dict] = []
    day_seconds: list[float] = []
    reviewed = 0  # failure points the simulated reviewer labelled
    reader = ReferenceReader()
    serving_nlu = {kind: kind.active_version() for kind in (NLU_MODELS, CONTEXT_MODELS)}
    try:
        for day in range(1, config.days + 1):
            t0 = time.monotonic()
            if pool is not None:
                day_records, day_episodes = pool.run_day(day)
                records += day_records
                episodes += day_episodes
            else:
                for part in participants:
                    user_day(part, day, config, goals, noise, driver, reader, records, episodes)
            day_seconds.append(round(time.monotonic() - t0, 2))
            turns_today = sum(1 for r in records if r["day"] == day)
            say(f"day {day}: {turns_today} turns in {day_seconds[-1]:.1f}s")
            if config.learning != "none" and day < config.days:
                # Day d+1 must see what was learned from days 1..d.
                reviewed += review(config.run_tag, _failures(records), config.reviewer_labels, _retries(records))
                t1 = time.monotonic()
                cycle = run_learning_cycle(sync=config.sync, timeout=config.learning_timeout, learners=config.learning)
                reader.clear()
                learning.append({"after_day": day, "seconds": round(time.monotonic() - t1, 2), "steps": cycle})
                say(f"learning after day {day}: " + ", ".join(f"{k}={v['status']}" for k, v in cycle.items()))
        if config.learning != "none":
            reviewed += review(config.run_tag, _failures(records), config.reviewer_labels, _retries(records))
        labelled = _final_labelling(config, learning)
        # What the product inferred about those who never taught (served on the last day).
        records += inferred_records(participants, config, driver)
    finally:
        driver.close()
        if pool is not None:
            pool.close()
        _restore_nlu(serving_nlu)
    report = build_report(
        config,
        records,
        episodes,
        all_goals,
        goals,
        labelled["links"],
        labelled.get("defects"),
        labelled.get("inbox"),
        labelled.get("generated"),
        labelled.get("failure_points"),
    )
    report["summary"]["reviewer_labels"] = reviewed
    report["run"] = {
        # Everything here varies between runs: compare reports without it.
        "seconds_total": round(time.monotonic() - started, 2),
        "seconds_setup": round(setup_s, 2),
        "seconds_per_day": day_seconds,
        "learning": learning,
        "finished_at": datetime.now(UTC).isoformat(),
    }
    if config.truth_path is not None:
        with open(config.truth_path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
    return report
