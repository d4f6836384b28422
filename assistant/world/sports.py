"""Sports results, offline: the teams of assistant/data/sports.json and repeatable results.

Like the offline weather, a result is drawn from a hash of team and day, so the same question on
the same day gets the same answer, and tests and demos never need a network. Teams play on their
sport's days: football on Saturdays, American football on Sundays, basketball every other day,
baseball daily.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from assistant.world.catalogue import best, clean

SPORTS_PATH = Path(__file__).resolve().parent.parent / "data" / "sports.json"
_SCORES = {"basketball": (92, 131), "football": (0, 4), "american football": (3, 38), "baseball": (0, 9)}


@dataclass(frozen=True)
class Team:
    name: str
    short: str
    sport: str
    league: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    team: Team
    opponent: Team
    day: date
    home: bool
    scored: int
    conceded: int

    @property
    def outcome(self) -> str:
        return "won" if self.scored > self.conceded else "lost" if self.scored < self.conceded else "drew"


@cache
def teams() -> tuple[Team, ...]:
    with SPORTS_PATH.open(encoding="utf-8") as f:
        rows = json.load(f)["teams"]
    return tuple(Team(r["name"], r["short"], r["sport"], r["league"], tuple(r["aliases"])) for r in rows)


def find_team(text: str | None) -> Team | None:
    """The team a name means ("the warriors", "man utd", "golden state"), or None."""
    if not text:
        return None
    q = clean(text)
    for suffix in (" fan", " fans", " supporter", " team", " game", " match"):
        q = q.removesuffix(suffix)
    names = [(n, t) for t in teams() for n in (t.name.lower(), t.short.lower(), *t.aliases)]
    exact = [t for n, t in names if n == q]
    if exact:
        return exact[0]
    hit = best(q, names, cutoff=86)
    return hit[0] if hit else None


def _draw(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _plays_on(team: Team, day: date) -> bool:
    if team.sport == "football":
        return day.weekday() == 5
    if team.sport == "american football":
        return day.weekday() == 6
    if team.sport == "basketball":
        return (day.toordinal() + _draw(team.name)) % 2 == 0
    return True


def _game(team: Team, day: date) -> Result:
    rivals = [t for t in teams() if t.league == team.league and t != team]
    opponent = rivals[_draw(team.name, day, "opponent") % len(rivals)]
    low, high = _SCORES.get(team.sport, (0, 5))
    scored = low + _draw(team.name, day, "for") % (high - low + 1)
    conceded = low + _draw(team.name, day, "against") % (high - low + 1)
    if scored == conceded and team.sport != "football":
        scored += 1  # only football ends in a draw
    return Result(team, opponent, day, bool(_draw(team.name, day, "home") % 2), scored, conceded)


def last_result(team: Team, today: date) -> Result:
    """The team's most recent game before today."""
    day = today - timedelta(days=1)
    while not _plays_on(team, day):
        day -= timedelta(days=1)
    return _game(team, day)


def next_game(team: Team, today: date) -> Result:
    """The team's next game, today or later (its score is not known yet: do not say it)."""
    day = today
    while not _plays_on(team, day):
        day += timedelta(days=1)
    return _game(team, day)
