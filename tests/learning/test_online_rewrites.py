"""Online rewriting: the index's layers and ranker on hand-made entries, and an index built and
trained from stored chains rewriting a new person's risky turn through the real pipeline."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from assistant.pipeline.turn import handle_turn
from assistant.rewrite.online import (
    CANDIDATE_FEATURES,
    REWRITE_INDEXES,
    Entry,
    Query,
    RewriteIndex,
    slots_kept,
)
from assistant.text import sounds
from assistant.turns import NluResult
from feedback.models import Rephrase, Session, Turn
from learning.online import build_and_register, choose_threshold, gate


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


class PrefersPersonal:
    """A stand-in ranker with the shape of a LightGBM booster: personal history counts most."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        names = list(CANDIDATE_FEATURES)
        return x[:, names.index("cosine")] + 2 * x[:, names.index("log_personal_count")]


class Sure:
    """A stand-in fire model: the same probability for any turn."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), 0.7)


def _index(ranker=None, threshold=0.5, fire_model=None, **manifest) -> RewriteIndex:
    washington = Entry(
        "weather in wilkerson washington", "weather_query", {"place": "wilkerson washington"}, 50, 40, 0.9, 0
    )
    california = Entry(
        "weather in wilkerson california", "weather_query", {"place": "wilkerson california"}, 4, 1, 1.0, 1
    )
    arrays = {
        "global_vectors": np.stack([unit([1, 0.1, 0])]),
        "personal_vectors": np.stack([unit([1, 0.12, 0])]),
    }
    meta = {
        "global": [washington.__dict__],
        "personal": [california.__dict__],
        "personal_rows": {"7": [0]},
        "known_good": ["what's the weather"],
    }
    manifest = {"threshold": threshold, **manifest}
    return RewriteIndex("test", manifest, arrays, meta, ranker or PrefersPersonal(), fire_model)


def _query(text="weather in wilkersen", confidence=0.3) -> Query:
    return Query(
        text,
        unit([1, 0.11, 0]),
        NluResult(text, "weather_query", confidence, {}, alternatives=(("weather_query", confidence),)),
    )


def test_the_personal_layer_wins_where_the_users_history_supports_it():
    index = _index()
    pick = index.best(_query(), 7, use_global=True, use_personal=True)
    assert (pick.entry.text, pick.personal) == ("weather in wilkerson california", True)
    # Someone else (no history) gets what most people mean.
    pick = index.best(_query(), 8, use_global=True, use_personal=True)
    assert (pick.entry.text, pick.personal) == ("weather in wilkerson washington", False)
    # The global arm never sees personal entries.
    assert index.best(_query(), 7, use_global=True, use_personal=False).entry.text == "weather in wilkerson washington"


def test_it_never_rewrites_what_usually_works_and_fires_only_above_its_threshold():
    assert _index().best(_query("what's the weather"), 7, use_global=True, use_personal=True) is None
    assert _index(threshold=math.inf).best(_query(), 7, use_global=True, use_personal=True) is None
    assert _index(threshold=100.0).best(_query(), 8, use_global=True, use_personal=True) is None


def test_words_known_to_fail_are_risky_whoever_says_them_or_only_for_the_one_who_does():
    index = _index()
    index.known_bad = {"weather in wilkersen"}
    index.personal_bad = {7: {"weather at the den"}}
    assert index.known_to_fail("weather in wilkersen", 8, use_personal=False)
    assert index.known_to_fail("weather at the den", 7, use_personal=True)
    assert not index.known_to_fail("weather at the den", 7, use_personal=False)  # the global arm
    assert not index.known_to_fail("weather at the den", 8, use_personal=True)  # someone else


def test_the_fire_model_judges_each_view_by_its_own_threshold():
    """With the person's own layer in use the fire model knows more of them and is surer; the global layer alone
    (the global arm, or a person with no layer yet) fires from its own, lower, threshold."""

    def fires(manifest: dict, user: int, use_personal: bool) -> bool:
        index = _index(threshold=math.inf, fire_model=Sure(), **manifest)
        query = _query(confidence=0.9)
        return index.best(query, user, use_global=True, use_personal=use_personal, risky=False) is not None

    views = {"fire_threshold": 0.9, "global_fire_threshold": 0.6}
    assert not fires(views, 7, use_personal=True)  # 0.7 is not sure enough with the personal layer
    assert fires(views, 7, use_personal=False) and fires(views, 8, use_personal=True)  # global layer alone
    assert not fires({"fire_threshold": 0.9}, 8, use_personal=True)  # an older index: one threshold for both
    assert not fires({"fire_threshold": 0.6, "global_fire_threshold": None}, 8, use_personal=True)
    assert fires({"fire_threshold": 0.6, "global_fire_threshold": None}, 7, use_personal=True)


def test_the_persons_own_record_reaches_the_fire_model_only_in_the_personal_view():
    """The fire model learned the global view with a blank personal record: a person without a layer of their
    own, or on the global arm, is judged so at run time too, whatever they said before."""
    from assistant.rewrite.online import FIRE_FEATURES, Record

    seen = []

    class Records:  # a stand-in fire model that remembers the personal record it was shown
        def predict(self, x):
            seen.append(x[0, list(FIRE_FEATURES).index("log_personal_seen")])
            return np.full(len(x), 0.0)

    index = _index(threshold=math.inf, fire_model=Records(), fire_threshold=0.5)
    index.personal_records = {7: {"weather in wilkersen": Record(5, 0)}, 8: {"weather in wilkersen": Record(5, 0)}}
    for user, use_personal in ((7, True), (7, False), (8, True)):
        index.best(_query(confidence=0.9), user, use_global=True, use_personal=use_personal, risky=False)
    assert seen[0] > 0 and seen[1:] == [0.0, 0.0]


def test_the_gate_refuses_an_index_whose_fire_model_misses_the_precision_in_either_view(settings):
    settings.ONLINE_REWRITE_PRECISION = settings.ONLINE_FIRE_PRECISION = 0.9

    def index(personal: tuple[int, int], global_layer: tuple[int, int]) -> dict:
        views = {
            "personal": {"fired": personal[0], "right": personal[1]},
            "global": {"fired": global_layer[0], "right": global_layer[1]},
        }
        return {"metrics": {"holdout": {"fired": 10, "right": 10}, "fire": {"trained": True, "holdout": views}}}

    assert gate(index((100, 96), (120, 110)), None).promote
    refused = gate(index((100, 96), (120, 100)), None)
    assert not refused.promote and "global view" in refused.note
    assert gate(index((0, 0), (0, 0)), None).promote  # neither view fires yet


def test_a_candidate_that_swaps_what_the_person_named_is_told_apart_from_one_that_corrects_a_mishearing():
    assert slots_kept({"room": "kitchn"}, {"room": "kitchen"}) == 1.0
    assert slots_kept({"place": "wilkersen"}, {"place": "wilkerson california"}) == 1.0
    assert slots_kept({"room": "kitchen"}, {"room": "bedroom"}) == 0.0
    assert slots_kept({"time": "5 am", "date": "tomorrow"}, {"time": "5 pm", "date": "tomorrow"}) == 0.5
    assert slots_kept({"date": "this week"}, {"date": "next week"}) == 0.0
    assert math.isnan(slots_kept({}, {"room": "kitchen"}))


def test_candidates_that_sound_the_same_are_found():
    assert sounds("turn of the kitchn lights") == sounds("turn off the kitchen lights")
    # A number has no metaphone code: it sounds like itself, not like every other number.
    assert sounds("wake me at 7") != sounds("wake me at 8")


def test_the_threshold_is_the_lowest_score_meeting_the_precision():
    scored = [(0.9, True)] * 8 + [(0.8, True)] * 4 + [(0.7, False)] * 3 + [(0.6, True)] * 2 + [(0.5, False)] * 5
    threshold, stats = choose_threshold(scored, precision=0.8)
    assert threshold == 0.6 and stats["fired"] == 17 and stats["right"] == 14
    assert choose_threshold([(0.9, False)] * 10, precision=0.9)[0] == math.inf


# --- built from the store ------------------------------------------------------------------

REQUESTS = [
    ("turn of the kitchn lights", "turn off the kitchen lights", "iot_hue_lightoff", {"room": "kitchen"}),
    ("lights of in bedroom", "turn off the bedroom lights", "iot_hue_lightoff", {"room": "bedroom"}),
    ("what the whether like", "what's the weather like", "weather_query", {}),
    ("play some jaz", "play some jazz", "play_music", {"genre": "jazz"}),
    ("said a timer for ten minutes", "set a timer for 10 minutes", "timer_set", {"duration": "10 minutes"}),
    ("ad milk to my shopping list", "add milk to my shopping list", "lists_createoradd", {"item": "milk"}),
]


def _turn(user, session, text, at, *, intent, slots, defect, status=Turn.Status.OK, confidence=0.9):
    nlu = {
        "intent": intent,
        "slots": slots,
        "confidence": confidence,
        "out_of_scope": status == Turn.Status.OUT_OF_SCOPE,
    }
    return Turn.objects.create(
        session=session, user=user, created_at=at, raw_text=text, asr_text=text, intent=intent, slots=slots,
        nlu_confidence=confidence, status=status, defect_probability=defect, response="ok",
        trace=[{"stage": "nlu", "output": {**nlu, "alternatives": [[intent, confidence]]}}],
    )  # fmt: skip


def _store_chains(prefix: str, **failed_reading) -> datetime:
    """Eight people (prefix0..7) each say every request of REQUESTS badly, twice, read as `failed_reading`
    and then rephrased into a success a few seconds later. Returns when they started (a day ago)."""
    User = get_user_model()
    start = timezone.now() - timedelta(days=1)
    for u in range(8):
        person = User.objects.create_user(f"{prefix}{u}")
        session = Session.objects.create(user=person, channel=Session.Channel.SIMULATOR, started_at=start)
        for r, (bad, good, intent, slots) in enumerate(REQUESTS * 2):
            at = start + timedelta(minutes=10 * r + u)
            first = _turn(person, session, bad, at, slots={}, defect=0.9, **failed_reading)
            second = _turn(person, session, good, at + timedelta(seconds=6), intent=intent, slots=slots, defect=0.05)
            Rephrase.objects.create(first=first, second=second, score=0.9, gap_ms=6000, detector_version="t")
    return start


@pytest.mark.django_db
def test_an_index_built_from_stored_chains_rewrites_a_new_persons_risky_turn(nlu_model, settings, alice):
    settings.MINE_MIN_USERS = 3
    settings.ONLINE_REWRITE_PRECISION = 0.9
    _store_chains("chain", intent="out_of_scope", status=Turn.Status.OUT_OF_SCOPE, confidence=0.2)
    result = build_and_register(lambda f, m: None)
    assert result["status"] == "active", result
    assert result["metrics"]["global_entries"] == len(REQUESTS)
    assert result["threshold"] is not None, result["metrics"]
    REWRITE_INDEXES.reset_loaded()

    turn = handle_turn(alice, text="turn of the kitchn lights")
    assert turn.rewrite is not None and turn.rewrite["layer"] == "online-global", turn.rewrite
    assert turn.rewrite["kept"] and turn.rewrite["to"] == "turn off the kitchen lights"
    assert turn.intent == "iot_hue_lightoff" and turn.slots.get("room") == "kitchen"
    # A confident turn is left alone…
    calm = handle_turn(alice, text="what's the weather like")
    assert calm.rewrite is None
    # …unless its words are known to fail: the NLU is often confidently wrong.
    assert result["metrics"]["known_bad"] == len(REQUESTS)
    jazz = handle_turn(alice, text="play some jaz")
    assert jazz.rewrite is not None and jazz.rewrite["to"] == "play some jazz", (jazz.nlu_confidence, jazz.rewrite)


@pytest.mark.django_db
def test_the_fire_model_rewrites_words_that_keep_failing_however_confident_the_nlu(
    nlu_model, settings, alice, monkeypatch
):
    from django.db import connection

    from learning import online

    monkeypatch.setattr(online, "KNOWN_BAD_MIN", 10**6)  # nothing is "known to fail": only the fire model decides
    # The fire model's held-out turns are picked by a hash of their ids; in a store this small which ids they get
    # (after however many turns earlier tests created) decides whether the held-out fires reach the precision.
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('feedback_turn', 'id'), 1, false)")
    settings.MINE_MIN_USERS = 3
    settings.ONLINE_REWRITE_PRECISION = settings.ONLINE_FIRE_PRECISION = 0.9
    settings.ONLINE_FIRE_MIN_FIRES = 30  # a small store
    # The NLU read the failed words as confidently as those that went well, and wrongly.
    start = _store_chains("sure", intent="weather_query", confidence=0.9)
    User = get_user_model()
    # Alice said it once before, read the same confident wrong way, and did not go on.
    mine = Session.objects.create(user=alice, channel=Session.Channel.SIMULATOR, started_at=start)
    _turn(alice, mine, "play some jaz", start, intent="weather_query", slots={}, defect=0.9, confidence=0.9)
    lone = User.objects.get(username="sure0")
    _turn(
        lone, Session.objects.filter(user=lone).first(), "call my sister", start, intent="calling", slots={}, defect=0.1
    )
    result = build_and_register(lambda f, m: None)
    assert result["metrics"]["known_bad"] == 0
    assert result["metrics"]["fire"]["trained"] and result["status"] == "active", result["metrics"]
    REWRITE_INDEXES.reset_loaded()
    index = REWRITE_INDEXES.model()
    assert index.judges(alice.pk, use_personal=True)
    # The record of words one person said stays in their own layer; everyone's holds what several said.
    assert "call my sister" not in index.records and index.records["play some jaz"].seen == 17
    assert index.personal_records[lone.pk]["call my sister"].good == 1

    jazz = handle_turn(alice, text="play some jaz")
    assert jazz.rewrite is not None and jazz.rewrite["kept"] and jazz.rewrite["to"] == "play some jazz", jazz.rewrite
    # Read confidently enough that, without the fire model, it would not even have been tried.
    assert jazz.rewrite["original"]["confidence"] >= settings.ONLINE_REWRITE_BELOW
    assert (
        jazz.rewrite["layer"] == "online-global"
        and jazz.rewrite["fire_probability"] >= index.fire_thresholds[index.view(alice.pk, use_personal=True)]
    )
    # Words that went well for everyone are left as they are.
    assert handle_turn(alice, text="add milk to my shopping list").rewrite is None


def test_a_version_name_fits_where_it_is_stored_however_many_turns_there_are():
    from assistant.artifacts import version_name
    from assistant.models import ModelVersion

    longest = version_name("rewrite-index", 2**63 - 1)  # the longest prefix, the largest turn id
    assert len(longest) <= ModelVersion._meta.get_field("version").max_length
    assert len(version_name("rephrase", 2**63 - 1)) <= Rephrase._meta.get_field("detector_version").max_length
    assert len(version_name("defect", 2**63 - 1)) <= Turn._meta.get_field("defect_model_version").max_length
    assert len(version_name("fp", 2**63 - 1)) <= Turn._meta.get_field("failure_point_model_version").max_length


@pytest.mark.django_db
def test_a_confident_turn_is_not_embedded_where_the_fire_model_could_not_fire_on_it(monkeypatch):
    """The fire model judges a person's confident turns only in a view with a threshold; where it has none (its
    held-out fires never met the precision) nothing can fire on them, so the embedding is not computed."""
    from assistant.rewrite.rules import online_rewrite

    index = _index(threshold=math.inf, fire_model=Sure(), fire_threshold=0.6, global_fire_threshold=None)
    assert index.judges(7, use_personal=True)  # 7 has a personal layer: the personal view, threshold 0.6
    assert not index.judges(8, use_personal=True) and not index.judges(7, use_personal=False)  # the global view
    monkeypatch.setattr(REWRITE_INDEXES, "model", lambda: index)
    embedded = []

    def embed(text):
        embedded.append(text)
        return unit([1, 0.11, 0])

    confident = _query(confidence=0.9).nlu

    def rewrite(user: int, use_personal: bool):
        return online_rewrite(
            "weather in wilkersen", confident, user, lambda t: confident, embed,
            allow_global=True, allow_personal=use_personal,
        )  # fmt: skip

    assert rewrite(8, True) == (None, confident) and rewrite(7, False) == (None, confident)
    assert embedded == []
    rewrite(7, True)  # judged: embedded, then the fire model decides
    assert embedded == ["weather in wilkersen"]


def test_the_words_of_a_judged_turn_are_embedded_beside_the_nlu_one_turn_at_a_time(monkeypatch):
    """For a person whose turns the fire model judges, the embedding starts before the NLU on another thread;
    words that usually work, a person it does not judge, and a turn that comes while another is being embedded
    early are embedded when asked."""
    import threading

    from assistant.rewrite import rules

    index = _index(threshold=math.inf, fire_model=Sure(), fire_threshold=0.6, global_fire_threshold=None)
    monkeypatch.setattr(REWRITE_INDEXES, "model", lambda: index)
    started, release, threads = threading.Event(), threading.Event(), []

    def embed(text):
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(10)
        return unit([1, 0.11, 0])

    early = rules.early_embedding("weather in wilkersen", 7, embed, allow_global=True, allow_personal=True)
    assert early is not embed and started.wait(10) and threads == ["early-embedding_0"]
    # While it runs, another turn's words wait for their own turn's rewrite stage.
    assert rules.early_embedding("weather in wilkerson", 7, embed, allow_global=True, allow_personal=True) is embed
    release.set()
    assert np.allclose(early("weather in wilkersen"), unit([1, 0.11, 0])) and len(threads) == 1
    early("something else")  # other words (another hypothesis chosen) are embedded when asked, here
    assert threads[-1] == threading.current_thread().name
    for text, user, use_personal in (
        ("what's the weather", 7, True),  # known to work: never rewritten
        ("weather in wilkersen", 8, True),  # no personal layer: the global view, which has no threshold
        ("weather in wilkersen", 7, False),  # the global arm
    ):
        assert rules.early_embedding(text, user, embed, allow_global=True, allow_personal=use_personal) is embed


def test_a_forked_process_embeds_early_on_a_thread_of_its_own(monkeypatch):
    """A process forked after its parent embedded early (a worker, the simulator's processes) gets a new executor:
    the inherited one would wait for a thread that is not there."""
    import multiprocessing

    from assistant.rewrite import rules

    index = _index(threshold=math.inf, fire_model=Sure(), fire_threshold=0.6, global_fire_threshold=None)
    monkeypatch.setattr(REWRITE_INDEXES, "model", lambda: index)
    early = rules.early_embedding("weather in wilkersen", 7, _unit_vector, allow_global=True, allow_personal=True)
    assert np.allclose(early("weather in wilkersen"), unit([1, 0.11, 0]))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_embed_early_in_child).get(timeout=60)


def _unit_vector(text):
    return unit([1, 0.11, 0])


def _embed_early_in_child() -> bool:
    from assistant.rewrite import rules

    early = rules.early_embedding("weather in wilkersen", 7, _unit_vector, allow_global=True, allow_personal=True)
    return early is not _unit_vector and bool(np.allclose(early("weather in wilkersen"), unit([1, 0.11, 0])))
