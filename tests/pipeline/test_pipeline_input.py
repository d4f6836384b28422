"""clean_request() turns what an entry point received into a request or a clear TurnInputError."""

from __future__ import annotations

import pytest

from assistant.pipeline.turn import TurnInputError, clean_request


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({}, "text_or_nbest"),
        ({"text": "hi", "nbest": [{"text": "hi"}]}, "text_or_nbest"),
        ({"text": ""}, "empty"),
        ({"text": "   \n\t "}, "empty"),
        ({"text": "x" * 1001}, "too_long"),
        ({"text": "bad\x00byte"}, "control_chars"),
        ({"text": 42}, "wrong_type"),
        ({"text": "turn\x07 off the lights"}, "control_chars"),
        ({"text": "escape \x1b[31m"}, "control_chars"),
        ({"nbest": []}, "wrong_type"),
        ({"nbest": "play jazz"}, "wrong_type"),
        ({"nbest": [{"confidence": 0.5}]}, "wrong_type"),
        ({"nbest": [{"text": "play jazz", "confidence": 3}]}, "wrong_type"),
        ({"nbest": [{"text": "play jazz", "confidence": "high"}]}, "wrong_type"),
        ({"nbest": [{"text": "play jazz", "confidence": True}]}, "wrong_type"),
        ({"nbest": [{"text": f"h{i}"} for i in range(21)]}, "too_many"),
    ],
)
def test_it_refuses_bad_requests_with_a_code(kwargs, code):
    with pytest.raises(TurnInputError) as excinfo:
        clean_request(**kwargs)
    assert excinfo.value.code == code
    assert str(excinfo.value)


def test_it_accepts_exactly_the_character_limit():
    assert clean_request(text="a" * 1000).raw_text == "a" * 1000


def test_it_keeps_html_as_typed():
    assert clean_request(text="<script>alert(1)</script>").raw_text == "<script>alert(1)</script>"


def test_the_raw_text_of_an_nbest_request_is_its_most_confident_hypothesis():
    request = clean_request(nbest=[{"text": "a", "confidence": 0.2}, {"text": "b", "confidence": 0.9}])
    assert request.raw_text == "b"
    assert request.is_nbest


def test_tabs_and_line_breaks_are_not_control_characters():
    assert clean_request(text="turn off\tthe lights\r\n").raw_text == "turn off\tthe lights\r\n"
