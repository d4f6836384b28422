"""When a reply ends with "Did I answer your question?" (or, after a rewrite, "Did you mean …?").

Two reasons, two budgets:
- survey: a random SURVEY_RATE share of turns (assistant.pipeline.turn.asks_survey), an unbiased
  sample the defect model is calibrated on (Turn.survey_asked);
- a teachable moment: a rewrite just fired, the NLU was unsure of what it acted on, or the user
  said the same thing again; the answer is a label where one is most useful.
A teachable moment is asked only when the user had no prompt in their last PROMPT_MIN_GAP_TURNS turns,
so people are not nagged. A drawn survey is asked when they had no *survey* in that many turns: were
it also held back by moments, which follow failures, the people and the hours that fail most would be
surveyed least, and the answers would say turns go better than they do (in a simulated week two
drawn surveys in three were held back, and the asked ones failed 36% of the time against 44%).
The answer ("yes", "no, it didn't") is stored as feedback on the turn (teaching/dialogue.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings

from assistant.turns import NluResult, SkillResult
from feedback.models import Turn

SURVEY, REWRITE, LOW_CONFIDENCE, REPEATED = "survey", "rewrite", "low_confidence", "repeated"


def moment(
    understood: NluResult, rewrote: bool, result: SkillResult, said: str, previous_said: Callable[[], str | None]
) -> str | None:
    """The teachable moment this turn is, if any."""
    if not result.ok or understood.out_of_scope:
        return None  # it said it could not: nothing to ask
    if rewrote:
        return REWRITE
    if understood.confidence < settings.PROMPT_BELOW_CONFIDENCE:
        return LOW_CONFIDENCE
    if previous_said() == said:
        return REPEATED
    return None


def did_you_mean(understood_text: str) -> str:
    """The question after a rewrite: yes or no to the words the assistant acted on."""
    return f'Did you mean "{" ".join(understood_text.split())[:200]}"?'


def within_budget(user_id: int, now: datetime, reason: str | None = None) -> bool:
    """No prompt (or none for `reason`) in the user's last PROMPT_MIN_GAP_TURNS - 1 turns."""
    asked = Turn.objects.filter(user_id=user_id, created_at__lte=now)
    asked = asked.filter(prompt_reason=reason) if reason else asked.exclude(prompt_reason="")
    last = asked.order_by("-created_at", "-id").values_list("created_at", flat=True).first()
    if last is None:
        return True
    since = Turn.objects.filter(user_id=user_id, created_at__gt=last, created_at__lte=now).count()
    return since >= settings.PROMPT_MIN_GAP_TURNS - 1
