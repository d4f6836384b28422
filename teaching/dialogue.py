"""Dialogue state: the assistant remembers the question it asked, and reads the next utterance
as its answer first.

    ask(session, turn, question)      the question a turn ends with becomes the session's pending one
    pending_question(session, now)    the question waiting for this turn's answer (locked), if any
    read_answer(question, answer)     what the answer means: fill the slot, yes, no, cancel, a new
                                      request, or nothing the question can use

An answer is read as a new request only when it clearly is one: the NLU reads a request other than
the pending one, with at least DIALOGUE_NEW_REQUEST_CONFIDENCE. Bare values ("the garage door",
"22 degrees"), yes and no are what the NLU's dialogue intents are trained on (seed templates), so
"the garage door" after "Which device?" fills the device, and never opens the garage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from assistant.intents import DIALOGUE_INTENTS, INTENTS, OUT_OF_SCOPE, PREFERENCE_SLOTS
from assistant.turns import NluResult
from teaching.models import PendingQuestion

AFFIRM, DENY, INFORM = "dialogue_affirm", "dialogue_deny", "dialogue_inform"
CANCEL_INTENTS = frozenset({"general_stop"})
DIALOGUE_VERSION = "dialogue-1"


@dataclass(frozen=True)
class Question:
    """A question a turn ends with, before it is stored."""

    kind: str  # PendingQuestion.Kind
    prompt: str
    intent: str = ""
    slots: dict[str, str] | None = None
    needs: str = ""
    action: dict[str, Any] | None = None


@dataclass(frozen=True)
class Reading:
    """What an answer means for the pending question.

    kind: "fill" (the slot's value; `understood` is the completed request), "skip" (the next
    guided question), "yes", "no",
    "cancel", "define" (`value` is what a taught name means), "new_request" (the question is
    dropped), "unclear" (ask again, or give up).
    """

    kind: str
    understood: NluResult | None = None
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"reading": self.kind}
        if self.value is not None:
            data["value"] = self.value
        if self.understood is not None:
            data["request"] = {"intent": self.understood.intent, "slots": self.understood.slots}
        return data


def ask(session, turn, question: Question) -> PendingQuestion:
    """Make `question` the session's pending one (replacing any older one)."""
    pending, _ = PendingQuestion.objects.update_or_create(
        session=session,
        defaults={
            "user_id": turn.user_id,
            "asked_in": turn,
            "kind": question.kind,
            "prompt": question.prompt,
            "intent": question.intent,
            "slots": question.slots or {},
            "needs": question.needs,
            "action": question.action,
            "asked_at": turn.created_at,
            "reasks": 0,
        },
    )
    return pending


def pending_question(session, now: datetime) -> PendingQuestion | None:
    """The session's pending question, locked for this turn's transaction; a stale one is
    dropped (the next utterance, minutes later, is a new request)."""
    if session is None or session.pk is None:
        return None
    pending = PendingQuestion.objects.select_for_update().filter(session=session).first()
    if pending is not None and pending.is_stale(now):
        pending.delete()
        return None
    return pending


def _clearly_new(answer: NluResult, pending_intent: str = "") -> bool:
    return (
        answer.intent not in DIALOGUE_INTENTS
        and answer.intent != OUT_OF_SCOPE
        and answer.intent != pending_intent
        and not answer.out_of_scope
        and answer.confidence >= settings.DIALOGUE_NEW_REQUEST_CONFIDENCE
    )


def _slot_value(needs: str, answer: NluResult) -> str | None:
    """The value the answer gives for the slot `needs`: the span the NLU tagged as that slot, else
    the one value it tagged (a "5" read as a temperature answers "what volume?"), else, for a bare
    answer, its words (the skill's own parser reads them, as it reads any slot)."""
    if answer.slots.get(needs):
        return answer.slots[needs]
    values = list(dict.fromkeys(answer.slots.values()))
    if len(values) == 1:
        return values[0]
    if answer.intent in (INFORM, OUT_OF_SCOPE) or answer.out_of_scope:
        return answer.text.strip() or None
    return None


# In "learn my preferences", "no", "skip" and "next" move on to the next question.
SKIP_INTENTS = frozenset({DENY, "music_next"})


def _read_guided(question: PendingQuestion, answer: NluResult) -> Reading:
    """An answer to a "learn my preferences" question: skip it, a value to remember, or (when it
    clearly is one) a new request, which leaves the questions for later."""
    if answer.intent in SKIP_INTENTS:
        return Reading("skip")
    if _clearly_new(answer, "preference_set"):
        return Reading("new_request")
    # "Fahrenheit" to the music question answers the one before: what it names is what it teaches.
    named = {k: v for k, v in answer.slots.items() if k in PREFERENCE_SLOTS}
    if not named.get(question.needs) and named:
        slot, value = next(iter(named.items()))
    else:
        slot, value = question.needs, _slot_value(question.needs, answer)
    if value is None:
        return Reading("skip")
    taught = NluResult(
        text=answer.text,
        intent="preference_set",
        confidence=answer.confidence,
        slots={slot: value},
        model_version=answer.model_version,
    )
    return Reading("fill", understood=taught, value=value)


def read_answer(question: PendingQuestion, answer: NluResult) -> Reading:
    """Read `answer` (the NLU's reading of the next utterance) against the pending `question`."""
    if question.kind == PendingQuestion.Kind.SURVEY:
        # "Did I answer your question?" is optional: anything but yes or no goes on as a request.
        if answer.intent in (AFFIRM, DENY):
            return Reading("yes" if answer.intent == AFFIRM else "no")
        return Reading("new_request")
    if answer.intent in CANCEL_INTENTS:
        return Reading("cancel")
    if question.kind == PendingQuestion.Kind.DEFINE:
        # "What do you mean by study mode?": the whole answer is the definition (it reads as
        # requests, which is the point), unless it is "no" or "never mind".
        return Reading("cancel") if answer.intent == DENY else Reading("define", value=answer.text)
    if question.kind == PendingQuestion.Kind.GUIDED:
        return _read_guided(question, answer)
    if question.kind == PendingQuestion.Kind.CONFIRM:
        if answer.intent == AFFIRM:
            return Reading("yes")
        if answer.intent == DENY:
            return Reading("no")
        return Reading("new_request") if _clearly_new(answer) else Reading("unclear")

    # A value the request lacked.
    if answer.intent == DENY:
        return Reading("cancel")
    if _clearly_new(answer, question.intent):
        return Reading("new_request")
    if answer.intent == AFFIRM:
        return Reading("unclear")  # "yes" does not say which device
    if question.intent not in INTENTS:
        return Reading("unclear")
    allowed = set(INTENTS[question.intent].slots)
    slots = {k: v for k, v in {**question.slots, **answer.slots}.items() if k in allowed}
    if question.needs in allowed:
        value = _slot_value(question.needs, answer)
        if value is None:
            return Reading("unclear")
        slots[question.needs] = value
    else:
        # "Which one should I cancel?" -> "the 10 minute one": the slots the answer names decide.
        value = " ".join(answer.slots.values()) or None
        if not answer.slots:
            return Reading("unclear")
    completed = NluResult(
        text=answer.text,
        intent=question.intent,
        confidence=answer.confidence,
        slots=slots,
        model_version=answer.model_version,
        alternatives=answer.alternatives,
    )
    return Reading("fill", understood=completed, value=value)
