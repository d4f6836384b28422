"""Importers (SLURP, HWU, Rasa, CLINC) into seed Examples, name mapping, drop report,
de-duplication, and `train_nlu --data` up to the point of training.

Every file here is handmade in tmp_path; nothing is copied from ../shared/data.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from assistant.intents import OUT_OF_SCOPE
from assistant.nlu import datasets
from assistant.nlu.datasets import DatasetError, ImportReport, dedupe, load_examples, merge_sources
from assistant.nlu.seed import Example


def write_jsonl(path, rows) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(path)


def spans_of(example: Example) -> list[tuple[str, str]]:
    for s in example.spans:
        assert example.text[s.start : s.end] == s.value  # offsets index the normalised text
    return [(s.type, s.value) for s in example.spans]


def test_slurp_rows_are_normalised_and_spans_relocated(tmp_path):
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "split": "test",
                "sentence": "Wake me at five AM!",
                "annotation": "Wake me at [time : five AM]!",
                "intent": "alarm_set",
            },
            {
                "split": "devel",
                "sentence": "lights off in the kitchen",
                "annotation": "lights off in the [house_place : kitchen]",
                "intent": "iot_hue_lightoff",
            },
            # train_labeled.jsonl style: no split, annotation under `sentence_annotation`
            {
                "sentence": "email my boss",
                "sentence_annotation": "email my [relation : boss]",
                "intent": "email_sendemail",
            },
        ],
    )
    report = ImportReport()
    test = load_examples(path, "slurp", "test", report)
    assert [(e.text, e.intent, spans_of(e)) for e in test] == [
        ("wake me at 5 am", "alarm_set", [("time", "5 am")]),
        ("email my boss", "email_sendemail", [("relation", "boss")]),
    ]
    devel = load_examples(path, "auto", "devel")
    assert devel[0].text == "lights off in the kitchen"
    assert spans_of(devel[0]) == [("room", "kitchen")]  # SLURP house_place -> our room
    everything = load_examples(path, "slurp")
    assert len(everything) == 3


def test_hwu_drops_its_dialogue_acts_and_reports_them(tmp_path):
    path = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"text": "yes please", "annotation": "yes please", "intent": "general_affirm"},
            {"text": "no", "annotation": "no", "intent": "general_negate"},
            {"text": "play some jazz", "annotation": "play some [music_genre : jazz]", "intent": "play_music"},
            {
                "text": "what is the capital of peru",
                "annotation": "what is the capital of [place_name : peru]",
                "intent": "qa_factoid",
            },
        ],
    )
    report = ImportReport()
    examples = load_examples(path, "auto", None, report)
    assert [e.intent for e in examples] == ["play_music", "qa_factoid"]
    assert spans_of(examples[0]) == [("genre", "jazz")]
    assert spans_of(examples[1]) == [("place", "peru")]
    assert report.dropped == {"intent dropped: general_affirm": 1, "intent dropped: general_negate": 1}
    assert report.mapped_slots == {"music_genre -> genre": 1, "place_name -> place": 1}


def test_a_span_lost_by_normalisation_drops_the_example_and_is_counted(tmp_path):
    # "twenty [x : five]" normalises to "25": the value "5" is no longer a word of its own.
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "sentence": "set volume to twenty five",
                "annotation": "set volume to twenty [change_amount : five]",
                "intent": "audio_volume_up",
            },
            {
                "sentence": "turn it up by ten",
                "annotation": "turn it up by [change_amount : ten]",
                "intent": "audio_volume_up",
            },
        ],
    )
    report = ImportReport()
    examples = load_examples(path, "slurp", None, report)
    assert [(e.text, spans_of(e)) for e in examples] == [("turn it up by 10", [("level", "10")])]
    assert report.dropped == {"slot span not found after normalisation": 1}


def test_repeated_values_get_distinct_spans(tmp_path):
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "sentence": "x",
                "annotation": "convert [currency_name : euro] to [currency_name : euro] please",
                "intent": "qa_currency",
            }
        ],
    )
    (example,) = load_examples(path, "slurp")
    assert [(s.start, s.end) for s in example.spans] == [(8, 12), (16, 20)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"sentence": "a", "annotation": "a", "intent": "x"}', "{not json"], ":2: not valid JSON"),
        (['{"sentence": "a", "annotation": "a"}'], ":1: missing 'intent'"),
        (['["a", "b"]'], ":1: expected a JSON object"),
        (['{"sentence": "a", "annotation": "turn [house_place : kitchen", "intent": "x"}'], ":1: unbalanced"),
        (['{"annotation": 5, "intent": "x"}'], ":1: 'annotation' must be a string"),
        (['{"intent": "x"}'], ":1: missing text field 'sentence'"),
    ],
)
def test_malformed_jsonl_names_the_line(tmp_path, lines, message):
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DatasetError, match=message):
        load_examples(path, "slurp")


def test_binary_and_missing_files_are_clear_errors(tmp_path):
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_examples(binary, "slurp")
    with pytest.raises(DatasetError, match="no such file"):
        load_examples(tmp_path / "nope.jsonl", "slurp")
    with pytest.raises(DatasetError, match="cannot tell the format"):
        load_examples(write_jsonl(tmp_path / "x.jsonl", ['{"foo": 1}']), "auto")


RASA = """\
version: "3.1"
nlu:
- intent: iot_hue_lighton
  examples: |
    - turn on the [kitchen](room) lights
    - switch on the lights in the [living room]{"entity": "room"}
    - lights on in the [office](room:study)
- synonym: study
  examples: |
    - office
- intent: greet
  examples: |
    - Hello there!
"""


def test_rasa_yaml_with_both_entity_syntaxes(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text(RASA, encoding="utf-8")
    examples = load_examples(path)
    assert [(e.text, e.intent, spans_of(e)) for e in examples] == [
        ("turn on the kitchen lights", "iot_hue_lighton", [("room", "kitchen")]),
        ("switch on the lights in the living room", "iot_hue_lighton", [("room", "living room")]),
        ("lights on in the office", "iot_hue_lighton", [("room", "office")]),
        ("hello there", "greet", []),
    ]


def test_malformed_rasa_is_a_clear_error(tmp_path):
    bad_yaml = tmp_path / "a.yml"
    bad_yaml.write_text("nlu:\n- intent: x\n  examples: |\n    - ok\n  : : [\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"a\.yml:\d+: not valid YAML"):
        load_examples(bad_yaml)
    no_nlu = tmp_path / "b.yaml"
    no_nlu.write_text("stories: []\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="top-level 'nlu:'"):
        load_examples(no_nlu)
    bad_entity = tmp_path / "c.yml"
    bad_entity.write_text('nlu:\n- intent: x\n  examples: |\n    - ok\n    - [a]{"entity": }\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"c\.yml:4: intent 'x': bad entity JSON"):
        load_examples(bad_entity)


def test_clinc_sections_and_oos(tmp_path):
    path = tmp_path / "clinc.json"
    doc = {
        "train": [["What's my balance?", "balance"], ["translate hello to french", "translate"]],
        "oos_train": [["how tall is a giraffe", "oos"]],
        "test": [["balance please", "balance"]],
        "oos_test": [["sing me a sea shanty", "oos"]],
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = ImportReport()
    train = load_examples(path, "auto", "train", report)
    assert [(e.text, e.intent) for e in train] == [
        ("what's my balance", "balance"),
        ("translate hello to french", "translate"),
        ("how tall is a giraffe", OUT_OF_SCOPE),
    ]
    assert report.mapped_intents == {f"oos -> {OUT_OF_SCOPE}": 1}
    assert [e.intent for e in load_examples(path, "clinc", "test")] == ["balance", OUT_OF_SCOPE]
    path.write_text(json.dumps({"train": [["only text"]]}), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"train\[0\] is not a \[text, intent\] pair"):
        load_examples(path, "clinc", "train")


def test_dedupe_keeps_the_first_and_reports_conflicts():
    report = ImportReport()
    examples = [
        Example("turn on the lights", "iot_hue_lighton"),
        Example("turn on the lights", "iot_hue_lighton"),
        Example("turn on the lights", "iot_wemo_on"),
        Example("play jazz", "play_music"),
    ]
    unique = dedupe(examples, report)
    assert [(e.text, e.intent) for e in unique] == [
        ("turn on the lights", "iot_hue_lighton"),
        ("play jazz", "play_music"),
    ]
    assert report.duplicates == 2
    assert report.conflicts == [("turn on the lights", ["iot_hue_lighton", "iot_wemo_on"])]


def test_merge_sources_puts_the_seed_first(tmp_path):
    path = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"text": "turn on the lights", "annotation": "turn on the lights", "intent": "iot_wemo_on"},
            {"text": "order a pizza", "annotation": "order a [food_type : pizza]", "intent": "takeaway_order"},
        ],
    )
    seed = [Example("turn on the lights", "iot_hue_lighton")]
    merged, report = merge_sources([path], fmt="hwu", seed=seed)
    assert [(e.text, e.intent) for e in merged] == [
        ("turn on the lights", "iot_hue_lighton"),
        ("order a pizza", "takeaway_order"),
    ]
    assert report.kept == {"iot_hue_lighton": 1, "takeaway_order": 1}
    assert report.as_dict()["conflicts"] == 1
    assert report.files == [{"path": str(path), "format": "hwu", "split": None, "examples": 2}]


def test_mapping_tables_only_name_real_labels():
    from assistant.intents import INTENTS, SLOTS
    from assistant.nlu import labels

    for target in labels.SLURP_SLOTS.values():
        assert target is None or target in SLOTS
    for table in datasets.INTENT_MAPS.values():
        for target in table.values():
            assert target is None or target in INTENTS


# -- train_nlu --data (stops before training when the data is bad; training itself is
# covered by the nlu_artifact fixture and tests/test_nlu_command.py) ------------------
def test_train_nlu_data_errors_are_command_errors(db, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"sentence": "a", "annotation": "a", "intent": "x"}', "oops"])
    with pytest.raises(CommandError, match=r"bad\.jsonl:2: not valid JSON"):
        call_command("train_nlu", "--data", bad, "--format", "slurp", stdout=StringIO())
    with pytest.raises(CommandError, match=r"(?i)no such file"):
        call_command("train_nlu", "--data", str(tmp_path / "missing.jsonl"), stdout=StringIO())
    with pytest.raises(CommandError, match="--no-seed needs"):
        call_command("train_nlu", "--no-seed", stdout=StringIO())


def test_train_nlu_data_without_out_of_scope_trains_with_a_warning(db, tmp_path):
    """Public benchmarks (SLURP) have no out-of-scope class: the threshold alone decides it."""
    rows = [{"sentence": f"play song {i}", "annotation": f"play song {i}", "intent": "play_music"} for i in range(8)]
    rows += [
        {"sentence": f"lights off in room {i}", "annotation": f"lights off in room {i}", "intent": "iot_hue_lightoff"}
        for i in range(8)
    ]
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    out = StringIO()
    call_command("train_nlu", "--data", path, "--no-seed", "--no-promote", "--out", str(tmp_path / "m"), stdout=out)
    text = out.getvalue()
    assert "Read 16 examples" in text and "Training examples after merging: 16" in text
    assert "No out_of_scope examples" in text and "Registered NLU" in text
