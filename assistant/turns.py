"""The turn vocabulary: the values passed between the stages of a turn.

Ground floor: imports no app, so every layer (NLU, skills, teaching, rewrite,
pipeline, learning) can speak it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TurnContext:
    """What the assistant knows about the situation of a turn."""

    user_id: int
    home_id: int
    device_id: int | None  # the speaker spoken to
    room: str | None  # its room
    has_screen: bool
    now: datetime
    # What is going on, for choosing between readings (assistant/nlu/context.py): the media player's
    # status ("playing", "paused" or "") and what it plays ("song", "film", "audiobook"), what in the
    # home is on ("oven", "tv", "light", "light_here" for the device's room, "vacuum", "garage_door",
    # "plug"), the intents of the session's last turns (newest first), and the minutes since an alarm
    # went off (None: none in the last hour).
    media: str = ""
    media_kind: str = ""
    on: tuple[str, ...] = ()
    recent_intents: tuple[str, ...] = ()
    alarm_minutes_ago: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        data["on"], data["recent_intents"] = list(self.on), list(self.recent_intents)
        return data


@dataclass(frozen=True)
class Hypothesis:
    text: str
    confidence: float | None = None


@dataclass(frozen=True)
class AsrResult:
    text: str  # normalised text of the chosen hypothesis
    confidence: float | None
    chosen: int  # index into the n-best list
    alternatives: tuple[Hypothesis, ...] = ()


@dataclass(frozen=True)
class SlotSpan:
    type: str
    value: str
    start: int  # character offsets into the NLU input text
    end: int


@dataclass(frozen=True)
class NluResult:
    text: str
    intent: str
    confidence: float
    slots: dict[str, str]  # slot type -> surface value (first span of each type)
    spans: tuple[SlotSpan, ...] = ()
    out_of_scope: bool = False
    model_version: str = ""
    alternatives: tuple[tuple[str, float], ...] = ()  # (intent, probability), best first
    # With a context re-ranker: the NLU's own alternatives, before the situation re-ordered them.
    before_context: tuple[tuple[str, float], ...] = ()
    context_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = {
            "intent": self.intent,
            "slots": self.slots,
            "confidence": round(self.confidence, 4),
            "out_of_scope": self.out_of_scope,
            "spans": [asdict(s) for s in self.spans],
            "alternatives": [[i, round(p, 4)] for i, p in self.alternatives],
        }
        if self.context_version:
            data["before_context"] = [[i, round(p, 4)] for i, p in self.before_context]
            data["context_version"] = self.context_version
        return data


@dataclass(frozen=True)
class Action:
    """What the assistant decided to do: a skill, an operation and its resolved arguments."""

    skill: str
    intent: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, "intent": self.intent, "params": self.params}


@dataclass(frozen=True)
class SkillResult:
    text: str  # what to say
    ok: bool = True  # False when the skill could not do it (unknown device, nothing playing…)
    data: dict[str, Any] = field(default_factory=dict)
    changed_device_ids: tuple[int, ...] = ()
