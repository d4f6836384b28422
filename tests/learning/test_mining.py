"""Rewrite mining: the absorbing chain on small graphs with known answers, the rules' guardrails,
privacy and poisoning, reconciliation with stored rules, outcomes, and a rule learned from
several people fixing a new person's request through the real pipeline."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from assistant.pipeline.turn import handle_turn
from feedback.models import Rephrase, RewriteRule, Session, Turn
from learning.mining import (
    Occurrences,
    absorption,
    build_chain,
    collect,
    mine,
    mine_and_store,
    plan_shards,
    store,
    subset,
    update_outcomes,
)


def occurrences(rows: list[tuple], links: list[tuple[int, int]] = ()) -> Occurrences:
    """rows: (id, user, text, defect[, intent]) -> Occurrences, as collect() builds them from the store."""
    first = {a for a, _ in links}
    turns = [
        (tid, user, tid, text, (rest[0] if rest else f"intent of {text}"), {}, defect, "ok", None, tid in first)
        for tid, user, text, defect, *rest in rows
    ]
    return collect(turns, links)


def test_absorption_on_a_two_step_graph_is_what_the_algebra_says():
    # u twice (half defective), once rephrased to v; v once, served.
    occ = occurrences([(1, 1, "u", 0.5), (2, 1, "v", 0.0), (3, 2, "u", 0.5)], links=[(1, 2)])
    chain = build_chain(occ)
    u, v = occ.texts.index("u"), occ.texts.index("v")
    assert chain.q[u, v] == pytest.approx(0.25)  # 0.5 of one occurrence out of two moves on
    assert chain.served[u] == pytest.approx(0.5)
    served = absorption(chain, [u])[u]
    assert served[v] == pytest.approx(0.25 * 0.999)
    assert served[u] == pytest.approx(0.5)


def test_absorption_matches_the_dense_fundamental_matrix_with_cycles():
    rng = np.random.default_rng(0)
    texts = [f"t{i}" for i in range(8)]
    rows, links, tid = [], [], 0
    for _ in range(60):  # chains of 1-3 tries, some going back and forth
        length = int(rng.integers(1, 4))
        chain_ids = []
        for _ in range(length):
            tid += 1
            rows.append((tid, int(rng.integers(1, 5)), texts[int(rng.integers(0, 8))], float(rng.uniform(0, 1))))
            chain_ids.append(tid)
        links += list(itertools.pairwise(chain_ids))
    occ = occurrences(rows, links)
    chain = build_chain(occ)
    dense = np.linalg.inv(np.eye(occ.nodes) - chain.q.toarray()) * chain.served
    solved = absorption(chain, list(range(occ.nodes)))
    for u in range(occ.nodes):
        np.testing.assert_allclose(solved[u], dense[u], atol=1e-9)
    # Every row is a distribution over "served somewhere" and "failed".
    assert (dense.sum(axis=1) <= 1 + 1e-9).all()


def _chains(users: range, bad: str, good: str, *, start: int = 0, bad_defect: float = 0.9) -> tuple[list, list]:
    rows, links = [], []
    for k, user in enumerate(users):
        a, b = start + 2 * k + 1, start + 2 * k + 2
        rows += [(a, user, bad, bad_defect, "weather_query"), (b, user, good, 0.05, "iot_hue_lightoff")]
        links.append((a, b))
    return rows, links


def test_a_rule_needs_k_distinct_people_and_never_names_them(settings):
    settings.MINE_MIN_USERS = 3
    rows, links = _chains(range(1, 4), "turn of the kitchn lights", "turn off the kitchen lights")
    rules = mine(occurrences(rows, links))
    assert [(r.source, r.target, r.users, r.user_id) for r in rules if r.user_id is None] == [
        ("turn of the kitchn lights", "turn off the kitchen lights", 3, None)
    ]
    rule = rules[0]
    assert rule.probability > 0.8 and rule.source_success < 0.2
    assert all(set(chain) == {"session", "path"} and len(chain["session"]) == 12 for chain in rule.evidence["chains"])
    # Two people are not enough.
    rows, links = _chains(range(1, 3), "turn of the kitchn lights", "turn off the kitchen lights")
    assert not [r for r in mine(occurrences(rows, links)) if r.user_id is None]


def test_one_person_repeating_a_poisoned_pair_makes_no_global_rule(settings):
    settings.MINE_MIN_USERS = 3
    rows, links = [], []
    for k in range(200):  # the same person, again and again
        rows += [(2 * k + 1, 7, "play some jazz", 0.9, "play_music"), (2 * k + 2, 7, "unlock the door", 0.0, "x")]
        links.append((2 * k + 1, 2 * k + 2))
    rules = mine(occurrences(rows, links))
    assert not [r for r in rules if r.user_id is None]
    # It only ever becomes that person's own rule.
    assert {(r.user_id, r.source) for r in rules} == {(7, "play some jazz")}


def test_an_utterance_that_mostly_succeeds_is_never_a_source(settings):
    rows, links = _chains(range(1, 6), "what's the weather", "weather today", bad_defect=0.9)
    rows += [(1000 + k, 10 + k, "what's the weather", 0.05, "weather_query") for k in range(20)]  # it works for most
    assert not mine(occurrences(rows, links))


def test_a_target_that_means_the_same_is_not_a_rule():
    rows, links = [], []
    for k in range(4):
        rows += [
            (2 * k + 1, k, "lights off", 0.9, "iot_hue_lightoff"),
            (2 * k + 2, k, "lights out", 0.0, "iot_hue_lightoff"),
        ]
        links.append((2 * k + 1, 2 * k + 2))
    assert not [r for r in mine(occurrences(rows, links)) if r.user_id is None]


def test_no_rule_rewrites_into_another_rules_source(settings):
    settings.MINE_MIN_TARGET_SUCCESS = 0.0  # let the middle utterance qualify as a target too
    a, la = _chains(range(1, 4), "x one", "x two")
    b, lb = _chains(range(1, 4), "x two", "x three", start=100)
    rules = [r for r in mine(occurrences(a + b, la + lb)) if r.user_id is None]
    sources, targets = {r.source for r in rules}, {r.target for r in rules}
    assert not sources & targets


def test_personal_rules_learn_what_only_one_person_says(settings):
    settings.MINE_PERSONAL_MIN_SUPPORT = 2
    rows, links = [], []
    for k in range(3):
        rows += [
            (2 * k + 1, 5, "play the den mix", 0.9, "weather_query"),
            (2 * k + 2, 5, "play my chill playlist", 0.0, "play_music"),
        ]
        links.append((2 * k + 1, 2 * k + 2))
    rules = mine(occurrences(rows, links))
    assert [(r.user_id, r.source, r.target) for r in rules] == [(5, "play the den mix", "play my chill playlist")]


# --- the store ----------------------------------------------------------------------


def _store_chain(user, bad: str, good: str, at, *, bad_intent="weather_query", good_intent="iot_hue_lightoff"):
    session = Session.objects.create(user=user, channel=Session.Channel.SIMULATOR, started_at=at)
    first = Turn.objects.create(
        session=session, user=user, created_at=at, raw_text=bad, asr_text=bad, intent=bad_intent,
        status=Turn.Status.OUT_OF_SCOPE, defect_probability=0.9, response="Sorry.",
    )  # fmt: skip
    second = Turn.objects.create(
        session=session, user=user, created_at=at + timedelta(seconds=5), raw_text=good, asr_text=good,
        intent=good_intent, defect_probability=0.05, response="Done.",
    )  # fmt: skip
    Rephrase.objects.create(first=first, second=second, score=0.9, gap_ms=5000, detector_version="test")
    return first, second


def _people(n: int, prefix: str = "p"):
    User = get_user_model()
    return [User.objects.create_user(f"{prefix}{i}") for i in range(n)]


@pytest.mark.django_db
def test_mining_stores_active_rules_and_retires_them_when_people_are_deleted(settings):
    settings.MINE_MIN_USERS = 3
    people = _people(3)
    now = timezone.now()
    for person in people:
        _store_chain(person, "turn of the kitchn lights", "turn off the kitchen lights", now)
    result = mine_and_store(lambda f, m: None)
    rule = RewriteRule.objects.get(scope=RewriteRule.Scope.GLOBAL)
    assert (rule.source_text, rule.target_text, rule.status, rule.user_id) == (
        "turn of the kitchn lights", "turn off the kitchen lights", RewriteRule.Status.ACTIVE, None
    )  # fmt: skip
    assert rule.distinct_users == 3 and rule.origin == RewriteRule.Origin.MINED and "3 user(s)" in rule.status_reason
    assert result["changes"] == {"created_active": 1}
    # Mining again changes nothing but the statistics.
    assert mine_and_store(lambda f, m: None)["changes"] == {"updated": 1}
    # A deleted person's chains leave the graph: two people are below k, the rule retires.
    people[0].delete()
    mine_and_store(lambda f, m: None)
    rule.refresh_from_db()
    assert rule.status == RewriteRule.Status.RETIRED and "fewer than 3" in rule.status_reason


@pytest.mark.django_db
def test_a_rule_learned_from_several_people_fixes_a_new_persons_request(nlu_model, settings, alice):
    settings.MINE_MIN_USERS = 3
    settings.MINE_MAX_SOURCE_SUCCESS = 0.6
    settings.MINE_ACTIVE_PROBABILITY = 0.6  # alice's own unlabelled try dilutes the chains a little
    bad, good = "lights of in the kitchn please", "turn off the kitchen lights"
    before = handle_turn(alice, text=bad)
    assert before.intent != "iot_hue_lightoff"  # the NLU alone gets it wrong
    now = timezone.now()
    for person in _people(4, "sim"):
        _store_chain(person, bad, good, now, bad_intent=before.intent)
    mine_and_store(lambda f, m: None)
    assert RewriteRule.objects.filter(source_text=bad, status=RewriteRule.Status.ACTIVE).exists()
    after = handle_turn(alice, text=bad)
    assert after.rewrite and after.rewrite["kept"] and after.rewrite["to"] == good
    assert after.intent == "iot_hue_lightoff" and after.slots.get("room") == "kitchen"


@pytest.mark.django_db
def test_a_rule_that_keeps_losing_retires_itself(settings):
    people = _people(1)
    session = Session.objects.create(user=people[0], channel=Session.Channel.API, started_at=timezone.now())
    rule = RewriteRule.objects.create(
        source_text="x", target_text="y", status=RewriteRule.Status.ACTIVE, origin=RewriteRule.Origin.MINED,
        confidence=0.8,
    )  # fmt: skip
    for k in range(6):
        Turn.objects.create(
            session=session, user=people[0], created_at=timezone.now(), raw_text="x", asr_text="x",
            rewrite={"rule_id": rule.pk, "scope": "global", "layer": "rule-global", "kept": True, "to": "y"},
            defect_probability=0.9 if k else 0.1,
        )  # fmt: skip
    result = update_outcomes()
    rule.refresh_from_db()
    assert rule.status == RewriteRule.Status.RETIRED
    assert rule.losses == pytest.approx(4.6) and rule.wins == pytest.approx(1.4)
    assert "retired by its outcomes" in rule.status_reason
    assert result["layers"]["rule-global"]["losses"] == pytest.approx(4.6)


@pytest.mark.django_db
def test_a_superseded_target_retires_the_old_rule(settings):
    settings.MINE_MIN_USERS = 1
    old = RewriteRule.objects.create(
        source_text="a", target_text="b", status=RewriteRule.Status.ACTIVE, origin=RewriteRule.Origin.MINED
    )
    rows, links = _chains(range(1, 3), "a", "c")
    occ = occurrences(rows, links)
    changes = store(mine(occ), occ)
    old.refresh_from_db()
    assert old.status == RewriteRule.Status.RETIRED and "superseded" in old.status_reason
    assert changes["superseded"] == 1
    assert RewriteRule.objects.get(source_text="a", status=RewriteRule.Status.ACTIVE).target_text == "c"


def test_phrasings_of_the_same_request_pool_their_probability(settings):
    settings.MINE_MIN_USERS = 3
    rows, links = [], []
    phrasings = ["kitchen lights off", "switch off the kitchen light", "turn the kitchen lights off"]
    for k in range(6):  # six people fail the same way and each ends up served by a phrasing of their own
        a, b = 2 * k + 1, 2 * k + 2
        rows += [(a, k, "kitchen lie off", 0.9, "weather_query"), (b, k, phrasings[k % 3], 0.05, "iot_hue_lightoff")]
        links.append((a, b))
    (rule,) = [r for r in mine(occurrences(rows, links)) if r.user_id is None]
    assert rule.source == "kitchen lie off" and rule.target in phrasings
    assert rule.probability > 0.8 and rule.users == 6  # no single phrasing has more than a third of it


# --- shards ---------------------------------------------------------------------------


def _traffic(seed: int) -> Occurrences:
    """Many people, requests of several phrasings of which some fail, retries, a voice that garbles one
    request for some people (their own rules), a few turns rewritten by a rule, utterances never retried."""
    rng = np.random.default_rng(seed)
    rows, links, tid = [], [], 0
    requests = [[f"request {r} way {p}" for p in range(int(rng.integers(2, 5)))] for r in range(25)]
    failing = [set(rng.choice(len(ways), size=int(rng.integers(0, len(ways))), replace=False)) for ways in requests]
    for user in range(60):
        garbled = int(rng.integers(0, 25)) if rng.random() < 0.3 else -1
        for _ in range(int(rng.integers(5, 30))):
            r = int(rng.integers(0, 25))
            previous = None
            for _attempt in range(3):
                way = int(rng.integers(0, len(requests[r])))
                text = requests[r][way] + (" mumble" if r == garbled else "")
                fails = way in failing[r] or r == garbled
                tid += 1
                rows.append((tid, user, text, float(rng.uniform(0.7, 0.98) if fails else rng.uniform(0.01, 0.2)),
                             "out_of_scope" if fails else f"intent {r}"))  # fmt: skip
                if previous is not None:
                    links.append((previous, tid))
                previous = tid
                if not fails or rng.random() < 0.25:
                    break
        tid += 1
        rows.append((tid, user, f"something only person {user} said once", 0.1))
    return occurrences(rows, links)


def _rules(candidates) -> list[tuple]:
    return sorted(
        (c.user_id or 0, c.source, c.target, c.probability, c.source_success, c.support, c.users, str(c.evidence))
        for c in candidates
    )


@pytest.mark.parametrize("seed", range(4))
def test_shards_hold_whole_components_and_mine_exactly_the_rules_of_all_the_evidence(settings, seed):
    settings.MINE_MIN_USERS = 3
    settings.MINE_ROWS_PER_SHARD = 50
    occ = _traffic(seed)
    everything = mine(occ)
    assert len(everything) > 10 and any(c.user_id is not None for c in everything)
    shards = plan_shards(occ, 4)
    assert len(shards) == 4
    rows = np.concatenate(shards)
    assert len(rows) == len(set(rows.tolist()))  # each occurrence in one shard at most
    nodes = [set(occ.node[r].tolist()) for r in shards]
    assert all(not (a & b) for a, b in itertools.combinations(nodes, 2))  # each utterance in one shard
    sizes = sorted(len(r) for r in shards)
    assert sizes[-1] < 2 * sizes[0] + max(np.bincount(occ.node).max() * 10, 1)  # roughly even
    # Utterances never retried are in no shard.
    assert not any("only person" in occ.texts[n] for part in nodes for n in part)
    assert _rules(c for part in shards for c in mine(subset(occ, part))) == _rules(everything)


def test_a_small_graph_is_one_shard_and_an_empty_one_none(settings):
    settings.MINE_ROWS_PER_SHARD = 10**6
    assert len(plan_shards(_traffic(0), 4)) == 1
    assert plan_shards(occurrences([(1, 1, "never retried", 0.2)]), 4) == []


@pytest.mark.django_db
def test_mining_in_shards_stores_the_rules_mining_in_one_process_does(settings, tmp_path):
    from learning.models import Job

    settings.MINE_MIN_USERS = 3
    settings.MODEL_DIR = tmp_path
    now = timezone.now()
    for k, person in enumerate(_people(5)):
        _store_chain(person, "turn of the kitchn lights", "turn off the kitchen lights", now)
        _store_chain(person, "play sum jazz", "play some jazz", now, good_intent="play_music")
        if k < 3:
            _store_chain(person, "wether in paris", "weather in paris", now, bad_intent="out_of_scope",
                         good_intent="weather_query")  # fmt: skip
    one = mine_and_store(lambda f, m: None, most_shards=1)
    in_one = sorted(RewriteRule.objects.values_list("source_text", "target_text", "scope", "confidence", "support"))
    assert one["shards"] == 1 and len(in_one) == 3
    RewriteRule.objects.all().delete()

    settings.MINE_ROWS_PER_SHARD = 1
    sharded = mine_and_store(lambda f, m: None, most_shards=3)
    assert sharded["shards"] == 3
    assert sorted(RewriteRule.objects.values_list("source_text", "target_text", "scope", "confidence", "support")) == (
        in_one
    )
    # No other worker here: this process mined every shard, as jobs, and left no shard files behind.
    parts = Job.objects.filter(kind="mine_shard")
    assert sorted(parts.values_list("status", flat=True)) == [Job.Status.DONE] * 3
    assert sum(job.result["candidates"] for job in parts) == 3
    assert not any((tmp_path / "mining").iterdir())


@pytest.mark.django_db
def test_bench_mining_generates_turns_mines_them_in_shards_and_cleans_up(settings, tmp_path):
    import io
    import json

    from django.core.management import call_command

    settings.MODEL_DIR = tmp_path
    settings.MINE_ROWS_PER_SHARD = 100
    out = io.StringIO()
    call_command("bench_mining", turns=3000, requests=200, shards=3, store=True, json=True, stdout=out)
    report = json.loads(out.getvalue())
    assert report["turns"] == 3000 and report["rephrases"] > 0
    mining = report["mining"]
    assert len(mining["shards"]) == 3 and mining["shard_workers"]
    assert mining["rules"]["global"] > 0 and mining["peak_rss_mb"] > 0
    # The generated people, their turns and the rules mined from them are gone.
    assert not Turn.objects.exists() and not RewriteRule.objects.exists()
    assert not get_user_model().objects.filter(username__startswith="bench-mining-").exists()
