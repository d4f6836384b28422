"""Labels generated from feedback (learning/generated_labels.py): a failed turn rephrased successfully is
labelled with the rephrase's reading on its own words; turns that went well confirm theirs; reviewers win."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import GeneratedLabel, Label, Rephrase, Session, Turn
from learning.cycle import steps_for
from learning.generated_labels import generate_labels, place_slot, training_labels
from learning.models import Job
from learning.nlu.service import generated_examples, with_feedback
from learning.tasks import generate_labels_task
from simulator.report import generated_label_precision

pytestmark = pytest.mark.django_db


def _turn(user, text, *, intent="", slots=None, p=None, minutes=0, status=Turn.Status.OK, rewrite=None) -> Turn:
    at = timezone.now() - timedelta(hours=1) + timedelta(minutes=minutes)
    session = Session.objects.create(user=user, channel="web", started_at=at)
    return Turn.objects.create(
        session=session,
        user=user,
        created_at=at,
        raw_text=text,
        asr_text=text,
        intent=intent,
        slots=slots or {},
        status=status,
        defect_probability=p,
        rewrite=rewrite,
    )


def _rephrase(first, second, score=0.9) -> Rephrase:
    return Rephrase.objects.create(first=first, second=second, score=score, gap_ms=5000, detector_version="t")


def test_a_failed_turn_gets_its_successful_rephrases_reading_on_its_own_words(alice):
    failed = _turn(alice, "lights of in the kitchn", intent="out_of_scope", status=Turn.Status.OUT_OF_SCOPE, p=0.9)
    worked = _turn(alice, "turn off the kitchen lights", intent="iot_hue_lightoff", slots={"room": "kitchen"}, p=0.1)
    _rephrase(failed, worked, 0.8)
    result = generate_labels()
    label = GeneratedLabel.objects.get(turn=failed)
    assert (label.intent, label.slots, label.source) == ("iot_hue_lightoff", {"room": "kitchn"}, "rephrase")
    assert label.evidence_id == worked.pk
    assert label.confidence == pytest.approx(0.8 * 0.9 * 0.9, abs=1e-3)
    assert result["from_rephrases"] == 1
    # The NLU's example: the failed words, the slot a span of them.
    (example,) = [e for e in generated_examples() if e.text == "lights of in the kitchn"]
    assert example.intent == "iot_hue_lightoff"
    assert [(s.type, example.text[s.start : s.end]) for s in example.spans] == [("room", "kitchn")]
    # Rerun: the same labels, recomputed, not duplicated.
    generate_labels()
    assert GeneratedLabel.objects.filter(source="rephrase").count() == 1


def test_a_chain_of_failed_tries_is_followed_to_the_one_that_worked(alice):
    first = _turn(alice, "play the for seasons", intent="out_of_scope", p=0.85)
    second = _turn(alice, "put on the for seasons", intent="play_radio", p=0.8, minutes=1)
    third = _turn(
        alice, "play the four seasons", intent="play_music", slots={"song": "the four seasons"}, p=0.05, minutes=2
    )
    _rephrase(first, second)
    _rephrase(second, third)
    generate_labels()
    labels = {row.turn_id: row for row in GeneratedLabel.objects.filter(source="rephrase")}
    assert labels[first.pk].intent == labels[second.pk].intent == "play_music"
    assert labels[first.pk].slots == {"song": "the for seasons"}
    assert labels[first.pk].confidence < labels[second.pk].confidence  # a longer chain, less sure


@pytest.mark.parametrize(
    ("failed_p", "worked", "why"),
    [
        (0.3, {"text": "turn off the lights", "intent": "iot_hue_lightoff", "p": 0.1}, "the first try went well"),
        (0.9, {"text": "turn off the lights", "intent": "iot_hue_lightoff", "p": 0.6}, "the rephrase failed too"),
        (0.9, {"text": "yes", "intent": "dialogue_affirm", "p": 0.05}, "an answer, not a request"),
        (0.9, {"text": "lights off", "intent": "iot_hue_lightoff", "p": 0.05, "same": True}, "the same words"),
        (
            0.9,
            {
                "text": "turn off the bedroom lights",
                "intent": "iot_hue_lightoff",
                "slots": {"room": "bedroom"},
                "p": 0.05,
            },
            "a slot the failed words do not carry",
        ),
    ],
)
def test_no_label_without_evidence_of_what_was_meant(alice, failed_p, worked, why):
    failed = _turn(alice, "lights off", intent="out_of_scope", p=failed_p)
    text = "lights off" if worked.get("same") else worked["text"]
    second = _turn(alice, text, intent=worked["intent"], slots=worked.get("slots"), p=worked["p"], minutes=1)
    _rephrase(failed, second)
    generate_labels()
    assert not GeneratedLabel.objects.filter(turn=failed).exists(), why


def test_turns_that_went_well_confirm_their_reading_capped_per_intent(alice, settings):
    settings.GENERATED_SUCCESS_PER_INTENT = 2
    kept = [
        _turn(
            alice,
            f"set a timer for {n} minutes",
            intent="timer_set",
            slots={"duration": f"{n} minutes"},
            p=0.05,
            minutes=n,
        )
        for n in range(1, 5)
    ]
    rewritten = _turn(alice, "lights of", intent="iot_hue_lightoff", p=0.05, rewrite={"rule": 1})
    unsure = _turn(alice, "what's on", intent="music_query", p=0.5)
    result = generate_labels()
    assert result["from_successes"] == 4
    labelled = set(GeneratedLabel.objects.values_list("turn_id", flat=True))
    assert rewritten.pk not in labelled and unsure.pk not in labelled  # a rewrite's words, an unsure turn
    trained = [row.turn_id for row in training_labels()]
    assert trained == [kept[3].pk, kept[2].pk]  # the newest two


def test_a_reviewers_label_wins_over_a_generated_one(alice, bob):
    failed = _turn(alice, "lights of in the kitchen", intent="out_of_scope", p=0.9)
    worked = _turn(alice, "turn off the kitchen lights", intent="iot_hue_lightoff", slots={"room": "kitchen"}, p=0.1)
    _rephrase(failed, worked)
    generate_labels()
    assert [row.turn_id for row in training_labels() if row.source == "rephrase"] == [failed.pk]
    Label.objects.create(turn=failed, reviewer=bob, intent="general_joke", created_at=timezone.now())
    assert not [row for row in training_labels() if row.source == "rephrase"]
    generate_labels()
    assert not GeneratedLabel.objects.filter(turn=failed).exists()
    merged = with_feedback([])
    assert next(e for e in merged if e.text == "lights of in the kitchen").intent == "general_joke"


def test_slot_words_are_found_exactly_or_by_edit_distance():
    assert place_slot("lights of in the kitchn", "kitchen") == "kitchn"
    assert place_slot("play the for seasons", "the four seasons") == "the for seasons"
    assert place_slot("turn it off", "kitchen") is None
    assert place_slot("set a timer for 5 minutes", "5 minutes") == "5 minutes"


def test_the_step_runs_in_the_nlu_learning_cycle_and_as_a_task(alice):
    assert "generated_labels" in [s.name for s in steps_for("nlu")]
    assert [s.name for s in steps_for("nlu")].index("generated_labels") < [s.name for s in steps_for("nlu")].index(
        "nlu"
    )
    job = Job.objects.create(kind="generate_labels")
    generate_labels_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and "labels" in job.message


def test_the_simulator_scores_generated_labels_against_the_goals():
    class Goal:
        def __init__(self, goal_id, intent):
            self.goal_id, self.intent = goal_id, intent

    records = [{"turn_id": 1, "goal": 10}, {"turn_id": 2, "goal": 11}, {"turn_id": 3, "goal": 10}]
    goals = [Goal(10, "iot_hue_lightoff"), Goal(11, "play_music")]
    report = generated_label_precision(
        records,
        goals,
        {1: ("iot_hue_lightoff", "rephrase"), 2: ("play_radio", "rephrase"), 3: ("iot_hue_lightoff", "success")},
    )
    assert report["rephrase"]["labels"] == 2 and report["rephrase"]["precision"] == 0.5
    assert report["success"]["precision"] == 1.0 and report["labels"] == 3
    low, high = report["rephrase"]["precision_ci"]
    assert low < 0.5 < high
    assert generated_label_precision(records, goals, None) is None


def test_the_window_counts_back_from_the_newest_turn_not_the_clock(alice):
    """Simulated days (and an import of old logs) lie far from today: their labels are generated all the same."""
    failed = _turn(alice, "lights of in the kitchen", intent="out_of_scope", p=0.9, minutes=-300 * 24 * 60)
    worked = _turn(alice, "turn off the kitchen lights", intent="iot_hue_lightoff", p=0.1, minutes=-300 * 24 * 60 + 1)
    _rephrase(failed, worked)
    assert generate_labels()["from_rephrases"] == 1
    _turn(alice, "what time is it", intent="datetime_query", p=0.05)  # a turn of today: those days fall out
    assert generate_labels()["from_rephrases"] == 0
