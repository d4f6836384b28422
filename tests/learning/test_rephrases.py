"""The rephrase detector (learning/rephrases.py) on handmade turns, its Celery task and learning step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feedback.models import BargeIn, Feedback, Rephrase, Session, Turn
from learning.models import Job
from learning.rephrases import PairFeatures, detect_rephrases, score_features
from learning.tasks import detect_rephrases_task

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _turn(user, text: str, at: datetime, *, intent: str = "", status: str = Turn.Status.OK, session=None) -> Turn:
    session = session or Session.objects.create(user=user, channel="web", started_at=at)
    return Turn.objects.create(
        session=session, user=user, created_at=at, raw_text=text, asr_text=text, intent=intent, status=status
    )


def test_scorer_is_bounded_and_monotone():
    low = PairFeatures(sem=0.0, lex=0.0, close=0.0, failed=0.0, same=0.0)
    high = PairFeatures(sem=1.0, lex=1.0, close=1.0, failed=1.0, same=1.0)
    assert 0.0 <= score_features(low) < 0.1
    assert 0.9 < score_features(high) <= 1.0
    failed = PairFeatures(sem=0.5, lex=0.4, close=0.8, failed=1.0, same=0.0)
    assert score_features(failed) > score_features(PairFeatures(**{**failed.as_dict(), "failed": 0.0}))


@pytest.mark.django_db
def test_detects_a_quick_rephrase_after_a_barge_in_and_not_unrelated_or_distant_turns(alice, bob):
    # alice: a failed request, interrupted, then the same wish in other words 6 s later.
    first = _turn(alice, "play some jazz music in the kitchn", T0, intent="music_play_genre")
    BargeIn.objects.create(turn=first, offset_words=2, offset_ms=700, source=BargeIn.Source.STOP)
    second = _turn(alice, "put on jazz in the kitchen", T0 + timedelta(seconds=6), session=first.session)
    # alice, later: two unrelated requests 10 s apart.
    lights = _turn(alice, "turn on the lights", T0 + timedelta(hours=1), intent="iot_lights_on")
    weather = _turn(alice, "what's the weather", T0 + timedelta(hours=1, seconds=10), intent="weather_query")
    # bob: the same wording twice, but ten minutes apart (and a thumbs down): not a retry.
    far1 = _turn(bob, "set an alarm for seven", T0, intent="alarm_set")
    Feedback.objects.create(turn=far1, kind=Feedback.Kind.THUMBS_DOWN)
    far2 = _turn(bob, "set an alarm for seven", T0 + timedelta(minutes=10), intent="alarm_set")

    result = detect_rephrases()
    pairs = set(Rephrase.objects.values_list("first_id", "second_id"))
    assert (first.pk, second.pk) in pairs
    assert (lights.pk, weather.pk) not in pairs
    assert (far1.pk, far2.pk) not in pairs
    assert pairs == {(first.pk, second.pk)}
    row = Rephrase.objects.get()
    assert 0.5 <= row.score <= 1.0 and row.gap_ms == 6000 and row.detector_version
    assert result["detected"] == result["created"] == 1
    assert result["watermark_id"] == far2.pk

    # Rerun: nothing new, nothing duplicated.
    again = detect_rephrases()
    assert again["created"] == 0 and again["already_stored"] == 1
    assert Rephrase.objects.count() == 1

    # Only new turns: a retry of bob's alarm 5 s after his last turn is found from the watermark.
    retry = _turn(bob, "wake me up at seven", far2.created_at + timedelta(seconds=5), intent="alarm_set")
    incremental = detect_rephrases(after_id=result["watermark_id"])
    assert incremental["candidates"] == 1
    assert Rephrase.objects.filter(first=far2, second=retry).exists()


@pytest.mark.django_db
def test_a_retry_after_an_interleaved_request_pairs_with_what_it_retries(alice):
    timer = _turn(alice, "set a timer for ten minutes", T0, status=Turn.Status.OUT_OF_SCOPE)
    aside = _turn(alice, "what's the weather like", T0 + timedelta(seconds=3), intent="weather_query")
    retry = _turn(alice, "start a ten minute timer", T0 + timedelta(seconds=8), intent="timer_set")
    detect_rephrases()
    assert set(Rephrase.objects.values_list("first_id", "second_id")) == {(timer.pk, retry.pk)}
    assert not Rephrase.objects.filter(second=aside).exists()


@pytest.mark.django_db
def test_no_turns_is_a_clean_no_op():
    result = detect_rephrases(since=T0)
    assert result["candidates"] == 0 and result["detected"] == 0 and result["watermark_id"] is None


@pytest.mark.django_db
def test_task_run_eagerly_updates_the_job_and_continues_from_the_watermark(alice):
    a = _turn(alice, "what is the weather in paris", T0, status=Turn.Status.OUT_OF_SCOPE)
    b = _turn(alice, "weather forecast for paris", T0 + timedelta(seconds=4), intent="weather_query")
    job = Job.objects.create(kind=detect_rephrases_task.job_kind)
    detect_rephrases_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.message
    assert job.progress == 1.0 and job.finished_at is not None
    assert job.result["detected"] == 1 and job.result["watermark_id"] == b.pk
    assert Rephrase.objects.filter(first=a, second=b).exists()

    # The next run starts after the watermark: no candidates left.
    nxt = Job.objects.create(kind=detect_rephrases_task.job_kind)
    detect_rephrases_task.apply(args=[nxt.pk])
    nxt.refresh_from_db()
    assert nxt.status == Job.Status.DONE and nxt.result["candidates"] == 0 and nxt.result["after_id"] == b.pk

    # A done job is not run twice; bad params fail the job with a message, not a crash.
    detect_rephrases_task.apply(args=[nxt.pk])
    bad = Job.objects.create(kind=detect_rephrases_task.job_kind, params={"after_id": "not a number"})
    detect_rephrases_task.apply(args=[bad.pk])
    bad.refresh_from_db()
    assert bad.status == Job.Status.FAILED and "ValueError" in bad.message
    detect_rephrases_task.apply(args=[999999])  # unknown job: logged and skipped


def test_rephrase_step_runs_before_nlu_training():
    from learning.cycle import LEARNING_STEPS

    names = [s.name for s in LEARNING_STEPS]
    assert "rephrases" in names and names.index("rephrases") < names.index("nlu")


@pytest.mark.django_db
def test_simulator_scores_the_detector_against_true_links(nlu_model, tmp_path):
    import json

    from django.conf import settings

    from simulator.run import SimConfig, run_simulation

    shared = settings.BASE_DIR.parent / "shared" / "data" / "slurp"
    goals, pairs = shared / "paraphrase_groups.jsonl", shared / "asr_pairs.jsonl"
    if not goals.exists() or not pairs.exists():
        pytest.skip("shared SLURP data missing")
    config = SimConfig(
        goals=goals,
        asr_pairs=pairs,
        users=4,
        days=2,
        turns_per_user_day=4,
        seed=5,
        sync=True,
        tag="rph",
        truth_path=tmp_path / "truth.jsonl",
    )
    report = run_simulation(config)
    detection = report["summary"]["rephrase_detection"]
    assert set(detection) == {"precision", "recall", "f1", "n_detected", "n_true"}
    for key in ("precision", "recall", "f1"):
        assert detection[key] is not None and 0.0 <= detection[key] <= 1.0
    assert detection["n_true"] == report["summary"]["rephrase_links"]
    # Scored on the goals' turns: a teaching probe's follow-up ("how did Leeds do" after "how did my team
    # do" missed) is a rephrase too, but not part of the goals' truth.
    with open(tmp_path / "truth.jsonl", encoding="utf-8") as handle:
        scored = {r["turn_id"] for r in map(json.loads, handle) if not r.get("teaching") and r["supported"]}
    rows = Rephrase.objects.filter(second__user__username__startswith="sim-rph-").values_list("first_id", "second_id")
    assert detection["n_detected"] == sum(1 for a, b in rows if a in scored and b in scored)
    assert all(d["all"]["rephrase_detection"]["precision"] is not None for d in report["days"])
    # The detector ran as a learning step after each day (the last one for the report).
    assert [c["steps"]["rephrases"]["status"] for c in report["run"]["learning"]] == [Job.Status.DONE] * 2

    # Without learning the detector does not run: the scores are null.
    quiet = run_simulation(
        SimConfig(
            goals=goals, asr_pairs=pairs, users=2, days=1, turns_per_user_day=2, seed=5, tag="rph0", learning="none"
        )
    )
    assert quiet["summary"]["rephrase_detection"]["precision"] is None
