"""Simulated users: who they are, how they speak, how they react when the assistant fails.

Each user is persistent for the run (and in the database: a Django user
`sim-<tag>-uNNN` with a home): preferences, a repertoire of goals they bring
again and again (Zipf-weighted, so a few goals dominate, across days), a habitual
phrasing per goal (and the order in which they try others), a usual speaker, and a
speech channel: clean, or noisy with a personal noise level.

Behaviour defaults (BEHAVIOUR_DEFAULTS, all settable with --behaviour KEY=VALUE)
follow what deployed assistants report: most failures are followed by a
rephrase or a barge-in, a minority by a plain repeat, and some users abandon;
explicit thumbs are rare.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from simulator.data import Goal

GENRES = ("rock", "jazz", "pop", "classical", "hip hop", "country", "electronic")
TEAMS = ("arsenal", "chelsea", "liverpool", "celtic", "leeds", "everton")
CUISINES = ("italian", "chinese", "indian", "thai", "mexican", "japanese")
UNITS = ("metric", "imperial")
SPEAKER_ROOMS = ("living room", "kitchen", "bedroom")
# Things some people call by a name of their own (what the goals say -> names a person may use).
PERSONAL_NAMES = {
    "living room": ("den", "lounge", "front room"),
    "kitchen": ("galley", "cookhouse"),
    "bedroom": ("loft", "nest"),
    "bathroom": ("loo", "washroom"),
    "robot vacuum cleaner": ("robbie", "dusty"),
    "vacuum cleaner": ("robbie", "dusty"),
    "smart socket": ("lamp plug", "fan plug"),
    "wemo plug socket": ("lamp plug", "fan plug"),
}


@dataclass(frozen=True)
class Behaviour:
    clean_channel: float = 0.3  # share of users whose words arrive as said (typed, or a perfect ASR)
    noise_level_min: float = 0.7  # a noisy user's scale on the learned error rates, drawn uniformly
    noise_level_max: float = 1.3
    repertoire: int = 8  # distinct goals a user brings
    habit: float = 0.7  # a first attempt uses the user's habitual phrasing of the goal
    barge_in: float = 0.45  # a failed reply is interrupted
    thumbs_down: float = 0.08  # a failed reply gets thumbs down
    thumbs_up: float = 0.03  # a good reply gets thumbs up
    rephrase: float = 0.55  # after a failure: say it another way…
    repeat: float = 0.2  # …say the same again…
    give_up: float = 0.25  # …or abandon the goal (normalised with the two above)
    max_attempts: int = 3  # tries per goal before giving up whatever happens
    retry_min_s: float = 2.0  # seconds between a failed reply and the next try
    retry_max_s: float = 8.0
    day_start_h: float = 7.0  # simulated users speak between these hours (UTC)
    day_end_h: float = 22.0
    personal_names: float = 0.4  # users who call one or two things by a name of their own
    own_name_first: float = 0.9  # such a user's first try uses their own name; a rephrase the usual one
    teach_preferences: float = 0.5  # users who tell the assistant their team, music, food and units on day 1
    teach_concept: float = 0.3  # users who teach it a routine of their own on day 1 (simulator/teaching.py)

    @classmethod
    def with_overrides(cls, overrides: dict[str, str]) -> Behaviour:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in overrides.items():
            if key not in known:
                raise ValueError(f"unknown behaviour setting {key!r}; known: {', '.join(known)}")
            try:
                value = int(raw) if known[key].type in ("int", int) else float(raw)
            except ValueError:
                raise ValueError(f"behaviour setting {key} must be a number, not {raw!r}") from None
            if value < 0:
                raise ValueError(f"behaviour setting {key} must not be negative")
            values[key] = value
        behaviour = cls(**values)
        if behaviour.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if behaviour.rephrase + behaviour.repeat + behaviour.give_up <= 0:
            raise ValueError("rephrase + repeat + give_up must be positive")
        if not 0 <= behaviour.day_start_h < behaviour.day_end_h <= 24:
            raise ValueError("need 0 <= day_start_h < day_end_h <= 24")
        return behaviour

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


BEHAVIOUR_DEFAULTS = Behaviour()


@dataclass
class SimUser:
    index: int
    username: str
    noisy: bool
    noise_level: float
    speaker_room: str
    preferences: dict[str, str]
    repertoire: list[int]  # goal positions (into the run's goal list), most frequent first
    weights: list[float]
    phrasing_order: dict[int, list[int]] = field(default_factory=dict)  # goal position -> phrasing indices
    # Who speaks: the same words go wrong the same way for one voice (simulator/noise.py).
    voice: str = ""
    # Things this user calls by a name of their own: {"living room": "the den"}.
    own_names: dict[str, str] = field(default_factory=dict)

    def in_own_words(self, sentence: str) -> str:
        """The sentence with the things this user names their own way renamed (longest first)."""
        for thing in sorted(self.own_names, key=len, reverse=True):
            padded = f" {sentence} "
            if f" {thing} " in padded:
                return padded.replace(f" {thing} ", f" {self.own_names[thing]} ", 1).strip()
        return sentence

    def pick_goal(self, rng: random.Random) -> int:
        return rng.choices(self.repertoire, weights=self.weights, k=1)[0]


def _preferred(goal: Goal, prefs: dict[str, str]) -> bool:
    """Does this goal match a preference (a genre the user likes, a cuisine…)?"""
    values = " ".join(v.lower() for _, v in goal.slots)
    return any(p in values for p in prefs.values())


def make_user(index: int, tag: str, goals: list[Goal], behaviour: Behaviour, seed: int) -> SimUser:
    """User `index` of a run: a function of (seed, index) only, so users do not depend on each other."""
    rng = random.Random(f"user:{seed}:{index}")
    prefs = {
        "music_genre": rng.choice(GENRES),
        "team": rng.choice(TEAMS),
        "cuisine": rng.choice(CUISINES),
        "units": rng.choice(UNITS),
    }
    noisy = rng.random() >= behaviour.clean_channel
    noise_level = rng.uniform(behaviour.noise_level_min, behaviour.noise_level_max) if noisy else 0.0
    # Goals matching a preference are three times as likely to be in the repertoire.
    size = min(behaviour.repertoire, len(goals))
    pool = list(range(len(goals)))
    base = [3.0 if _preferred(goals[i], prefs) else 1.0 for i in pool]
    repertoire: list[int] = []
    while len(repertoire) < size:
        pick = rng.choices(pool, weights=base, k=1)[0]
        at = pool.index(pick)
        pool.pop(at)
        base.pop(at)
        repertoire.append(pick)
    weights = [1.0 / (rank + 1) for rank in range(size)]  # Zipf: the first goals come back most
    order = {}
    for g in repertoire:
        indices = list(range(len(goals[g].phrasings)))
        rng.shuffle(indices)
        order[g] = indices
    return SimUser(
        index=index,
        username=f"sim-{tag}-u{index:04d}",
        noisy=noisy,
        noise_level=round(noise_level, 4),
        speaker_room=rng.choice(SPEAKER_ROOMS),
        preferences=prefs,
        repertoire=repertoire,
        weights=weights,
        phrasing_order=order,
        voice=f"voice-{seed}-{index}",
        own_names=_own_names(random.Random(f"names:{seed}:{index}"), behaviour),
    )


def _own_names(rng: random.Random, behaviour: Behaviour) -> dict[str, str]:
    if rng.random() >= behaviour.personal_names:
        return {}
    things = sorted(PERSONAL_NAMES)
    chosen = rng.sample(things, k=rng.randint(1, 2))
    return {thing: rng.choice(PERSONAL_NAMES[thing]) for thing in chosen}
