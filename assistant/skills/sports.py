"""Sports results (offline, assistant/world/sports.py): "how did the Warriors do?", and with a
team taught ("I'm a Warriors fan"), "how did my team do?"."""

from __future__ import annotations

from datetime import date

from assistant.models import Home
from assistant.skills.base import Request, failed, local_now
from assistant.skills.liking import liked
from assistant.skills.values import format_day
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world.sports import find_team, last_result, next_game, teams
from teaching.models import Preference

ASK_TEAM = "Which team? Tell me \"I'm a Warriors fan\" and I'll remember yours."


def resolve(req: Request) -> Action:
    team_text = req.slot("team")
    if team_text and clean_team(team_text) not in ("my team", "we", "us"):
        team = find_team(team_text)
        if team is None:
            return req.fail(f"I don't follow a team called {team_text}.", not_found="team")
    else:
        favourite = liked(req.ctx.user_id, Preference.Kind.TEAM)
        team = find_team(favourite.value) if favourite else None
        if team is None:
            return req.fail(ASK_TEAM, needs="team")
        return req.action(team=team.name, preference=favourite.source)
    return req.action(team=team.name)


def clean_team(text: str) -> str:
    return " ".join(text.lower().replace("'s", "").split())


def _called(team) -> str:
    """ "the Warriors", "the Red Sox", "the Heat", but "Arsenal", "Leeds": American teams take "the"."""
    return team.short if team.sport == "football" else f"the {team.short}"


def _find(name: str):
    return next((t for t in teams() if t.name == name), None)


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    team = _find(str(action.params.get("team") or ""))
    if team is None:
        return failed("I don't follow that team.")
    today: date = local_now(ctx, home).date()
    result, upcoming = last_result(team, today), next_game(team, today)
    where = "at home to" if result.home else "away at"
    text = (
        f"{_called(team)[0].upper()}{_called(team)[1:]} {result.outcome} {result.scored} to {result.conceded} "
        f"{where} {_called(result.opponent)} {format_day(result.day, today)}."
    )
    if upcoming.day == today:
        text += f" They play {_called(upcoming.opponent)} today."
    else:
        text += f" Next up: {_called(upcoming.opponent)}, {format_day(upcoming.day, today)}."
    data = {"team": team.name, "result": result.outcome, "score": [result.scored, result.conceded]}
    return SkillResult(text=text, data=data)
