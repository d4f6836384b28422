"""Parsing the chat socket's frames into typed messages."""

from __future__ import annotations

import json

import pytest

from assistant.chat.messages import MessageError, parse_message


def frame(**data) -> str:
    return json.dumps(data)


def test_it_parses_a_say_from_the_htmx_form():
    raw = frame(type="say", text="turn on the lights", device="12", HEADERS={"HX-Request": "true"})
    assert parse_message(raw) == {"type": "say", "text": "turn on the lights", "device": 12}


def test_an_empty_device_means_no_speaker():
    assert parse_message(frame(type="say", text="hi", device=""))["device"] is None
    assert parse_message(frame(type="say", text="hi", device=None))["device"] is None


def test_it_keeps_text_as_typed():
    text = "<img src=x onerror=alert(1)>  spaced  "
    assert parse_message(frame(type="say", text=text, device=""))["text"] == text


def test_it_parses_stop_and_feedback():
    assert parse_message(frame(type="stop")) == {"type": "stop"}
    assert parse_message(frame(type="feedback", turn_id="5", kind="thumbs_down")) == {
        "type": "feedback",
        "turn_id": 5,
        "kind": "thumbs_down",
    }
    assert parse_message(frame(type="feedback", turn_id=5, kind="thumbs_up"))["turn_id"] == 5


def test_text_at_the_limit_is_accepted(settings):
    settings.MAX_UTTERANCE_CHARS = 10
    assert parse_message(frame(type="say", text="x" * 10, device=""))["text"] == "x" * 10
    with pytest.raises(MessageError, match="longer than 10"):
        parse_message(frame(type="say", text="x" * 11, device=""))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "binary"),
        ("", "malformed"),
        ("{", "malformed"),
        ('"\\ud800"', "malformed"),
        ("null", "malformed"),
        ("3", "malformed"),
        ("x" * 20_000, "too_large"),
        (frame(text="hi"), "missing_field"),
        (frame(type=None), "missing_field"),
        (frame(type="SAY", text="hi", device=""), "unknown_type"),
        (frame(type=["say"]), "unknown_type"),
        (frame(type="say", device=""), "missing_field"),
        (frame(type="say", text="hi"), "missing_field"),
        (frame(type="say", text=" \u00a0\n", device=""), "empty"),
        (frame(type="say", text=["hi"], device=""), "wrong_type"),
        (frame(type="say", text="a\x00b", device=""), "control_chars"),
        ('{"type": "say", "text": "a\\ud800b", "device": ""}', "binary"),
        ("[" * 8000 + "]" * 8000, "malformed"),  # once a RecursionError
        ('{"type": "say", "device": "", "text": ' + "[" * 8000 + "]" * 8000 + "}", "malformed"),
        (frame(type="say", text="\u200b\u200b", device=""), "no_words"),
        (frame(type="say", text="?!?!", device=""), "no_words"),
        (frame(type="say", text="hi", device=1.5), "wrong_type"),
        (frame(type="say", text="hi", device="0"), "wrong_type"),
        (frame(type="say", text="hi", device="1e3"), "wrong_type"),
        (frame(type="say", text="hi", device="9" * 40), "wrong_type"),
        (frame(type="feedback", turn_id=1), "missing_field"),
        (frame(type="feedback", kind="thumbs_up"), "missing_field"),
        (frame(type="feedback", turn_id=1, kind="love"), "wrong_type"),
        (frame(type="feedback", turn_id=1, kind=["thumbs_up"]), "wrong_type"),
        (frame(type="feedback", turn_id=False, kind="thumbs_up"), "wrong_type"),
        (frame(type="feedback", turn_id="", kind="thumbs_up"), "wrong_type"),
    ],
)
def test_it_refuses_bad_frames_with_a_code(raw, code):
    with pytest.raises(MessageError) as caught:
        parse_message(raw)
    assert caught.value.code == code
    assert str(caught.value)  # always a sentence to show
