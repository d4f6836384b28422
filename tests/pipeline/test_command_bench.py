"""`manage.py bench_pipeline`: per-stage latency percentiles of real turns, as a table or JSON."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from assistant.intents import INTENTS
from assistant.management.commands.bench_pipeline import STAGES, TEMPLATES, percentile, utterances
from feedback.models import Turn

SUMMARY_KEYS = {"p50", "p95", "p99", "mean", "max"}


def bench(*args: str) -> str:
    out = io.StringIO()
    call_command("bench_pipeline", *args, stdout=out)
    return out.getvalue()


def test_json_report_has_every_stage_and_the_total(nlu_model):
    report = json.loads(bench("--n", "5", "--warmup", "1", "--json"))
    assert report["n"] == 5
    assert set(report["stages"]) == set(STAGES)
    for summary in [*report["stages"].values(), report["total"], report["outside_stages"]]:
        assert set(summary) == SUMMARY_KEYS
        assert summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"]
    assert report["total"]["p50"] > 0
    assert all(s["p50"] >= 0 for s in report["stages"].values())
    assert report["turns_per_second"] > 0
    assert sum(report["statuses"].values()) == 5
    assert report["statuses"].get("error", 0) == 0
    assert report["nlu_model_versions"] == {nlu_model.version: 5}
    assert set(report["targets"]) == {"total_p50_ms", "total_p95_ms", "met"}


def test_the_turns_whose_words_were_new_are_summed_up_apart(nlu_model):
    """A sentence said again is read from the NLU's recent predictions: the report keeps the turns whose
    words this run had not said yet apart (a template without fillers comes back every lap)."""
    n = len(TEMPLATES) + 7
    said = list(utterances(n))
    assert len(set(said)) < n  # the second lap repeats some
    report = json.loads(bench("--n", str(n), "--warmup", "0", "--json"))
    first = report["first_heard"]
    assert first["turns"] == len(set(said))
    assert set(first["stages"]) == {*STAGES, "total"}
    assert all(set(summary) == SUMMARY_KEYS for summary in first["stages"].values())


def test_the_total_includes_every_stage(nlu_model):
    report = json.loads(bench("--n", "5", "--warmup", "0", "--json"))
    stage_means = sum(s["mean"] for s in report["stages"].values())
    assert report["total"]["mean"] >= stage_means


def test_it_prints_a_table(nlu_model):
    printed = bench("--n", "3", "--warmup", "0")
    for name in (*STAGES, "total", "turns/second"):
        assert name in printed


def test_it_leaves_no_turns_behind(nlu_model):
    bench("--n", "3", "--warmup", "1", "--json")
    assert not Turn.objects.filter(user__username="bench").exists()


def test_it_can_keep_its_turns(nlu_model):
    bench("--n", "3", "--warmup", "1", "--json", "--keep-turns")
    assert Turn.objects.filter(user__username="bench").count() == 4


def test_it_refuses_to_reset_a_real_users_home(alice):
    with pytest.raises(CommandError, match="real account"):
        bench("--n", "1", "--user", "alice")


@pytest.mark.parametrize("args", [("--n", "0"), ("--n", "-3"), ("--warmup", "-1")])
def test_it_refuses_bad_counts(db, args):
    with pytest.raises(CommandError):
        bench(*args)


def test_the_utterances_are_varied_and_repeatable():
    laps = 3
    first = list(utterances(laps * len(TEMPLATES)))
    assert first == list(utterances(laps * len(TEMPLATES)))
    assert all("{" not in text for text in first)
    # Over three laps, every template with a slot is heard with different values.
    for index, template in enumerate(TEMPLATES):
        variants = {first[index + lap * len(TEMPLATES)] for lap in range(laps)}
        assert len(variants) >= (2 if "{" in template else 1), template


def test_the_templates_cover_every_skill(nlu_model):
    """One lap over the templates reaches every skill, as the real NLU understands them."""
    bench("--n", str(len(TEMPLATES)), "--warmup", "0", "--json", "--keep-turns")
    turns = Turn.objects.filter(user__username="bench")
    assert turns.count() == len(TEMPLATES)
    reached = {INTENTS[t.intent].skill for t in turns if t.intent in INTENTS}
    assert reached == {spec.skill for spec in INTENTS.values()}


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) == 0.0
