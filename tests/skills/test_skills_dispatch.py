"""The skill registry: every intent has a skill, and no slot value makes resolve/execute raise."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import transaction

from assistant import skills
from assistant.intents import INTENTS
from assistant.pipeline.turn import build_context
from assistant.turns import Action, NluResult, TurnContext

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
NASTY = ["", "   ", "<script>alert(1)</script>", "x" * 5000, "\u202e\u0000?", "-1", "9" * 40, "'; drop table"]


def ctx_for(user, speaker: str | None = "Kitchen speaker") -> TurnContext:
    """The context a turn spoken to `speaker` (a device name) would get."""
    device = user.home.devices.get(name=speaker) if speaker else None
    return build_context(user, device, NOW)


def test_every_intent_is_handled_by_a_registered_skill():
    for intent, spec in INTENTS.items():
        assert spec.skill in skills.REGISTRY, intent


@pytest.mark.parametrize("intent", sorted(INTENTS))
def test_every_intent_resolves_and_executes_with_no_slots_or_nasty_slots(alice, intent):
    ctx = ctx_for(alice)
    for value in [None, *NASTY]:
        slots = {} if value is None else dict.fromkeys(INTENTS[intent].slots, value)
        action = skills.resolve(NluResult(text=value or "", intent=intent, confidence=0.9, slots=slots), ctx)
        json.dumps(action.as_dict())
        with transaction.atomic():
            result = skills.execute(action, ctx)
        assert result.text.strip()
        assert isinstance(result.ok, bool)


def test_an_unknown_intent_is_answered_as_out_of_scope(alice):
    ctx = ctx_for(alice)
    action = skills.resolve(NluResult(text="", intent="launch_rocket", confidence=0.9, slots={}), ctx)
    assert action.skill == "out_of_scope"
    assert not skills.execute(action, ctx).ok


def test_a_malformed_action_fails_politely(alice):
    ctx = ctx_for(alice)
    for action in [
        Action("no_such_skill", "iot_hue_lighton", {}),
        Action("music", "iot_hue_lighton", {}),
        Action("smart_home", "iot_hue_lighton", {"device_ids": [10**12], "op": "on"}),
        Action("timers", "timer_set", {"fires_at": "not a date"}),
        Action("timers", "alarm_set", {"fires_at": "2020-01-01T00:00:00+00:00"}),
        Action("music", "play_music", {"item_ids": ["nope"]}),
        Action("weather", "weather_query", {"place": "London", "days": ["never"]}),
    ]:
        result = skills.execute(action, ctx)
        assert not result.ok, action


def test_a_context_for_someone_elses_home_finds_no_home(alice, bob):
    ctx = ctx_for(alice)
    forged = TurnContext(**{**ctx.__dict__, "user_id": bob.pk})
    action = skills.resolve(NluResult(text="", intent="iot_garage_open", confidence=0.9, slots={}), forged)
    assert not skills.execute(action, forged).ok
    assert alice.home.devices.get(kind="garage_door").state == {"open": False}
