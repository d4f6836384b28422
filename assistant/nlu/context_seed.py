"""Context-labelled examples, written for this product: words that mean different things in
different situations, each with the situations and what the words mean there.

The context re-ranker (context.py, trained by learning/nlu/context.py) learns from these and
from stored turns that feedback labelled. Each situation is a partial TurnContext (its
`as_dict()` fields); context_examples() adds noise a real home has (the hour, a screen or not,
things on that have nothing to do with the request) so that the re-ranker learns which part
of a situation matters.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.utils import timezone

MUSIC = {"media": "playing", "media_kind": "song"}
FILM = {"media": "playing", "media_kind": "film", "has_screen": True}
AUDIOBOOK = {"media": "playing", "media_kind": "audiobook"}


def recent(*intents: str, **more: Any) -> dict[str, Any]:
    return {"recent_intents": intents, **more}


@dataclass(frozen=True)
class Scenario:
    """Phrasings that mean different things, and what they mean in each situation."""

    name: str
    phrasings: tuple[str, ...]
    cases: tuple[tuple[dict[str, Any], str], ...]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "up",
        (
            "turn it up",
            "turn it up a bit",
            "turn that up",
            "up a bit",
            "a bit higher",
            "raise it",
            "increase it",
            "crank it up",
            "make it higher",
            "bump it up",
            "turn it up please",
            "can you turn it up",
            "a little higher",
            "higher please",
            "put it up a notch",
        ),
        (
            (MUSIC, "audio_volume_up"),
            (FILM, "audio_volume_up"),
            (AUDIOBOOK, "audio_volume_up"),
            (recent("iot_thermostat_set"), "iot_thermostat_set"),
            (recent("iot_temperature_query"), "iot_thermostat_set"),
            (recent("iot_hue_lightdim", on=("light", "light_here")), "iot_hue_lightup"),
            (recent("iot_hue_lighton", on=("light", "light_here")), "iot_hue_lightup"),
            (recent("iot_oven_on", on=("oven",)), "iot_oven_set"),
        ),
    ),
    Scenario(
        "down",
        (
            "turn it down",
            "turn it down a bit",
            "turn that down",
            "down a bit",
            "a bit lower",
            "lower it",
            "decrease it",
            "bring it down",
            "make it lower",
            "turn it down please",
            "can you turn it down",
            "a little lower",
            "lower please",
            "take it down a notch",
        ),
        (
            (MUSIC, "audio_volume_down"),
            (FILM, "audio_volume_down"),
            (AUDIOBOOK, "audio_volume_down"),
            (recent("iot_thermostat_set"), "iot_thermostat_set"),
            (recent("iot_temperature_query"), "iot_thermostat_set"),
            (recent("iot_hue_lighton", on=("light", "light_here")), "iot_hue_lightdim"),
            (recent("iot_hue_lightup", on=("light", "light_here")), "iot_hue_lightdim"),
            (recent("iot_oven_on", on=("oven",)), "iot_oven_set"),
        ),
    ),
    Scenario(
        "off",
        (
            "turn it off",
            "switch it off",
            "shut it off",
            "turn that off",
            "switch that off",
            "off please",
            "can you turn it off",
            "turn it off now",
            "kill it",
            "power it down",
            "switch it off please",
        ),
        (
            (recent("iot_tv_on", on=("tv",)), "iot_tv_off"),
            ({"on": ("tv",), "has_screen": True}, "iot_tv_off"),
            (recent("iot_oven_on", on=("oven",)), "iot_oven_off"),
            (recent("iot_temperature_query", on=("oven",)), "iot_oven_off"),
            (recent("iot_hue_lighton", on=("light", "light_here")), "iot_hue_lightoff"),
            ({"on": ("light", "light_here")}, "iot_hue_lightoff"),
            (recent("iot_wemo_on", on=("plug",)), "iot_wemo_off"),
            (recent("play_music", **MUSIC), "music_pause"),
        ),
    ),
    Scenario(
        "on",
        (
            "turn it on",
            "switch it on",
            "turn that on",
            "switch that on",
            "on please",
            "can you turn it on",
            "turn it back on",
            "switch it back on",
            "power it up",
            "turn it on again",
        ),
        (
            (recent("iot_tv_off"), "iot_tv_on"),
            (recent("iot_oven_off"), "iot_oven_on"),
            (recent("iot_hue_lightoff"), "iot_hue_lighton"),
            (recent("iot_wemo_off"), "iot_wemo_on"),
            (recent("music_pause", media="paused", media_kind="song"), "music_resume"),
        ),
    ),
    Scenario(
        "temperature",
        (
            "what's the temperature",
            "what is the temperature",
            "how hot is it",
            "what temperature is it",
            "how warm is it",
            "temperature please",
            "tell me the temperature",
            "is it hot yet",
            "what's the temperature now",
            "how hot is it now",
            "what's it at",
        ),
        (
            ({"on": ("oven",)}, "iot_temperature_query"),
            (recent("iot_oven_on", on=("oven",)), "iot_temperature_query"),
            (recent("iot_thermostat_set"), "iot_temperature_query"),
            (recent("weather_query"), "weather_query"),
        ),
    ),
    Scenario(
        "set_to",
        (
            "set it to {n} degrees",
            "make it {n} degrees",
            "put it at {n}",
            "change it to {n} degrees",
            "{n} degrees please",
            "set it at {n}",
            "can you make it {n} degrees",
        ),
        (
            ({"on": ("oven",), "n": ("180", "200", "220", "160")}, "iot_oven_set"),
            (recent("iot_oven_on", on=("oven",), n=("180", "200", "190")), "iot_oven_set"),
            (recent("iot_thermostat_set", n=("20", "21", "19", "22")), "iot_thermostat_set"),
            (recent("iot_temperature_query", n=("20", "21", "22")), "iot_thermostat_set"),
        ),
    ),
    Scenario(
        "brew",
        (
            "start brewing",
            "brew some coffee",
            "start the coffee",
            "coffee please",
            "make me a coffee",
            "get the coffee going",
            "i need coffee",
            "put the coffee on",
            "time for coffee",
            "brew please",
        ),
        (({"alarm_minutes_ago": (1, 3, 8, 15, 30), "hour": (6, 7, 8)}, "iot_wemo_on"),),
    ),
    Scenario(
        "next",
        ("next", "next one", "skip", "skip this", "skip it", "the next one please", "move on", "another one"),
        (
            (MUSIC, "music_next"),
            (recent("play_music", **MUSIC), "music_next"),
            (recent("general_joke"), "general_joke"),
        ),
    ),
    Scenario(
        "open_close",
        ("open it", "open it up", "can you open it", "close it", "shut it", "close it please"),
        ((recent("iot_device_query", on=("garage_door",)), "garage"),),
    ),
)

_NOISE_ON = ("light", "tv", "plug", "vacuum")
_DAY = datetime(2026, 3, 2, tzinfo=timezone.get_fixed_timezone(0))


@dataclass(frozen=True)
class ContextExample:
    text: str
    context: dict[str, Any]  # a TurnContext.as_dict() subset
    intent: str
    group: str  # the scenario and phrasing: held out together


def _stable(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big")


def _garage(text: str) -> str:
    return "iot_garage_close" if text.startswith(("close", "shut")) else "iot_garage_open"


def _fill(rng: random.Random, situation: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """A full context around a situation: its fields, and noise for the rest."""
    on = set(situation.get("on") or ())
    for thing in _NOISE_ON:
        # Something unrelated may be on, unless the situation is about that kind of thing.
        if thing not in keep and rng.random() < 0.15:
            on.add(thing)
    hour = situation.get("hour")
    hour = rng.choice(hour) if isinstance(hour, tuple) else rng.randrange(24)
    alarm = situation.get("alarm_minutes_ago")
    now = _DAY + timedelta(days=rng.randrange(7), hours=hour, minutes=rng.randrange(60))
    return {
        "has_screen": bool(situation.get("has_screen", rng.random() < 0.3)),
        "now": now.isoformat(),
        "media": situation.get("media", ""),
        "media_kind": situation.get("media_kind", ""),
        "on": sorted(on),
        "recent_intents": list(situation.get("recent_intents") or ()),
        "alarm_minutes_ago": rng.choice(alarm) if isinstance(alarm, tuple) else alarm,
    }


def context_examples(variants: int = 3, seed: int = 13) -> list[ContextExample]:
    """Every phrasing in every situation of its scenario, `variants` times with different noise."""
    rng = random.Random(seed)
    examples = []
    for scenario in SCENARIOS:
        for phrasing in scenario.phrasings:
            for situation, intent in scenario.cases:
                keep = set(situation.get("on") or ())
                for _ in range(variants):
                    n = situation.get("n")
                    text = phrasing.format(n=rng.choice(n)) if n else phrasing
                    if "{n}" in text:
                        continue
                    examples.append(
                        ContextExample(
                            text=text,
                            context=_fill(rng, situation, keep),
                            intent=_garage(text) if intent == "garage" else intent,
                            group=f"{scenario.name}:{phrasing}",
                        )
                    )
    return examples


@cache
def _phrasing_pattern() -> re.Pattern[str]:
    forms = [re.escape(p).replace(re.escape("{n}"), r"\d+") for sc in SCENARIOS for p in sc.phrasings]
    return re.compile("^(?:" + "|".join(forms) + ")$")


def is_context_phrasing(text: str) -> bool:
    """Whether these words are one of the scenarios' phrasings: a seed utterance with such words is
    not an example of words that mean the same in any situation."""
    return bool(_phrasing_pattern().match(" ".join(text.lower().split())))


def random_context(rng: random.Random) -> dict[str, Any]:
    """A situation drawn from the scenarios (or nothing going on), for requests whose words say
    all: "set a timer for ten minutes" means the same while music plays."""
    cases = [situation for scenario in SCENARIOS for situation, _ in scenario.cases]
    situation = rng.choice(cases) if rng.random() < 0.8 else {}
    return _fill(rng, {k: v for k, v in situation.items() if k != "n"}, set())


def held_out(group: str, fraction: float = 0.25) -> bool:
    """Whether a group (a scenario's phrasing, an ordinary request, a labelled turn) is held out of the
    re-ranker's training split (a stable quarter)."""
    return _stable(group) % 1000 < fraction * 1000
