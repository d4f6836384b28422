"""Concept teaching through handle_turn() with the trained NLU: an unknown name is asked about, the
answer is read as requests, confirmed, stored and applied on first and paraphrased reuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from assistant.models import Device
from assistant.pipeline.turn import handle_turn
from teaching.models import Concept, PendingQuestion

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


class Clock:
    def __init__(self) -> None:
        self.now = NOON

    def tick(self, seconds: float = 10) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _talk(user, clock: Clock, *utterances: str, session=None) -> list:
    turns = []
    for text in utterances:
        turn = handle_turn(user, text=text, session=session, now=clock.tick())
        session = turn.session
        turns.append(turn)
    return turns


def _lights(user) -> dict[str, bool]:
    return {d.room: d.state["on"] for d in Device.objects.filter(home__owner=user, kind="light")}


def test_an_unknown_concept_is_asked_about_confirmed_stored_and_run(alice, nlu_model):
    clock = Clock()
    handle_turn(alice, text="turn on the living room lights", now=clock.tick())
    asked, defined, confirmed = _talk(
        alice,
        clock,
        "turn on study mode",
        "turn off the living room lights and set the thermostat to 20 degrees",
        "yes",
    )
    assert asked.response == "What do you mean by study mode?"
    assert defined.response == (
        "So study mode means: turn off the living room lights, then set the thermostat to 20 degrees. "
        "Shall I remember that?"
    )
    assert confirmed.response.startswith("I'll remember study mode:")
    concept = Concept.objects.get(user=alice)
    assert concept.name == "study mode"
    assert [s["intent"] for s in concept.steps] == ["iot_hue_lightoff", "iot_thermostat_set"]
    # The request that started it all was carried out too.
    assert _lights(alice)["living room"] is False
    assert Device.objects.get(home__owner=alice, kind="thermostat").state["target_c"] == 20


def test_when_i_say_teaches_directly_and_a_greeting_can_become_a_concept(alice, nlu_model):
    clock = Clock()
    handle_turn(alice, text="turn on all the lights", now=clock.tick())
    taught, confirmed = _talk(alice, clock, "when i say goodnight turn off all the lights and close the garage", "yes")
    assert taught.response == (
        "So goodnight means: turn off all the lights, then close the garage. Shall I remember that?"
    )
    assert confirmed.response.startswith("I'll remember goodnight:")
    assert any(_lights(alice).values())  # taught, not run
    (used,) = _talk(alice, clock, "goodnight")
    assert used.intent == "concept_run"
    assert not any(_lights(alice).values())


def test_no_stores_nothing(alice, nlu_model):
    clock = Clock()
    _, _, declined = _talk(alice, clock, "turn on study mode", "turn off the tv", "no")
    assert declined.response == "OK, I'll leave it."
    assert not Concept.objects.exists()


def test_a_definition_it_cannot_read_is_asked_again_then_dropped(alice, nlu_model):
    clock = Clock()
    _, first, second = _talk(alice, clock, "turn on study mode", "blah blah blah", "flibber jabber wocky")
    assert first.response == "I couldn't turn that into things I can do. What do you mean by study mode?"
    assert second.response == "I couldn't turn that into things I can do. Let's leave study mode for now."
    assert not Concept.objects.exists()
    assert not PendingQuestion.objects.exists()


def test_a_concept_cannot_stand_for_another_one(alice, nlu_model):
    clock = Clock()
    _talk(alice, clock, "when i say goodnight turn off all the lights", "yes")
    _, answer = _talk(alice, clock, "turn on party mode", "turn on study mode")
    assert answer.response.startswith("A name I learn can only stand for things I can do")
    assert list(Concept.objects.values_list("name", flat=True)) == ["goodnight"]


def test_a_built_in_command_cannot_be_taught_to_mean_something_else(alice, nlu_model):
    clock = Clock()
    (turn,) = _talk(alice, clock, "when i say turn off the tv turn on all the lights")
    assert "already means something to me" in turn.response or turn.response.startswith("Tell me like this")
    assert not Concept.objects.exists()


def test_teaching_a_name_again_changes_it(alice, nlu_model):
    clock = Clock()
    _talk(alice, clock, "when i say goodnight turn off all the lights", "yes")
    _, changed = _talk(alice, clock, "when i say goodnight close the garage door", "yes")
    assert changed.response.startswith("I've changed goodnight:")
    assert [s["intent"] for s in Concept.objects.get(user=alice).steps] == ["iot_garage_close"]


def test_another_users_concept_is_not_theirs(alice, bob, nlu_model):
    clock = Clock()
    _talk(alice, clock, "when i say goodnight turn off all the lights", "yes")
    (bobs,) = _talk(bob, clock, "turn on goodnight mode")
    assert bobs.response == "What do you mean by goodnight mode?"
    assert Concept.objects.filter(user=bob).count() == 0


def test_html_in_a_concept_name_is_kept_as_words(alice, nlu_model):
    clock = Clock()
    (asked,) = _talk(alice, clock, "turn on <script>alert(1)</script> mode")
    assert "<script>" not in asked.response


def test_what_do_you_know_about_me_lists_concepts(alice, nlu_model):
    clock = Clock()
    *_, listed = _talk(alice, clock, "when i say goodnight turn off all the lights", "yes", "what do you know about me")
    assert listed.response == "Here's what I know: you've taught me what goodnight means."


# Names the seed templates never use, so reuse is measured on concepts the NLU has not seen.
NAMES = ["writing", "baking", "karaoke", "piano", "knitting", "sunset", "rainy day", "spring cleaning"]
DEFINITIONS = [
    "turn off the tv and dim the lights to 40 percent",
    "set the heating to 21 degrees and play some jazz",
    "turn on the kitchen lights and set a timer for 20 minutes",
    "close the garage and turn off all the lights",
]
FIRST_REUSE = "turn on {name} mode"
PARAPHRASES = [
    "{name} mode on",
    "start {name} mode",
    "activate {name} mode",
    "{name} mode please",
    "switch to {name} mode",
    "it's {name} time",
]


def test_taught_concepts_work_on_first_and_paraphrased_reuse(alice, nlu_model):
    """Targets: at least 95% of taught concepts work on first reuse, 85% on a paraphrased reuse.
    The rates and every miss go to test-artifacts/concept-reuse.json."""
    clock = Clock()
    taught, first, paraphrased, misses = 0, [], [], []
    for index, name in enumerate(NAMES):
        definition = DEFINITIONS[index % len(DEFINITIONS)]
        asked, defined, confirmed = _talk(alice, clock, FIRST_REUSE.format(name=name), definition, "yes")
        if not Concept.objects.filter(user=alice, name=f"{name} mode").exists():
            misses.append({"teach": name, "replies": [asked.response, defined.response, confirmed.response]})
            continue
        taught += 1
        clock.tick(600)  # later, in a new session
        (again,) = _talk(alice, clock, FIRST_REUSE.format(name=name))
        first.append(again.intent == "concept_run" and again.action["params"].get("concept") == f"{name} mode")
        for template in PARAPHRASES:
            clock.tick(600)
            (said,) = _talk(alice, clock, template.format(name=name))
            ok = said.intent == "concept_run" and said.action["params"].get("concept") == f"{name} mode"
            paraphrased.append(ok)
            if not ok:
                misses.append({"said": said.raw_text, "intent": said.intent, "reply": said.response})
    report = {
        "taught": f"{taught}/{len(NAMES)}",
        "first_reuse": sum(first) / max(len(first), 1),
        "paraphrased_reuse": sum(paraphrased) / max(len(paraphrased), 1),
        "misses": misses,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "concept-reuse.json").write_text(json.dumps(report, indent=1))
    # Teaching itself can miss an unseen name ("karaoke" read as a teaching with no name tagged);
    # the targets are on the reuse of what was taught.
    assert taught >= len(NAMES) - 2, report
    assert report["first_reuse"] >= 0.95, report
    assert report["paraphrased_reuse"] >= 0.85, report


@pytest.mark.parametrize("said", ["", "   "])
def test_an_empty_definition_is_refused_and_the_question_still_waits(alice, nlu_model, said):
    from assistant.pipeline.turn import TurnInputError

    clock = Clock()
    (asked,) = _talk(alice, clock, "turn on study mode")
    with pytest.raises(TurnInputError):
        handle_turn(alice, text=said, session=asked.session, now=clock.tick())
    assert PendingQuestion.objects.get(session=asked.session).kind == "define"


def test_an_utterance_it_cannot_place_runs_a_concept_only_by_its_whole_name(alice, nlu_model):
    clock = Clock()
    _talk(alice, clock, "turn on reading mode", "turn off all the lights", "yes")
    clock.tick(600)
    (unrelated,) = _talk(alice, clock, "i am reading a very long book about whales")
    assert unrelated.intent != "concept_run"
