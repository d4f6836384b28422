"""Simulated users split across processes, so that a big run is not bound by one core.

With SimConfig.processes > 1 (the in-process driver only), each simulated day is run
by a pool of processes, user i by process i mod N. Every user's day depends only on
(seed, user, day) and on what the product stored and learned before that day, so the
records are the same as in one process; they are merged back in user order.

A worker is a fresh process (spawn: no state copied from the parent, whose database
connection and loaded model must not be shared) that sets Django up on the parent's
database, reads the goals and learns the noise model as the parent did, and keeps its
own loaded NLU model and reference reader for the whole run.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class ParticipantRow:
    """What a worker needs to rebuild a Participant: the user is looked up by id."""

    sim: Any  # simulator.users.SimUser
    user_id: int
    arm: str
    device_id: int | None


def _start_worker(database_name: str, payload: bytes) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    from django.conf import settings

    # The parent's database (under pytest a test database whose name differs from the settings').
    settings.DATABASES["default"]["NAME"] = database_name
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    # Unpickled only now: the config's classes live in modules that need Django set up.
    config, rows = pickle.loads(payload)  # our own parent's objects

    from simulator.data import load_asr_pairs, load_goals
    from simulator.day import Participant, ReferenceReader
    from simulator.drivers import InProcessDriver
    from simulator.noise import NoiseModel

    all_goals = load_goals(config.goals, config.tier)
    users = get_user_model().objects.in_bulk([row.user_id for row in rows])
    _WORKER.update(
        config=config,
        goals=all_goals if config.unsupported == "include" else [g for g in all_goals if g.supported],
        noise=NoiseModel.learn(load_asr_pairs(config.asr_pairs)),
        driver=InProcessDriver(),
        reader=ReferenceReader(),
        participants={row.sim.index: Participant(row.sim, users[row.user_id], row.arm, row.device_id) for row in rows},
    )


def _run_users_day(day: int, indices: list[int]) -> tuple[list[dict], list[dict]]:
    from django.db import close_old_connections

    from simulator.day import user_day

    w = _WORKER
    reader = w["reader"]
    reader.follow_model()  # the learning between days may have promoted another NLU version
    records: list[dict] = []
    episodes: list[dict] = []
    try:
        for index in indices:
            part = w["participants"][index]
            user_day(part, day, w["config"], w["goals"], w["noise"], w["driver"], reader, records, episodes)
    finally:
        close_old_connections()
    return records, episodes


class UserPool:
    """N processes running simulated users' days."""

    def __init__(self, config: Any, database_name: str, rows: list[ParticipantRow]) -> None:
        self.processes = config.processes
        self.indices = [row.sim.index for row in rows]
        self.executor = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(database_name, pickle.dumps((config, rows))),
        )

    def run_day(self, day: int) -> tuple[list[dict], list[dict]]:
        """Every user's day, records and episodes in user order (as one process makes them)."""
        chunks = [self.indices[k :: self.processes] for k in range(self.processes)]
        futures = [self.executor.submit(_run_users_day, day, chunk) for chunk in chunks if chunk]
        records: list[dict] = []
        episodes: list[dict] = []
        for future in futures:
            r, e = future.result()
            records += r
            episodes += e
        # Stable sorts: each user's records keep their order.
        records.sort(key=lambda r: r["user"])
        episodes.sort(key=lambda e: e["user"])
        return records, episodes

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
