"""The messages the chat page sends over its WebSocket, parsed and validated.

The htmx ws extension sends a form as a JSON object of strings (plus a
HEADERS object we ignore). parse_message() turns one frame into a typed
message or raises MessageError with a sentence fit to show the person.
"""

from __future__ import annotations

import json
from typing import Literal, NotRequired, TypedDict

from assistant.text import TextError, check_utterance

# A say frame holds at most MAX_UTTERANCE_CHARS of text plus a few small
# fields; anything far larger is refused before json.loads spends time on it.
MAX_FRAME_CHARS = 16_384


class SayMessage(TypedDict):
    type: Literal["say"]
    text: str
    device: int | None  # a speaker's id; None when the person has no speaker to pick
    key: NotRequired[str]  # the page's idempotency key: a resent frame gets its stored turn back


class StopMessage(TypedDict):
    type: Literal["stop"]


class FeedbackMessage(TypedDict):
    type: Literal["feedback"]
    turn_id: int
    kind: Literal["thumbs_up", "thumbs_down"]


ClientMessage = SayMessage | StopMessage | FeedbackMessage

FEEDBACK_KINDS = ("thumbs_up", "thumbs_down")


class MessageError(ValueError):
    """A frame that cannot be acted on; the message is shown to the person."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


def _positive_id(value: object, field: str) -> int:
    """Accept 12 or "12" (forms send strings); refuse bools, floats, junk."""
    if isinstance(value, bool):
        raise MessageError(f"`{field}` must be an id.", "wrong_type")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 18:
        number = int(value.strip())
    else:
        raise MessageError(f"`{field}` must be an id.", "wrong_type")
    if number <= 0:
        raise MessageError(f"`{field}` must be an id.", "wrong_type")
    return number


def parse_message(text_data: str | None) -> ClientMessage:
    """Parse one WebSocket frame into a typed message, or raise MessageError."""
    if text_data is None:
        raise MessageError("Send text frames holding JSON.", "binary")
    if len(text_data) > MAX_FRAME_CHARS:
        raise MessageError("That message is too large.", "too_large")
    try:
        data = json.loads(text_data)
    except (ValueError, RecursionError):  # JSONDecodeError, bad unicode escapes, absurd nesting
        raise MessageError("That message is not valid JSON.", "malformed") from None
    if not isinstance(data, dict):
        raise MessageError("A message must be a JSON object.", "malformed")

    kind = data.get("type")
    if kind == "say":
        if "text" not in data:
            raise MessageError("Say something first.", "missing_field")
        if "device" not in data:
            raise MessageError("Choose the device you are speaking to.", "missing_field")
        try:
            text = check_utterance(data["text"])
        except TextError as exc:
            raise MessageError(str(exc), exc.code) from None
        device = data["device"]
        device_id = None if device in (None, "") else _positive_id(device, "device")
        message = SayMessage(type="say", text=text, device=device_id)
        key = data.get("key")
        if key not in (None, ""):
            if not isinstance(key, str):
                raise MessageError("`key` must be a string.", "wrong_type")
            message["key"] = key
        return message
    if kind == "stop":
        return StopMessage(type="stop")
    if kind == "feedback":
        if "turn_id" not in data or "kind" not in data:
            raise MessageError("Feedback needs `turn_id` and `kind`.", "missing_field")
        if data["kind"] not in FEEDBACK_KINDS:
            raise MessageError("Feedback is thumbs_up or thumbs_down.", "wrong_type")
        return FeedbackMessage(type="feedback", turn_id=_positive_id(data["turn_id"], "turn_id"), kind=data["kind"])
    if kind is None:
        raise MessageError("A message needs a `type`.", "missing_field")
    raise MessageError("Unknown message type.", "unknown_type")
