"""`manage.py evaluate_nlu --json` on slices of the shared SLURP test split and ASR pairs
(read from SHARED_DATA_DIR, never copied), on handmade CLINC-style files, and its errors."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

KEYS = {
    "n",
    "intent_accuracy",
    "slot_precision",
    "slot_recall",
    "slot_f1",
    "exact_match",
    "latency_ms",
    "per_intent",
}


def shared(*parts: str) -> Path:
    path = Path(settings.SHARED_DATA_DIR, *parts)
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    return path


def run(*args: str) -> dict:
    out = StringIO()
    call_command("evaluate_nlu", *args, "--json", stdout=out)
    return json.loads(out.getvalue())  # one JSON object and nothing else


def check_shape(result: dict, n: int) -> None:
    assert set(result) >= KEYS
    assert result["n"] == n
    for key in ("intent_accuracy", "slot_precision", "slot_recall", "slot_f1", "exact_match"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["exact_match"] <= result["intent_accuracy"]
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]
    assert sum(v["n"] for v in result["per_intent"].values()) == n
    for figures in result["per_intent"].values():
        assert set(figures) == {"n", "accuracy", "precision", "recall", "f1"}


def test_slurp_test_split_slice(nlu_model):
    path = shared("slurp", "annotated_devel_test.jsonl")
    result = run("--data", str(path), "--format", "slurp", "--split", "test", "--limit", "50")
    check_shape(result, 50)
    assert result["model_version"] == nlu_model.version
    assert result["split"] == "test"
    # The seed model knows the shared smart-home/music intents of SLURP: not all wrong.
    assert result["intent_accuracy_argmax"] > 0.0
    # Same rows, same model: the figures are deterministic (latency aside).
    again = run("--data", str(path), "--format", "slurp", "--split", "test", "--limit", "50")
    timings = ("latency_ms", "model_load_seconds")
    assert {k: v for k, v in again.items() if k not in timings} == {k: v for k, v in result.items() if k not in timings}


def test_asr_pairs_slice_reports_the_baseline(nlu_model):
    pairs = shared("slurp", "asr_pairs.jsonl")
    result = run("--asr-pairs", str(pairs), "--limit", "40")
    check_shape(result, 40)
    assert result["baseline"] == "pred_intent_on_hyp"
    assert 0.0 <= result["baseline_intent_accuracy"] <= 1.0
    # Both at once: the pairs are nested under "asr_pairs".
    both = run(
        "--data",
        str(shared("slurp", "annotated_devel_test.jsonl")),
        "--split",
        "test",
        "--limit",
        "20",
        "--asr-pairs",
        str(pairs),
    )
    check_shape(both, 20)
    check_shape(both["asr_pairs"], 20)


def test_clinc_style_file_reports_out_of_scope_figures(nlu_model, tmp_path):
    path = tmp_path / "clinc.json"
    doc = {
        "test": [["turn on the lights in the kitchen", "iot_hue_lighton"], ["play some jazz", "play_music"]],
        "oos_test": [["what is the boiling point of lead", "oos"], ["book a table for two", "oos"]],
        "train": [["never read", "x"]],
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = run("--data", str(path), "--format", "clinc", "--threshold", "0.45")
    check_shape(result, 4)
    for key in ("in_scope_accuracy", "oos_precision", "oos_recall"):
        assert 0.0 <= result[key] <= 1.0
    assert result["per_intent"]["out_of_scope"]["n"] == 2


def test_the_model_option_and_the_errors(nlu_model, nlu_artifact, tmp_path):
    path, _ = nlu_artifact
    rasa = tmp_path / "nlu.yml"
    rasa.write_text(
        "nlu:\n- intent: iot_hue_lightoff\n  examples: |\n    - turn off the [bedroom](room) lights\n", encoding="utf-8"
    )
    result = run("--data", str(rasa), "--model", str(path))
    assert result["n"] == 1 and result["format"] == "rasa"

    with pytest.raises(CommandError, match="--data FILE and/or --asr-pairs"):
        call_command("evaluate_nlu", "--json", stdout=StringIO())
    with pytest.raises(CommandError, match="unreadable manifest"):
        call_command("evaluate_nlu", "--data", str(rasa), "--model", str(tmp_path), stdout=StringIO())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence": "a", "annotation": "a", "intent": "x"}\n{oops\n', encoding="utf-8")
    with pytest.raises(CommandError, match=r"bad\.jsonl:2: not valid JSON"):
        call_command("evaluate_nlu", "--data", str(bad), "--format", "slurp", stdout=StringIO())
    good = tmp_path / "good.jsonl"
    good.write_text('{"split": "test", "sentence": "a", "annotation": "a", "intent": "x"}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="no examples to evaluate"):
        call_command("evaluate_nlu", "--data", str(good), "--split", "devel", stdout=StringIO())
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"hypothesis": "x"}\n', encoding="utf-8")
    with pytest.raises(CommandError, match=r"pairs\.jsonl:1: an ASR pair needs"):
        call_command("evaluate_nlu", "--asr-pairs", str(pairs), stdout=StringIO())
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("evaluate_nlu", "--data", str(rasa), "--limit", "0", stdout=StringIO())


def test_no_active_model_is_a_clear_error(tmp_path):
    rasa = tmp_path / "nlu.yml"
    rasa.write_text("nlu:\n- intent: x\n  examples: |\n    - hello\n", encoding="utf-8")
    with pytest.raises(CommandError, match="no NLU model is registered"):
        call_command("evaluate_nlu", "--data", str(rasa), stdout=StringIO())
