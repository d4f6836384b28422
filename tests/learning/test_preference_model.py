"""Preference models (learning/preferences.py): per-user distributions from what people taught,
asked for and let play, decayed, over a global prior; versioned in the registry and served by
assistant/skills/liking.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from assistant.pipeline.turn import handle_turn
from assistant.registry import ModelUnavailable
from assistant.skills.liking import INFERRED, PREFERENCE_MODELS, TAUGHT, liked
from feedback.models import BargeIn, Session, Turn
from learning.preferences import (
    Evidence,
    Params,
    collect_evidence,
    evaluate,
    gate,
    global_priors,
    posterior,
    scores,
    train_and_register,
    values_in,
)
from teaching import preferences
from teaching.models import InferredPreference, Preference
from teaching.privacy import forget_taught

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
Kind = Preference.Kind


def _quiet(fraction: float, message: str) -> None:
    pass


def _played(user, genre: str, at: datetime, *, served_from: str | None = None) -> Turn:
    """A carried-out "play <genre>" (or, with served_from, "play some music" answered from a preference)."""
    session = Session.objects.create(user=user, channel=Session.Channel.CLI, started_at=at)
    params = {"kind": "genre", "label": f"some {genre}", "genre": genre}
    if served_from:
        params["preference"] = served_from
    return Turn.objects.create(
        session=session,
        user=user,
        created_at=at,
        raw_text="play some music" if served_from else f"play {genre}",
        intent="play_music",
        action={"skill": "music", "intent": "play_music", "params": params},
        status=Turn.Status.OK,
    )


def _user(name: str):
    return get_user_model().objects.create_user(name, password=f"{name}-password-1")


def test_what_a_carried_out_action_says_about_its_user():
    assert values_in({"intent": "play_music", "params": {"genre": "Jazz"}}, {}) == [(Kind.GENRE, "jazz", True)]
    assert values_in({"intent": "sports_query", "params": {"team": "Arsenal", "preference": "inferred"}}, {}) == [
        (Kind.TEAM, "Arsenal", False)
    ]
    assert values_in({"intent": "restaurant_query", "params": {"cuisine": None}}, {}) == []
    # Celsius by default says nothing; "…in Fahrenheit" does.
    assert values_in({"intent": "weather_query", "params": {"units": "celsius"}}, {}) == []
    said = {"intent": "weather_query", "params": {"units": "fahrenheit", "units_said": True}}
    assert values_in(said, {}) == [(Kind.UNITS, "fahrenheit", True)]
    # The lights of a room say where the user is only from a device that does not know its room.
    lights = {"intent": "iot_hue_lighton", "params": {"room": "kitchen"}}
    assert values_in(lights, {"room": None}) == [(Kind.ROOM, "kitchen", True)]
    assert values_in(lights, {"room": "kitchen"}) == []
    assert values_in(None, {}) == []


def test_recent_evidence_outweighs_old_and_the_prior_fills_in():
    def e(value: str, days_ago: float, weight: float = 1.0) -> Evidence:
        return Evidence(1, Kind.GENRE, value, weight, NOON - timedelta(days=days_ago), 1, True)

    score = scores([e("rock", 30), e("rock", 29), e("jazz", 1)], NOON, half_life_days=7)
    assert score["jazz"] > score["rock"]
    assert scores([e("rock", 1), e("rock", 1, weight=-3.0)], NOON, 7) == {}  # cut short more than asked for
    dist = posterior({"jazz": 1.0}, {"rock": 0.75, "pop": 0.25}, strength=1.0)
    assert dist == pytest.approx({"jazz": 0.5, "rock": 0.375, "pop": 0.125})
    assert sum(dist.values()) == pytest.approx(1.0)


def test_the_prior_counts_only_values_several_people_share(settings):
    settings.PREFERENCE_PRIOR_MIN_USERS = 3
    by_user = {(u, Kind.GENRE): {"jazz": 1.0} for u in range(3)}
    by_user[(9, Kind.GENRE)] = {"polka": 5.0}  # one person's taste names them: left out
    assert global_priors(by_user) == {Kind.GENRE: {"jazz": 1.0}}


def test_held_out_requests_are_predicted_from_what_came_before():
    def e(user: int, value: str, day: int) -> Evidence:
        return Evidence(user, Kind.GENRE, value, 1.0, NOON + timedelta(days=day), day, True)

    evidence = [e(1, "jazz", 0), e(1, "jazz", 1), e(1, "jazz", 2), e(2, "rock", 0), e(2, "pop", 1)]
    result = evaluate(evidence, Params(7.0, 1.0))
    assert result["n"] == 2
    assert result["accuracy"] == 0.5  # user 1's jazz is predicted; user 2's switch to pop is not


def test_the_gate_refuses_a_version_that_predicts_worse():
    assert gate({"metrics": {}}, None).promote
    few = {"metrics": {"holdout": {"n": 5, "accuracy": 0.1}, "active_on_holdout": {"n": 5, "accuracy": 0.9}}}
    assert gate(few, {"metrics": {}}).promote and not gate(few, {"metrics": {}}).compared
    worse = {"metrics": {"holdout": {"n": 50, "accuracy": 0.6}, "active_on_holdout": {"n": 50, "accuracy": 0.8}}}
    decision = gate(worse, {"metrics": {}})
    assert not decision.promote and decision.regressions == ("accuracy",)
    same = {"metrics": {"holdout": {"n": 50, "accuracy": 0.8}, "active_on_holdout": {"n": 50, "accuracy": 0.8}}}
    assert gate(same, {"metrics": {}}).promote


@pytest.mark.django_db
def test_a_user_who_asks_for_jazz_gets_jazz_and_cutting_it_short_unlearns_it(alice, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    with pytest.raises(ModelUnavailable):
        PREFERENCE_MODELS.model()
    assert liked(alice.pk, Kind.GENRE) is None  # no model yet: nothing inferred
    for day in range(3):
        _played(alice, "jazz", NOON + timedelta(days=day))
    result = train_and_register(_quiet)
    assert result["status"] == "active"
    row = InferredPreference.objects.get(user=alice, kind=Kind.GENRE, model_version=result["version"])
    assert row.value == "jazz" and row.probability >= 0.5 and len(row.evidence) == 3
    assert liked(alice.pk, Kind.GENRE) == liked(alice.pk, Kind.GENRE)
    assert liked(alice.pk, Kind.GENRE).value == "jazz" and liked(alice.pk, Kind.GENRE).source == INFERRED

    # Served jazz twice for "play some music", stopped both times, and asked for rock instead.
    for day in (3, 4):
        served = _played(alice, "jazz", NOON + timedelta(days=day), served_from=INFERRED)
        BargeIn.objects.create(turn=served, offset_words=2, offset_ms=700, source=BargeIn.Source.STOP)
        _played(alice, "rock", NOON + timedelta(days=day, minutes=1))
    evidence = [e for e in collect_evidence() if e.user_id == alice.pk]
    assert sum(e.weight for e in evidence if e.value == "jazz") < 3  # the stops count against
    train_and_register(_quiet)
    assert liked(alice.pk, Kind.GENRE).value == "rock"

    # Taught wins over inferred.
    preferences.remember(alice.pk, Kind.GENRE, "classical", now=NOON)
    assert liked(alice.pk, Kind.GENRE) == type(liked(alice.pk, Kind.GENRE))("classical", TAUGHT, 1.0)


@pytest.mark.django_db
def test_a_rollback_serves_the_previous_versions_rows_and_erasure_removes_every_versions(alice, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    _played(alice, "jazz", NOON)
    first = train_and_register(_quiet)
    for hour in range(1, 4):
        _played(alice, "pop", NOON + timedelta(hours=hour))
    second = train_and_register(_quiet)
    assert second["status"] == "active" and liked(alice.pk, Kind.GENRE).value == "pop"
    PREFERENCE_MODELS.rollback("test")
    assert PREFERENCE_MODELS.active_version().version == first["version"]
    assert liked(alice.pk, Kind.GENRE).value == "jazz"

    forget_taught(alice.pk, NOON + timedelta(days=1))
    assert not InferredPreference.objects.filter(user=alice).exists()
    assert liked(alice.pk, Kind.GENRE) is None
    # What she said before the erasure is not learned from again.
    train_and_register(_quiet)
    assert not InferredPreference.objects.filter(user=alice).exists()


@pytest.mark.django_db
def test_forgetting_one_inferred_kind_stops_it_being_inferred_again(alice, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    _played(alice, "jazz", NOON)
    train_and_register(_quiet)
    preferences.forget_inferred(alice.pk, Kind.GENRE, NOON + timedelta(minutes=1))
    assert liked(alice.pk, Kind.GENRE) is None
    train_and_register(_quiet)
    assert not InferredPreference.objects.filter(user=alice, kind=Kind.GENRE).exists()
    _played(alice, "rock", NOON + timedelta(hours=1))  # what she asks for afterwards counts again
    train_and_register(_quiet)
    assert liked(alice.pk, Kind.GENRE).value == "rock"


@pytest.mark.django_db
def test_a_new_user_gets_the_global_prior_only_when_most_people_agree(settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    settings.PREFERENCE_PRIOR_MIN_USERS = 3
    fans = [_user(f"fan{i}") for i in range(4)]
    for fan in fans:
        _played(fan, "jazz", NOON)
    newcomer = _user("newcomer")
    train_and_register(_quiet)
    assert liked(newcomer.pk, Kind.GENRE).value == "jazz"  # everyone with evidence likes jazz
    for i, other in enumerate(["rock", "pop", "rock", "pop", "pop"]):
        _played(_user(f"other{i}"), other, NOON)
    for i in range(2):
        _played(_user(f"rocker{i}"), "rock", NOON)
    train_and_register(_quiet)
    assert liked(newcomer.pk, Kind.GENRE) is None  # no value is most people's


@pytest.mark.django_db
def test_play_some_music_plays_the_inferred_genre_and_says_why(alice, nlu_model, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    for minute in range(3):
        handle_turn(alice, text="play some jazz", now=NOON + timedelta(minutes=minute))
    before = handle_turn(alice, text="play some music", now=NOON + timedelta(minutes=5))
    assert before.action["params"]["kind"] == "mix"
    train_and_register(_quiet)
    after = handle_turn(alice, text="play some music", now=NOON + timedelta(minutes=10))
    assert after.action["params"]["genre"] == "jazz" and after.action["params"]["preference"] == INFERRED
    assert "which you often ask for" in after.response
    known = handle_turn(alice, text="what do you know about me", now=NOON + timedelta(minutes=11))
    assert "I think you like jazz" in known.response
    forgot = handle_turn(alice, text="forget that I like jazz", now=NOON + timedelta(minutes=12))
    assert "stop assuming" in forgot.response
    again = handle_turn(alice, text="play some music", now=NOON + timedelta(minutes=13))
    assert again.action["params"]["kind"] == "mix"


@pytest.mark.django_db
def test_the_learning_step_runs_as_its_celery_task(alice, settings, tmp_path):
    from learning.models import Job
    from learning.tasks import learn_preferences_task

    settings.MODEL_DIR = tmp_path
    _played(alice, "jazz", NOON)
    job = Job.objects.create(kind="learn_preferences")
    learn_preferences_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.message
    assert job.result["status"] == "active" and "inferred preferences" in job.message


@pytest.mark.django_db
def test_the_lights_without_a_room_go_to_the_room_the_user_usually_names(alice, nlu_model, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    asked = handle_turn(alice, text="turn on the lights", now=NOON)
    assert "Which room?" in asked.response  # a browser knows no room
    for minute in range(1, 4):
        handle_turn(alice, text="turn on the kitchen lights", now=NOON + timedelta(minutes=minute))
    train_and_register(_quiet)
    turn = handle_turn(alice, text="turn on the lights", now=NOON + timedelta(minutes=10))
    assert turn.action["params"]["room"] == "kitchen" and turn.action["params"]["preference"] == INFERRED
