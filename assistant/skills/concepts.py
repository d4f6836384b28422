"""Taught concepts as a skill: running one ("study mode on"), asking what an unknown one means
("What do you mean by study mode?"), and storing one once the user said yes.

Reading a definition takes the NLU, so the pipeline does that (teaching/concepts.py); running a
concept's steps takes the other skills, so the dispatcher (assistant/skills/__init__.py) passes
`run_step` in.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from assistant.models import Home
from assistant.skills.base import Request, failed
from assistant.turns import Action, NluResult, SkillResult, TurnContext
from teaching import concepts

SKILL = "concepts"


def _named(req: Request) -> str:
    """The concept's name as said: the tagged words, with "mode" when it followed them."""
    name = (req.slot("concept") or "").strip()
    if name and (after := re.match(rf".*?\b{re.escape(name)} (mode|brightness|routine|scene|time)\b", req.text)):
        name = f"{name} {after.group(1)}"  # "movie brightness", "study mode": the name as said
    return name


def resolve(req: Request) -> Action:
    if req.intent == "concept_teach":
        # Reaches a skill only when the pipeline could not read the teaching (no name tagged).
        return req.fail('Tell me like this: "when I say goodnight, turn off all the lights".')
    # "study mode on", "start study mode": the user's concept, whatever the words around its name
    reading = NluResult(text=req.text, intent=req.intent, confidence=1.0, slots=dict(req.slots))
    concept = concepts.invoked(req.ctx.user_id, reading)
    if concept is not None:
        return req.action(concept=concept.name, steps=concept.steps)
    name = _named(req)
    if not name:
        return req.fail("Which routine do you mean?")
    return req.fail(f"What do you mean by {name}?", needs="definition", concept=name)


def execute(
    action: Action, ctx: TurnContext, home: Home, run_step: Callable[[dict], SkillResult] | None = None
) -> SkillResult:
    steps = list(action.params.get("steps") or [])
    name = str(action.params.get("concept") or "")
    if action.intent == "concept_teach":
        concept, changed = concepts.teach(ctx.user_id, name, steps, str(action.params.get("definition") or ""), ctx.now)
        said = f"I've changed {concept.name}" if changed else f"I'll remember {concept.name}"
        text = f"{said}: {concepts.describe_steps(steps)}."
        if not action.params.get("run_now"):
            return SkillResult(text=f'{text} Say "{concept.name}" whenever you want it.', data={"taught": name})
        ran = _run(steps, run_step)
        return SkillResult(
            text=f"{text} {ran.text}",
            ok=ran.ok,
            data={"taught": name, **ran.data},
            changed_device_ids=ran.changed_device_ids,
        )
    if not steps or run_step is None:
        return failed(f"I don't know what {name} means yet.")
    return _run(steps, run_step)


def _run(steps: list[dict], run_step: Callable[[dict], SkillResult] | None) -> SkillResult:
    if run_step is None:
        return failed("I can't do that here.")
    results = [run_step(step) for step in steps]
    changed = tuple(dict.fromkeys(i for r in results for i in r.changed_device_ids))
    return SkillResult(
        text=" ".join(r.text for r in results),
        ok=all(r.ok for r in results),
        data={"steps": [{"ok": r.ok, "text": r.text} for r in results]},
        changed_device_ids=changed,
    )
