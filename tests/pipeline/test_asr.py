from __future__ import annotations

import pytest

from assistant.pipeline.asr import choose_reading, recognise
from assistant.text import normalise
from assistant.turns import Hypothesis


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Set a timer for Five minutes!", "set a timer for 5 minutes"),
        ("turn the lights to twenty five percent", "turn the lights to 25 percent"),
        ("What's the weather in New York?", "what's the weather in new york"),
        ("wake me at 7:30 a.m. tomorrow", "wake me at 7:30 am tomorrow"),
        ("one hundred and eighty degrees", "180 degrees"),
        ("  lots   of\tspace\n", "lots of space"),
        ("it's 3.5 degrees", "it's 3.5 degrees"),
        ("Turn\x07 off\x1b the lights", "turn off the lights"),
        ("set it to a hundred", "set it to a hundred"),
    ],
)
def test_it_normalises_text_the_way_the_nlu_was_trained(raw, expected):
    assert normalise(raw) == expected


def test_it_keeps_html_as_plain_words():
    assert normalise("<b>play</b> jazz") == "b play b jazz"


def test_it_chooses_the_most_confident_hypothesis():
    result = recognise([Hypothesis("turn of the light", 0.4), Hypothesis("Turn off the light", 0.7)])
    assert result.chosen == 1
    assert result.text == "turn off the light"
    assert result.confidence == 0.7


def test_it_takes_the_first_hypothesis_when_none_has_a_confidence():
    result = recognise([Hypothesis("play jazz"), Hypothesis("play chess")])
    assert result.chosen == 0
    assert result.confidence is None


def test_it_refuses_an_empty_nbest_list():
    with pytest.raises(ValueError):
        recognise([])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("wake me at five thirty", "wake me at 5 30"),
        ("six thirty am", "6 30 am"),
        ("eleven thirty", "11 30"),
        ("two thousand and twenty six", "2026"),
        ("one hundred and five", "105"),
        ("twenty twenty", "20 20"),
        ("three hundred", "300"),
        ("ninety nine bottles", "99 bottles"),
        ("and one and", "and 1 and"),
    ],
)
def test_it_keeps_separate_spoken_numbers_apart(raw, expected):
    assert normalise(raw) == expected


# -- the joint choice over hypotheses and intents (choose_reading) --------------------------------
def _reader(table: dict[str, list[tuple[str, float]]]):
    """An NLU stand-in for the arithmetic: each text's top intents (the real NLU is in the pipeline test)."""
    from assistant.turns import NluResult

    def understand(text: str) -> NluResult:
        alternatives = tuple(table[text])
        intent, confidence = alternatives[0]
        return NluResult(text=text, intent=intent, confidence=confidence, slots={}, alternatives=alternatives)

    return understand


def test_a_runner_up_hypothesis_that_makes_sense_beats_a_confident_one_that_does_not():
    understand = _reader(
        {
            "turn of the kitchen lights": [("out_of_scope", 0.5), ("iot_hue_lightoff", 0.3)],
            "turn off the kitchen lights": [("iot_hue_lightoff", 0.97)],
        }
    )
    asr, nlu, readings = choose_reading(
        [Hypothesis("turn of the kitchen lights", 0.52), Hypothesis("Turn off the kitchen lights", 0.48)], understand
    )
    assert (asr.chosen, asr.text, nlu.intent) == (1, "turn off the kitchen lights", "iot_hue_lightoff")
    assert asr.confidence == 0.48
    assert [r["index"] for r in readings] == [0, 1]
    assert readings[1]["joint"] > readings[0]["joint"]


def test_intents_are_summed_over_hypotheses_before_one_is_chosen():
    # The most confident hypothesis says play_radio, but two others agree on play_music:
    # play_music 0.35 x 0.1 + 0.35 x 0.9 + 0.3 x 0.9 = 0.62 against play_radio 0.38.
    understand = _reader(
        {
            "play radio 1": [("play_radio", 0.9), ("play_music", 0.1)],
            "play radiohead": [("play_music", 0.9), ("play_radio", 0.1)],
            "play radio head": [("play_music", 0.9), ("play_radio", 0.1)],
        }
    )
    asr, nlu, _ = choose_reading(
        [Hypothesis("play radio one", 0.35), Hypothesis("play radiohead", 0.35), Hypothesis("play radio head", 0.3)],
        understand,
    )
    assert nlu.intent == "play_music"
    assert asr.text == "play radiohead"  # of the two, the one giving play_music the most


def test_the_same_words_twice_are_read_once_with_both_priors():
    calls = []
    understand = _reader({"what time is it": [("datetime_query", 0.9)], "what tie is it": [("out_of_scope", 0.9)]})

    def counting(text):
        calls.append(text)
        return understand(text)

    _, nlu, readings = choose_reading(
        [Hypothesis("What time is it?", 0.4), Hypothesis("what tie is it", 0.35), Hypothesis("what time is it", 0.25)],
        counting,
    )
    assert calls == ["what time is it", "what tie is it"]
    assert readings[0]["prior"] == pytest.approx(0.65)
    assert nlu.intent == "datetime_query"


def test_when_no_hypothesis_is_understood_the_most_likely_words_are_kept():
    understand = _reader({"blah": [("out_of_scope", 0.9)], "bla": [("out_of_scope", 0.8)]})
    asr, nlu, _ = choose_reading([Hypothesis("bla", 0.3), Hypothesis("blah", 0.7)], understand)
    assert (asr.chosen, nlu.intent) == (1, "out_of_scope")


def test_hypotheses_without_confidences_weigh_the_same_and_empty_ones_are_skipped():
    understand = _reader({"play jazz": [("play_music", 0.9)]})
    asr, nlu, readings = choose_reading([Hypothesis("?!", None), Hypothesis("play jazz", None)], understand)
    assert (asr.chosen, nlu.intent, len(readings)) == (1, "play_music", 1)
    with pytest.raises(ValueError):
        choose_reading([Hypothesis("?!", 0.5)], understand)
    with pytest.raises(ValueError):
        choose_reading([], understand)
