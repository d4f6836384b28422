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
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from assistant.models import Device
from assistant.world import ensure_home
from feedback.experiments import arm_for, ensure_experiment, rewrite_arms
from simulator.data import DEFAULT_TIER, Goal, load_asr_pairs, load_goals
from simulator.drivers import Driver, make_driver
from simulator.noise import NoiseModel, transmit
from simulator.report import build_report
from simulator.truth import judge
from simulator.users import Behaviour, SimUser, make_user

log = logging.getLogger(__name__)

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; fixed so that runs are comparable
# Should an assistant ask "did I answer your question?", the user answers truthfully.
SURVEY_QUESTION = re.compile(r"did (i|that) (answer|help)", re.IGNORECASE)
MS_PER_WORD = 350  # speaking rate of the reply, for barge-in offsets and timing


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
    learn: bool = True
    learning_timeout: float = 3600.0
    truth_path: Path | None = None  # optional JSONL of every turn's ground truth

    def validate(self) -> None:
        if self.users < 1 or self.days < 1 or self.turns_per_user_day < 1:
            raise ValueError("--users, --days and --turns-per-user-day must be at least 1")
        if not self.arms:
            raise ValueError("--arms needs at least one arm")
        if self.unsupported not in ("exclude", "include"):
            raise ValueError("--unsupported is exclude or include")
        if self.tag is not None and not re.fullmatch(r"[A-Za-z0-9_]{1,20}", self.tag):
            raise ValueError("--tag: 1-20 letters, digits or _")

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
            "learn": self.learn,
            "behaviour": self.behaviour.as_dict(),
        }


@dataclass
class Participant:
    sim: SimUser
    user: Any
    arm: str
    device_id: int | None


class ReferenceReader:
    """What the current NLU makes of the words really said (cached until the model changes)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, dict]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def __call__(self, text: str) -> tuple[str, dict]:
        if text not in self._cache:
            from assistant import nlu

            result = nlu.understand(text, None)
            self._cache[text] = (result.intent, dict(result.slots))
        return self._cache[text]


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


def _choose_phrasing(sim: SimUser, goal_pos: int, tried: list[int], rng: random.Random, habit: float) -> int:
    order = sim.phrasing_order[goal_pos]
    if not tried:
        if len(order) == 1 or rng.random() < habit:
            return order[0]
        return order[rng.randrange(1, len(order))]
    for index in order:
        if index not in tried:
            return index
    return tried[-1]  # every phrasing tried: say the last one again


def _user_day(
    part: Participant,
    day: int,
    config: SimConfig,
    goals: list[Goal],
    noise: NoiseModel,
    driver: Driver,
    reader: ReferenceReader,
    records: list[dict],
    episodes: list[dict],
) -> None:
    b = config.behaviour
    sim = part.sim
    rng = random.Random(f"day:{config.seed}:{sim.index}:{day}")
    day_start = config.start + timedelta(days=day - 1)
    budget = config.turns_per_user_day
    starts = sorted(rng.uniform(b.day_start_h * 3600, b.day_end_h * 3600) for _ in range(budget))
    for start_s in starts:
        if budget <= 0:
            break
        goal_pos = sim.pick_goal(rng)
        goal = goals[goal_pos]
        now = day_start + timedelta(seconds=start_s)
        tried: list[int] = []
        session_id = None
        previous: dict | None = None
        move = "first"
        met = False
        attempts = 0
        while budget > 0:
            if move == "repeat" and tried:
                phrasing_index = tried[-1]
            else:
                phrasing_index = _choose_phrasing(sim, goal_pos, tried, rng, b.habit)
            phrasing = goal.phrasings[phrasing_index]
            heard = transmit(phrasing.sentence, noise, rng, noisy=sim.noisy, noise_level=sim.noise_level)
            turn = driver.turn(part.user, heard.text, device_id=part.device_id, session_id=session_id, now=now)
            session_id = turn["session"]
            budget -= 1
            attempts += 1
            tried.append(phrasing_index)
            truth = judge(turn, goal, phrasing, reader)
            response_words = len((turn.get("response") or "").split())
            record = {
                "day": day,
                "arm": part.arm,
                "user": sim.index,
                "goal": goal.goal_id,
                "supported": goal.supported,
                "attempt": attempts,
                "move": move,  # first, rephrase or repeat
                "phrasing": phrasing_index,
                "channel": heard.source,
                "rephrase_of": previous["turn_id"] if previous else None,
                "turn_id": turn["turn_id"],
                "at": now.isoformat(),
                **truth.as_dict(),
                "barge_in": False,
                "feedback": None,
            }
            records.append(record)
            reply_ms = response_words * MS_PER_WORD
            if truth.met:
                met = True
                if rng.random() < b.thumbs_up:
                    driver.feedback(part.user, turn["turn_id"], "thumbs_up", now + timedelta(milliseconds=reply_ms))
                    record["feedback"] = "thumbs_up"
            else:
                if response_words and rng.random() < b.barge_in:
                    words = min(response_words, rng.randint(1, 4))
                    reply_ms = words * MS_PER_WORD
                    driver.barge_in(part.user, turn["turn_id"], words, reply_ms, now + timedelta(milliseconds=reply_ms))
                    record["barge_in"] = True
                if rng.random() < b.thumbs_down:
                    driver.feedback(part.user, turn["turn_id"], "thumbs_down", now + timedelta(milliseconds=reply_ms))
                    record["feedback"] = "thumbs_down"
            if SURVEY_QUESTION.search(turn.get("response") or "") and record["feedback"] is None:
                kind = "thumbs_up" if truth.met else "thumbs_down"  # the truthful answer
                driver.feedback(part.user, turn["turn_id"], kind, now + timedelta(milliseconds=reply_ms))
                record["feedback"] = kind
            if met or attempts >= b.max_attempts or budget <= 0:
                break
            move = rng.choices(["rephrase", "repeat", "give_up"], weights=[b.rephrase, b.repeat, b.give_up], k=1)[0]
            if move == "give_up":
                break
            now += timedelta(milliseconds=reply_ms) + timedelta(seconds=rng.uniform(b.retry_min_s, b.retry_max_s))
            previous = record
        episodes.append(
            {
                "day": day,
                "arm": part.arm,
                "user": sim.index,
                "goal": goal.goal_id,
                "supported": goal.supported,
                "met": met,
                "attempts": attempts,
            }
        )


def _detected_rephrases(config: SimConfig, learning: list[dict]) -> set[tuple[int, int]] | None:
    """Run the rephrase-detection learning step once more; the simulated users' links, or None if it failed."""
    from feedback.models import Rephrase
    from learning.cycle import LEARNING_STEPS, run_learning_cycle
    from learning.models import Job

    steps = [s for s in LEARNING_STEPS if s.name == "rephrases"]
    if not steps:
        return None
    t0 = time.monotonic()
    cycle = run_learning_cycle(sync=config.sync, timeout=config.learning_timeout, steps=steps)
    learning.append({"after_day": config.days, "seconds": round(time.monotonic() - t0, 2), "steps": cycle})
    if cycle["rephrases"]["status"] != Job.Status.DONE:
        return None
    rows = Rephrase.objects.filter(second__user__username__startswith=f"sim-{config.run_tag}-")
    return set(rows.values_list("first_id", "second_id"))


def run_simulation(config: SimConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the whole simulation and return the report."""
    from learning.cycle import run_learning_cycle

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
    setup_s = time.monotonic() - started
    records: list[dict] = []
    episodes: list[dict] = []
    learning: list[dict] = []
    day_seconds: list[float] = []
    reader = ReferenceReader()
    try:
        for day in range(1, config.days + 1):
            t0 = time.monotonic()
            for part in participants:
                _user_day(part, day, config, goals, noise, driver, reader, records, episodes)
            day_seconds.append(round(time.monotonic() - t0, 2))
            turns_today = sum(1 for r in records if r["day"] == day)
            say(f"day {day}: {turns_today} turns in {day_seconds[-1]:.1f}s")
            if config.learn and day < config.days:
                # Day d+1 must see what was learned from days 1..d.
                t1 = time.monotonic()
                cycle = run_learning_cycle(sync=config.sync, timeout=config.learning_timeout)
                reader.clear()
                learning.append({"after_day": day, "seconds": round(time.monotonic() - t1, 2), "steps": cycle})
                say(f"learning after day {day}: " + ", ".join(f"{k}={v['status']}" for k, v in cycle.items()))
        predicted_links = None
        if config.learn:
            # One more pass of the product's rephrase detector (the learning step itself), so the
            # last day's turns are scored too; its Rephrase rows are compared with the true links.
            predicted_links = _detected_rephrases(config, learning)
    finally:
        driver.close()
    report = build_report(config, records, episodes, all_goals, goals, predicted_links)
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
