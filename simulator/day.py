"""One simulated user's day: goals brought, words heard, reactions to the replies.

run.py runs every user's days (in this process, or split across processes by
workers.py); both call user_day() here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from simulator.data import Goal
from simulator.drivers import Driver
from simulator.noise import NoiseModel, transmit
from simulator.teaching import SURVEY_QUESTION, teaching_day
from simulator.truth import judge
from simulator.users import SimUser

MS_PER_WORD = 350  # speaking rate of the reply, for barge-in offsets and timing


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
        self._version: str | None = None

    def clear(self) -> None:
        self._cache.clear()

    def follow_model(self) -> None:
        """Forget what an earlier model read, if another one serves now."""
        from assistant.nlu import NLU_MODELS

        active = NLU_MODELS.active_version()
        version = active.version if active else None
        if version != self._version:
            self._version = version
            self.clear()

    def __call__(self, text: str) -> tuple[str, dict]:
        if text not in self._cache:
            from assistant import nlu

            result = nlu.understand(text, None)
            self._cache[text] = (result.intent, dict(result.slots))
        return self._cache[text]


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


def user_day(
    part: Participant,
    day: int,
    config: Any,  # simulator.run.SimConfig
    goals: list[Goal],
    noise: NoiseModel,
    driver: Driver,
    reader: ReferenceReader,
    records: list[dict],
    episodes: list[dict],
) -> None:
    b = config.behaviour
    sim = part.sim
    teaching_day(part, day, config, driver, records)  # before the goals: probes, teaching, routines
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
            said = phrasing.sentence
            if sim.own_names and move == "first" and rng.random() < b.own_name_first:
                said = sim.in_own_words(said)  # a rephrase after a failure uses the usual name
            heard = transmit(said, noise, rng, noisy=sim.noisy, noise_level=sim.noise_level, voice=sim.voice)
            turn = driver.turn(part.user, heard.text, device_id=part.device_id, session_id=session_id, now=now)
            session_id = turn["session"]
            budget -= 1
            attempts += 1
            tried.append(phrasing_index)
            truth = judge(turn, goal, phrasing, reader, said=said)
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
                "prompted": bool(SURVEY_QUESTION.search(turn.get("response") or "")),
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
