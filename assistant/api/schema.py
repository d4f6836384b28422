"""Request and response models of the JSON API, and the OpenAPI 3.1 document built from them.

The request models validate strictly (no coercion of "5" into 5, no unknown
fields) so that a client's mistake is answered with a 400 naming the field,
instead of being half-understood. The response models describe the shape that
Turn.as_dict() produces; they document it, the views do not re-serialise it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.conf import settings
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, model_validator
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError

from assistant.text import TextError, check_name, check_utterance
from assistant.world.speakers import MAX_ID

API_VERSION = "1.0.0"


def _pydantic(check):
    """One of assistant.text's validators as a pydantic AfterValidator: same codes, same messages."""

    def validate(text: str) -> str:
        try:
            return check(text)
        except TextError as exc:
            raise PydanticCustomError(exc.code, str(exc)) from None

    return validate


def _utterance_schema(schema: dict[str, Any]) -> None:
    schema.update(minLength=1, maxLength=settings.MAX_UTTERANCE_CHARS)
    schema["description"] = "What the user said or typed; not blank, no control characters except tab and newline."


Utterance = Annotated[str, AfterValidator(_pydantic(check_utterance)), Field(json_schema_extra=_utterance_schema)]
DeviceName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_pydantic(check_name))]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Strict(BaseModel):
    # strict: JSON types must match exactly; forbid: a misspelt field is an error, not silently ignored.
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class HypothesisIn(_Strict):
    """One recogniser hypothesis."""

    text: Utterance
    confidence: float | None = Field(default=None, ge=0, le=1, description="0..1; the most confident one is used.")


class TurnIn(_Strict):
    """A new turn: typed `text`, or a recogniser's `nbest` list (exactly one of the two)."""

    text: Utterance | None = None
    nbest: list[HypothesisIn] | None = Field(default=None, min_length=1, max_length=20)
    session: RowId | None = Field(default=None, description="Id of one of your sessions, to continue it.")
    device: RowId | DeviceName | None = Field(
        default=None, description="Id or name (or room) of one of your speakers: the device spoken to."
    )

    @model_validator(mode="after")
    def _text_or_nbest(self) -> TurnIn:
        if (self.text is None) == (self.nbest is None):
            raise PydanticCustomError("text_or_nbest", "Send either `text` or `nbest`, not both and not neither.")
        return self


class BargeInIn(_Strict):
    """The user interrupted the spoken reply."""

    type: Literal["barge_in"]
    offset_words: int = Field(ge=0, le=100_000, description="Words of the reply already delivered.")
    offset_ms: int = Field(ge=0, le=86_400_000, description="Milliseconds since the reply began.")


class ThumbsIn(_Strict):
    """Explicit feedback on the answer."""

    type: Literal["thumbs_up", "thumbs_down"]


class FeedbackIn(RootModel[Annotated[BargeInIn | ThumbsIn, Field(discriminator="type")]]):
    """Feedback on a turn: a barge-in or a thumbs up/down."""


# --- Responses (documentation of Turn.as_dict() and the error envelope) ------


class AsrOut(BaseModel):
    text: str
    confidence: float | None


class NluOut(BaseModel):
    intent: str
    slots: dict[str, str]
    confidence: float | None


class StageOut(BaseModel):
    """One stage of the turn's trace."""

    model_config = ConfigDict(extra="allow")

    stage: Literal["asr", "nlu", "rewrite", "resolve", "execute", "respond"]
    input: Any = None
    output: Any = None
    confidence: float | None = None
    ms: float
    model_version: str
    error: str | None = Field(default=None, description="Present when the stage failed.")


class BargeInOut(BaseModel):
    offset_words: int
    offset_ms: int
    source: str


class FeedbackItemOut(BaseModel):
    kind: Literal["thumbs_up", "thumbs_down"]
    created_at: str


class TurnOut(BaseModel):
    """A stored turn; `manage.py say --json` prints the same object."""

    turn_id: int
    session: int
    created_at: str
    text: str = Field(description="The text as received (for n-best: the most confident hypothesis).")
    asr: AsrOut
    nlu: NluOut
    rewrite: dict[str, Any] | None = Field(description="The rewrite rule that was tried, if any.")
    action: dict[str, Any] | None
    response: str
    status: Literal["ok", "oos", "error"]
    trace: list[StageOut]
    barge_ins: list[BargeInOut]
    feedback: list[FeedbackItemOut]


class FeedbackOut(BaseModel):
    """The recorded feedback."""

    model_config = ConfigDict(extra="allow")

    turn_id: int
    type: Literal["barge_in", "thumbs_up", "thumbs_down"]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: malformed_json, too_long, unknown_turn…")
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


REQUEST_MODELS: tuple[type[BaseModel], ...] = (TurnIn, FeedbackIn)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (TurnOut, FeedbackOut, ErrorOut)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _ref("ErrorOut")}}}}


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _ref(name)}}}}


def openapi_document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 description of /api/v1, schemas generated from the models above."""
    _, defs = models_json_schema(
        [(m, "validation") for m in REQUEST_MODELS] + [(m, "serialization") for m in RESPONSE_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    schemas = defs.get("$defs", {})
    turn_id = {
        "name": "turn_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
        "description": "Id of one of your turns.",
    }
    common_errors = {
        "400": _error("Malformed JSON, a wrong type, an empty, too long or control-character text."),
        "401": _error("Missing or unknown token."),
        "405": _error("Method not allowed."),
        "413": _error(f"Body larger than {max_body_bytes()} bytes."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "teachable-assistant API",
            "version": API_VERSION,
            "description": (
                "Send what a device heard, get the assistant's answer with the trace of every stage, "
                "and report how the user reacted. Errors are always JSON: "
                '{"error": {"code": "...", "message": "..."}}.'
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"token": []}],
        "paths": {
            "/api/v1/turns": {
                "post": {
                    "operationId": "createTurn",
                    "summary": "Run one utterance through the assistant",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[!-~]+$"},
                            "description": (
                                "Any unique string per request (a UUID). Sending the same request again with the "
                                "same key returns the stored turn (header `Idempotent-Replayed: true`) instead of "
                                "running it, and acting on the home, twice."
                            ),
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": _ref("TurnIn")}}},
                    },
                    "responses": {
                        "201": _json("TurnOut", "The stored turn (or, for a replayed Idempotency-Key, the same one)."),
                        **common_errors,
                        "404": _error("Unknown session or device (or one that is not yours)."),
                        "422": _error("The Idempotency-Key was already used for another request."),
                        "503": _error("The database is unavailable or busy; retry (see Retry-After)."),
                    },
                }
            },
            "/api/v1/turns/{turn_id}": {
                "get": {
                    "operationId": "getTurn",
                    "summary": "One of your turns",
                    "parameters": [turn_id],
                    "responses": {
                        "200": _json("TurnOut", "The turn."),
                        "401": common_errors["401"],
                        "404": _error("Unknown turn (or not yours)."),
                        "405": common_errors["405"],
                    },
                }
            },
            "/api/v1/turns/{turn_id}/feedback": {
                "post": {
                    "operationId": "createFeedback",
                    "summary": "Record a barge-in or a thumbs up/down on one of your turns",
                    "parameters": [turn_id],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": _ref("FeedbackIn")}}},
                    },
                    "responses": {
                        "201": _json("FeedbackOut", "The recorded feedback."),
                        **common_errors,
                        "404": _error("Unknown turn (or not yours)."),
                    },
                }
            },
            "/api/v1/me": {
                "get": {
                    "operationId": "getWhatIsKnown",
                    "summary": "What the assistant knows about you: taught and inferred preferences, concepts, "
                    "personal rewrite rules (the page /me/ shows the same; its JSON export adds your turns)",
                    "responses": {
                        "200": {
                            "description": "What is known, with where each item came from.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": common_errors["401"],
                        "405": common_errors["405"],
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {}}}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Authorization: Token <key>`; create a key with `manage.py create_api_token NAME`.",
                }
            },
        },
    }


def max_body_bytes() -> int:
    """Largest request body accepted (API_MAX_BODY_BYTES, 64 KB unless set)."""
    return settings.API_MAX_BODY_BYTES
