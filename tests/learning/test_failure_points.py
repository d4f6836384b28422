"""The failure-point model: self-labels from how people retried, reviewers' labels, the learning step that
trains, gates and stores a point on every likely defect, and what the clusters make of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from assistant.models import ModelVersion
from feedback.labels import label_turn
from feedback.models import DefectCluster, Label, Rephrase, Session, Turn
from learning import failure_points as fp
from learning.clusters import build_clusters

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _turn(
    user,
    text: str,
    *,
    at=NOON,
    intent: str = "iot_hue_lightoff",
    slots: dict | None = None,
    defect: float = 0.9,
    confidence: float = 0.5,
    resolve_error: str = "",
    execute_ok: bool = True,
    rewrite_from: str = "",
) -> Turn:
    session = Session.objects.create(user=user, channel=Session.Channel.WEB, started_at=at)
    trace = [
        {"stage": "asr", "input": [text], "output": text, "confidence": None, "ms": 0.1},
        {
            "stage": "nlu",
            "input": text,
            "output": {"intent": rewrite_from or intent, "alternatives": [[rewrite_from or intent, confidence]]},
            "confidence": confidence,
            "ms": 5.0,
        },
        {"stage": "resolve", "output": {"intent": intent, "params": {"error": resolve_error} if resolve_error else {}}},
        {"stage": "execute", "output": {"ok": execute_ok and not resolve_error, "text": "", "data": {}}},
    ]
    return Turn.objects.create(
        session=session,
        user=user,
        created_at=at,
        raw_text=text,
        asr_text=text,
        intent=intent,
        slots=slots or {},
        nlu_confidence=confidence,
        defect_probability=defect,
        trace=trace,
        rewrite={"from": text, "to": "x", "kept": True, "scope": "global", "original": {"intent": rewrite_from}}
        if rewrite_from
        else None,
    )


def _retry(first: Turn, second: Turn) -> None:
    Rephrase.objects.create(first=first, second=second, score=0.9, gap_ms=20_000)


def test_a_request_language_model_finds_misheard_words_more_surprising():
    lm = fp.RequestLanguageModel.fit(["turn off the kitchen lights", "turn on the kitchen lights", "set an alarm"])
    heard_right, _, unknown_right = lm.features("turn off the kitchen lights")
    misheard, _, unknown_wrong = lm.features("turn of the kitchen light")
    assert heard_right < misheard and unknown_right == 0.0 < unknown_wrong
    assert lm.features("") == (0.0, 0.0, 0.0)


def test_a_retry_re_says_the_words_when_each_sounds_like_one_of_the_others():
    assert fp.resaid("turn of the kitchen light", "turn off the kitchen lights")
    assert not fp.resaid("chane colour to green", "change your colors to green")
    assert fp.same_sound_share("wake me up", "") == 0.0


def test_self_labels_say_where_a_turn_failed_from_the_retry_that_went_well(alice):
    at = iter(NOON + timedelta(minutes=i) for i in range(100))

    def pair(first: Turn, **second) -> fp.Retry:
        later = _turn(alice, second.pop("text"), at=next(at), defect=0.05, **second)
        _retry(first, later)
        return fp.follow_retries(first, {first.pk: list(Rephrase.objects.filter(first=first))})

    misheard = _turn(alice, "turn of the kitchen light", at=next(at), intent="music_play")
    assert fp.self_label(misheard, pair(misheard, text="turn off the kitchen lights")) == "asr"
    misread = _turn(alice, "kill the lights in here", at=next(at), intent="music_play")
    assert fp.self_label(misread, pair(misread, text="turn off the lights")) == "nlu"
    rewritten = _turn(alice, "lights off now", at=next(at), intent="music_play", rewrite_from="iot_hue_lightoff")
    assert fp.self_label(rewritten, pair(rewritten, text="lights off please")) == "rewrite"
    unresolved = _turn(
        alice, "lights off in the attic", at=next(at), slots={"room": "attic"}, resolve_error="No attic."
    )
    assert fp.self_label(unresolved, pair(unresolved, text="attic lights off", slots={"room": "attic"})) == "resolve"
    undone = _turn(alice, "switch the lights off", at=next(at), execute_ok=False)
    assert fp.self_label(undone, pair(undone, text="lights off")) == "execute"
    # A request that left out what the product should have known: the retry adds it (resolve), unless the
    # failed words had said it and the NLU missed it (nlu).
    vague = _turn(alice, "how did my team do", at=next(at), intent="sports_query", resolve_error="Which team?")
    told = pair(vague, text="how did chelsea do", intent="sports_query", slots={"team": "chelsea"})
    assert fp.self_label(vague, told) == "resolve"
    missed = _turn(alice, "how did chelsea do", at=next(at), intent="sports_query", resolve_error="Which team?")
    said = pair(missed, text="how did chelsea fc do", intent="sports_query", slots={"team": "chelsea"})
    assert fp.self_label(missed, said) == "nlu"
    same_words = _turn(alice, "lights off", at=next(at), intent="music_play")
    assert fp.self_label(same_words, pair(same_words, text="lights off")) is None
    assert fp.self_label(_turn(alice, "hello there", at=next(at)), fp.Retry()) is None


def test_words_that_sound_like_a_request_that_went_well_in_other_words_were_misheard(alice):
    good = fp.GoodRequests.of(
        [("set an alarm for seven", "alarm_set"), ("set an alarm for seven", "alarm_set"),
         ("turn off the lights", "iot_hue_lightoff"), ("what's the weather", "weather_query"),
         ("hello", "out_of_scope")]
    )  # fmt: skip
    alike, read_as = good.nearest("said an alarm for seven")
    assert alike * 100 >= fp.SOUNDS_LIKE and read_as == "alarm_set"
    assert good.nearest("said an alarm for seven", "weather_query")[0] * 100 < fp.SOUNDS_LIKE
    assert good.nearest("set an alarm for seven")[0] * 100 < fp.SOUNDS_LIKE  # its own words are not a mishearing
    assert "hello" not in good.texts  # read as out of scope: not a request that went well
    assert fp.GoodRequests.of([]).nearest("anything") == (0.0, None)

    # The user tried again in other words, which went well: the failed words were that request misheard.
    misheard = _turn(alice, "said an alarm for seven", intent="music_play")
    later = _turn(alice, "wake me up at seven", at=NOON + timedelta(minutes=1), intent="alarm_set", defect=0.05)
    _retry(misheard, later)
    retry = fp.follow_retries(misheard, {misheard.pk: list(Rephrase.objects.filter(first=misheard))})
    assert fp.self_label(misheard, retry) == "nlu"  # without knowing what went well
    assert fp.self_label(misheard, retry, good) == "asr"
    rows = fp.load_rows([misheard], fp.RequestLanguageModel.fit(["hello"]), good)
    features = dict(zip(fp.FEATURES, rows.x[0].tolist(), strict=True))
    assert features["sounds_like_good"] >= 0.85 and features["sounds_like_good_read_otherwise"] == 1.0
    assert features["retry_reading_sounds_like"] >= 0.85 and rows.label == ["asr"]


def _history(alice, bob) -> list[Turn]:
    """Failed turns of two kinds, each labelled by a reviewer: misheard words, and unknown rooms."""
    reviewer = get_user_model().objects.create_user("rita", is_staff=True)
    turns = []
    for i in range(60):
        user = alice if i % 2 else bob
        at = NOON + timedelta(minutes=i)
        if i % 2:
            turn = _turn(user, f"turn of the kitchen lice zq{i}", at=at, confidence=0.3)
            point = "asr"
        else:
            turn = _turn(user, "lights off in the attic", at=at, confidence=0.95, resolve_error="No attic.")
            point = "resolve"
        label_turn(turn, reviewer, failure_point=point, now=at)
        turns.append(turn)
    return turns


def test_the_learning_step_trains_gates_and_stores_a_point_on_every_likely_defect(alice, bob, tmp_path, settings):
    settings.MODEL_DIR = tmp_path
    turns = _history(alice, bob)
    unlabelled = _turn(
        alice, "lights off in the attic", at=NOON + timedelta(hours=2), confidence=0.9, resolve_error="x"
    )
    fine = _turn(alice, "what time is it", at=NOON + timedelta(hours=2), defect=0.05)
    steps: list[str] = []
    trained = fp.train_and_register(lambda share, message: steps.append(message))
    assert trained["status"] == ModelVersion.Status.ACTIVE, trained
    assert len(trained["version"]) + len(str(10**7)) - len(str(max(t.pk for t in turns))) <= 40  # fits at 10M turns
    assert trained["metrics"]["labels"] == {"asr": 30, "resolve": 30} and trained["metrics"]["reviewed"] == 60
    assert trained["metrics"]["holdout"]["n"] > 0
    stored = fp.store_points(lambda share, message: None)
    assert stored["stored"] == len(turns) + 1
    unlabelled.refresh_from_db()
    fine.refresh_from_db()
    assert unlabelled.failure_point == "resolve" and unlabelled.failure_point_model_version == trained["version"]
    assert 0.0 < unlabelled.failure_point_confidence <= 1.0
    assert fine.failure_point == ""  # not a likely defect: no point

    # A second version is compared with the first on the same held-out turns.
    again = fp.train_and_register(lambda share, message: None)
    assert "active_on_holdout" in again["metrics"] and again["status"] == ModelVersion.Status.ACTIVE

    # The inbox's clusters say where most of their turns failed.
    build_clusters()
    attic = DefectCluster.objects.get(representative="lights off in the attic")
    assert attic.failure_point == "resolve" and attic.failure_point_share == 1.0

    # A turn that is no longer a likely defect loses its point.
    Turn.objects.filter(pk=unlabelled.pk).update(defect_probability=0.1)
    fp.store_points(lambda share, message: None)
    unlabelled.refresh_from_db()
    assert unlabelled.failure_point == "" and unlabelled.failure_point_confidence is None


def test_without_enough_labels_nothing_is_trained(alice, tmp_path, settings):
    settings.MODEL_DIR = tmp_path
    with pytest.raises(fp.NotEnoughEvidence):
        fp.train_and_register(lambda share, message: None)  # no turn at all
    _turn(alice, "lights off")
    with pytest.raises(fp.NotEnoughEvidence, match="labelled failed turns"):
        fp.train_and_register(lambda share, message: None)
    assert not ModelVersion.objects.filter(kind="failure_point").exists()


def test_the_gate_refuses_a_less_accurate_version_beyond_sampling_noise():
    def candidate(mine: float, theirs: float, n: int = 400) -> dict:
        return {"metrics": {"holdout": {"accuracy": mine, "n": n}, "active_on_holdout": {"accuracy": theirs, "n": n}}}

    assert fp.gate(candidate(0.7, 0.9), None).promote
    assert not fp.gate(candidate(0.7, 0.9), {"version": "a"}).promote
    assert fp.gate(candidate(0.89, 0.9), {"version": "a"}).promote
    assert fp.gate({"metrics": {}}, {"version": "a"}).promote  # nothing to compare on


def test_a_label_naming_only_a_failure_point_leaves_the_nlu_labels_alone(alice):
    from learning.generated_labels import generate_labels

    reviewer = get_user_model().objects.create_user("rita", is_staff=True)
    failed = _turn(alice, "kill the lights in here", intent="music_play", defect=0.95)
    worked = _turn(alice, "turn off the lights", at=NOON + timedelta(seconds=20), defect=0.02)
    _retry(failed, worked)
    label_turn(failed, reviewer, failure_point=Label.FailurePoint.NLU)
    generate_labels()
    assert failed.generated_label.intent == "iot_hue_lightoff"


def test_features_are_finite_for_odd_turns(alice):
    odd = Turn.objects.create(
        session=Session.objects.create(user=alice, channel=Session.Channel.WEB, started_at=NOON),
        user=alice,
        created_at=NOON,
        raw_text="",
        trace=[{"stage": "nlu", "output": "not a dict"}, "junk", {"stage": "execute", "error": "boom"}],
        defect_probability=0.9,
    )
    rows = fp.load_rows([odd], fp.RequestLanguageModel.fit(["hello"]))
    assert np.isfinite(rows.x).all() and rows.x[0, fp.FEATURES.index("stage_error_execute")] == 1.0


def test_a_version_trained_on_fewer_features_still_answers_on_its_own(alice, bob, tmp_path, settings):
    """An artifact from before a feature was added reads only the columns it was trained on; one naming a
    feature this code no longer computes is refused when loaded."""
    import json

    import lightgbm

    settings.MODEL_DIR = tmp_path
    turns = _history(alice, bob)
    lm = fp.RequestLanguageModel.fit(["turn off the kitchen lights"])
    rows = fp.load_rows(turns, lm)
    older = fp.FEATURES[:-3]
    classifier = lightgbm.LGBMClassifier(n_estimators=10, min_child_samples=2, verbose=-1)
    classifier.fit(rows.x[:, : len(older)], rows.label)
    model = fp.FailurePointModel("fp-old", classifier, list(classifier.classes_), lm, features=older)
    points, confidence = model.predict(rows.x)
    assert set(points) <= {"asr", "resolve"} and len(confidence) == len(turns)

    trained = fp.train_and_register(lambda share, message: None)
    path = tmp_path / "failure_point" / trained["version"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert fp._load(path).features == fp.FEATURES
    manifest["features"] = [*older, "a_feature_since_removed"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="no longer computes"):
        fp._load(path)


def test_a_retried_turn_is_also_learned_as_it_looked_before_the_retry():
    x = np.ones((2, len(fp.FEATURES)), dtype=np.float32)
    before = fp.before_the_retry(x)
    for name, column in zip(fp.FEATURES, before.T, strict=True):
        assert (column == 0.0).all() == (name in fp.RETRY_FEATURES), name
    assert {"retried", "retry_same_intent", "retry_reading_sounds_like"} <= set(fp.RETRY_FEATURES)
    assert (x == 1.0).all()  # a copy
