"""Ground truth for one turn: was the goal met, and if not, where did it really fail?

The judge compares the turn's final interpretation with the goal's gold intent
(mapped to ours, simulator/data.py) and the gold slots of the sentence
the user spoke. A goal is met when the intent is right, every checked gold slot
was found with a matching value, the skill resolved it without error and
executed it successfully. Extra slots the NLU found are not held against it
(SLURP leaves many things unannotated that our tagger marks).

True failure point, first that applies:
  correct    the goal was met
  unsupported  we have no intent for the goal (only with unsupported goals included)
  <stage>    a pipeline stage raised (the turn is stored with the error)
  rewrite    a rewrite fired and replaced an interpretation that was right
  asr        the recognition differs from what was said, and what was said would have been understood
  nlu        the (pre-resolve) interpretation is wrong
  resolve    right interpretation, but the skill could not resolve it (unknown room, song…)
  execute    resolved, but carrying it out failed
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from assistant.text import normalise
from simulator.data import Goal, Phrasing

FAILURE_POINTS = ("correct", "asr", "nlu", "rewrite", "resolve", "execute", "unsupported", "error")
_DETERMINERS = ("the ", "my ", "a ", "an ", "our ", "this ")


def _norm_value(value: str) -> str:
    value = normalise(value or "")
    for det in _DETERMINERS:
        if value.startswith(det):
            value = value[len(det) :]
    return value.strip()


def slot_matches(predicted: str | None, gold: str) -> bool:
    if not predicted:
        return False
    a, b = _norm_value(predicted), _norm_value(gold)
    return a == b or (bool(a) and bool(b) and fuzz.ratio(a, b) >= 85)


def interpretation_ok(intent: str | None, slots: dict[str, Any] | None, goal: Goal, phrasing: Phrasing) -> bool:
    """Is (intent, slots) the right reading of this goal as phrased?"""
    if goal.intent is None or intent != goal.intent:
        return False
    slots = slots or {}
    wanted: dict[str, list[str]] = {}
    for kind, value in goal.checked_slots(phrasing):
        wanted.setdefault(kind, []).append(value)
    # Our NLU keeps the first span of each type: it must match one of the gold values of that type.
    return all(any(slot_matches(slots.get(kind), v) for v in values) for kind, values in wanted.items())


@dataclass(frozen=True)
class TurnTruth:
    met: bool
    failure_point: str
    asr_differs: bool
    rewrite_fired: bool
    rewrite_effect: str | None  # "win", "loss", "neutral" for a fired rewrite
    would_have_succeeded: bool  # without the rewrite (the same as `met` when none fired)

    def as_dict(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "failure_point": self.failure_point,
            "asr_differs": self.asr_differs,
            "rewrite_fired": self.rewrite_fired,
            "rewrite_effect": self.rewrite_effect,
            "would_have_succeeded": self.would_have_succeeded,
        }


def _stages(turn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r.get("stage"): r for r in turn.get("trace") or [] if isinstance(r, dict)}


def judge(
    turn: dict[str, Any],
    goal: Goal,
    phrasing: Phrasing,
    understand_reference: Callable[[str], tuple[str, dict[str, Any]]],
    said: str | None = None,
) -> TurnTruth:
    """Ground truth for a turn in the shape of Turn.as_dict() (what the API returns too).

    `understand_reference(text)` gives (intent, slots) the current NLU reads from a
    normalised text: it tells whether the words really said would have been understood.
    `said`: the words spoken when they differ from the phrasing's (a thing called by a user's
    own name); the gold slots stay the phrasing's.
    """
    stages = _stages(turn)
    said = normalise(said if said is not None else phrasing.sentence)
    heard = (turn.get("asr") or {}).get("text") or ""
    asr_differs = heard != said
    rewrite = (stages.get("rewrite") or {}).get("output")
    rewrite_fired = bool(isinstance(rewrite, dict) and rewrite.get("kept"))
    nlu_out = (stages.get("nlu") or {}).get("output") or {}
    original_ok = interpretation_ok(nlu_out.get("intent"), nlu_out.get("slots"), goal, phrasing)
    final = turn.get("nlu") or {}
    final_ok = interpretation_ok(final.get("intent"), final.get("slots"), goal, phrasing)
    action = (stages.get("resolve") or {}).get("output") or {}
    resolved = isinstance(action, dict) and not (action.get("params") or {}).get("error")
    executed = bool(((stages.get("execute") or {}).get("output") or {}).get("ok"))
    failed_stage = next((r.get("stage") for r in turn.get("trace") or [] if r.get("error")), None)

    met = goal.supported and failed_stage is None and final_ok and resolved and executed
    if met:
        point = "correct"
    elif not goal.supported:
        point = "unsupported"
    elif failed_stage is not None:
        point = failed_stage if failed_stage in FAILURE_POINTS else "error"
    elif rewrite_fired and original_ok and not final_ok:
        point = "rewrite"
    elif not final_ok:
        point = "nlu"
        if asr_differs:
            ref_intent, ref_slots = understand_reference(said)
            if interpretation_ok(ref_intent, ref_slots, goal, phrasing):
                point = "asr"
    elif not resolved:
        point = "resolve"
    else:
        point = "execute"

    effect = None
    if rewrite_fired:
        # Resolve/execute only ran on the rewritten reading: judge the rewrite by its interpretation.
        effect = "win" if final_ok and not original_ok else "loss" if original_ok and not final_ok else "neutral"
    would_have = original_ok and resolved and executed if rewrite_fired else met
    return TurnTruth(
        met=met,
        failure_point=point,
        asr_differs=asr_differs,
        rewrite_fired=rewrite_fired,
        rewrite_effect=effect,
        would_have_succeeded=bool(would_have),
    )
