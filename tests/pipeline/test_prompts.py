"""Assistant-initiated feedback: "Did I answer your question?" at teachable moments and at random, each
at most once per PROMPT_MIN_GAP_TURNS turns per user (a moment after any prompt, a survey after a survey); a
spoken answer is stored as feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from assistant.management.commands.bench_pipeline import utterances
from assistant.pipeline.turn import SURVEY_QUESTION, handle_turn
from feedback.models import Feedback

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _talk(user, *utterances: str, gap: float = 10) -> list:
    turns, session = [], None
    for index, text in enumerate(utterances):
        turn = handle_turn(user, text=text, session=session, now=NOON + timedelta(seconds=gap * index))
        session = turn.session
        turns.append(turn)
    return turns


def test_saying_the_same_thing_again_is_a_teachable_moment(alice, nlu_model):
    first, again = _talk(alice, "what's the weather like today", "what's the weather like today")
    assert not first.prompt_reason
    assert again.prompt_reason == "repeated" and again.response.endswith(SURVEY_QUESTION)
    assert not again.survey_asked  # not part of the random sample the defect model is calibrated on


def test_an_unsure_reading_is_a_teachable_moment_and_its_answer_is_feedback(alice, nlu_model, settings):
    settings.PROMPT_BELOW_CONFIDENCE = 1.01  # every reading counts as unsure
    asked, answer = _talk(alice, "turn on the kitchen lights", "no it didn't")
    assert asked.prompt_reason == "low_confidence"
    assert answer.response.startswith("Sorry about that.")
    assert list(Feedback.objects.filter(turn=asked).values_list("kind", flat=True)) == ["thumbs_down"]


def test_a_reply_that_could_not_help_asks_nothing(alice, nlu_model, settings):
    settings.PROMPT_BELOW_CONFIDENCE = 1.01
    (turn,) = _talk(alice, "book me a flight to paris")
    assert not turn.prompt_reason


def test_at_most_one_prompt_per_gap(alice, nlu_model, settings):
    settings.SURVEY_RATE = 1.0
    settings.PROMPT_MIN_GAP_TURNS = 3
    turns = _talk(alice, *["what time is it", "tell me a joke", "what's the date today"] * 3, gap=600)
    asked = [bool(t.prompt_reason) for t in turns]
    assert asked == [True, False, False] * 3


def test_a_teachable_moment_does_not_hold_back_a_drawn_survey(alice, nlu_model, settings, monkeypatch):
    """Moments follow failures: were surveys held back by them, the answers would say turns go better than
    they do. Surveys keep a budget of their own; a moment still waits for any prompt."""
    settings.PROMPT_MIN_GAP_TURNS = 3
    drawn = {"what time is it", "tell me a joke"}
    monkeypatch.setattr("assistant.pipeline.turn.asks_survey", lambda ctx, text: text in drawn)
    said = ["what's the weather like today", "what's the weather like today", "what time is it", "tell me a joke"]
    reasons = [t.prompt_reason for t in _talk(alice, *said, "tell me a joke")]
    # The joke: a survey was asked a turn before; the joke again: a moment, but a prompt two turns before.
    assert reasons == ["", "repeated", "survey", "", ""]


def test_under_three_prompts_per_hundred_turns_with_the_defaults(alice, nlu_model, settings):
    settings.SURVEY_RATE = 0.05  # the production default (tests otherwise switch the survey off)
    settings.PROMPT_MIN_GAP_TURNS = 34
    session, prompts = None, 0
    for index, text in enumerate(utterances(100)):
        turn = handle_turn(alice, text=text, session=session, now=NOON + timedelta(seconds=30 * index))
        session = turn.session
        prompts += bool(turn.prompt_reason)
    assert prompts <= 3


def test_after_a_rewrite_it_asks_did_you_mean_and_a_no_is_feedback(alice, nlu_model):
    from feedback.models import RewriteRule

    RewriteRule.objects.create(
        source_text="lights of the kitchn", target_text="turn off the kitchen lights", status="active"
    )
    asked, answer = _talk(alice, "lights of the kitchn", "no")
    assert asked.rewrite["kept"], asked.rewrite
    assert asked.prompt_reason == "rewrite"
    assert asked.response.endswith('Did you mean "turn off the kitchen lights"?')
    assert answer.response.startswith("Sorry about that.")
    assert list(Feedback.objects.filter(turn=asked).values_list("kind", flat=True)) == ["thumbs_down"]
