from __future__ import annotations

import pytest

from assistant.pipeline.asr import recognise
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
