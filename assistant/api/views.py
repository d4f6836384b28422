"""The JSON API: parse, authenticate, call the pipeline or the feedback store, answer JSON.

Every answer, errors included, is JSON; an error is {"error": {"code", "message"}}.
Views stay thin: turns go through handle_turn(), feedback through feedback.store.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from assistant import privacy
from assistant.api.auth import AuthFailure, authenticate
from assistant.api.lookups import find_session, find_turn
from assistant.api.schema import BargeInIn, FeedbackIn, TurnIn, max_body_bytes, openapi_document
from assistant.pipeline.turn import TurnInputError, handle_turn
from assistant.world.speakers import find_speaker
from feedback.models import BargeIn, Session
from feedback.store import record_barge_in, record_feedback

log = logging.getLogger(__name__)

# Codes our own validators raise (assistant/api/schema.py), passed through as they are.
_OWN_CODES = {"control_chars", "binary", "empty", "no_words", "too_long", "text_or_nbest"}
# pydantic's error types -> our stable error codes.
_CODES = {
    "json_invalid": "malformed_json",
    "json_type": "malformed_json",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "string_too_short": "empty",
    "string_too_long": "too_long",
    "too_short": "empty",
    "union_tag_not_found": "missing_field",
    "union_tag_invalid": "unknown_type",
    "literal_error": "unknown_type",
    "finite_number": "wrong_type",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _code_for(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "too_long" and "field_type" in err.get("ctx", {}):
        return "too_many"  # pydantic's own: a list (nbest) with too many items
    if kind in _OWN_CODES:
        return kind
    if kind in _CODES:
        return _CODES[kind]
    if kind.endswith(("_type", "_parsing")):
        return "wrong_type"
    return "invalid"


_BRANCH_NAMES = {"int", "str", "float", "bool", "list", "dict", "none"}


def _union_tag_message(err: dict[str, Any], model: type[BaseModel] | None) -> str:
    """pydantic says "Unable to extract tag using discriminator 'type'": say which field and values."""
    ctx = err.get("ctx") or {}
    field = str(ctx.get("discriminator", "type")).strip("'")
    if "expected_tags" in ctx:
        tags = [t.strip().strip("'") for t in str(ctx["expected_tags"]).split(",")]
    else:  # a missing tag: pydantic does not list them, the model's schema does
        schema = model.model_json_schema() if model is not None else {}
        tags = list((schema.get("discriminator") or {}).get("mapping") or {})
    one_of = " or ".join(f'"{t}"' for t in tags if t)
    if err["type"] == "union_tag_not_found":
        return f"`{field}` is required" + (f": one of {one_of}." if one_of else ".")
    return f'`{field}` must be one of {one_of}, not "{ctx.get("tag")}".'


def _message_for(err: dict[str, Any], model: type[BaseModel] | None = None) -> str:
    if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
        return _union_tag_message(err, model)
    # The location names the field; drop pydantic's union-branch labels ("constrained-int", "function-after[…]").
    loc = [
        str(p) for p in err.get("loc", ()) if not (isinstance(p, str) and ("[" in p or "-" in p or p in _BRANCH_NAMES))
    ]
    where = ".".join(loc)
    return f"`{where}`: {err['msg']}" if where else err["msg"]


def _most_relevant(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """For a value of a union type (device: id or name), the branch whose type matched explains best."""
    for err in errors:
        if not err["type"].endswith("_type"):
            return err
    return errors[0]


def parse_body(request: HttpRequest, model: type[BaseModel]) -> Any:
    """The request body validated by `model`, or an ApiError (400/413) saying what is wrong."""
    limit = max_body_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "bad_request", "Content-Length is not a number.") from None
    if declared > limit:
        raise ApiError(413, "too_large", f"The body is larger than {limit} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, "too_large", f"The body is larger than {limit} bytes.") from None
    if len(body) > limit:
        raise ApiError(413, "too_large", f"The body is larger than {limit} bytes.")
    if not body.strip():
        raise ApiError(400, "malformed_json", "The body is empty; send a JSON object.")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        err = _most_relevant(exc.errors(include_url=False, include_input=False))
        raise ApiError(400, _code_for(err), _message_for(err, model)) from None


ApiView = Callable[..., JsonResponse]


def api_endpoint(*methods: str, auth: bool = True) -> Callable[[ApiView], ApiView]:
    """Method check (405), token auth (401), ApiError/TurnInputError -> JSON, never an HTML 500."""

    def decorate(view: ApiView) -> ApiView:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                return error_response(
                    405, "method_not_allowed", f"Use {', '.join(methods)} here.", Allow=", ".join(methods)
                )
            try:
                if auth:
                    user = authenticate(request)
                    if isinstance(user, AuthFailure):
                        return error_response(401, user.code, user.message, WWW_Authenticate="Token")
                    kwargs["user"] = user
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message)
            except TurnInputError as exc:
                # A key reused for another request is well-formed but cannot be processed (IETF draft).
                return error_response(422 if exc.code == "idempotency_key_reused" else 400, exc.code, str(exc))
            except OperationalError:
                # The database is unreachable or every pooled connection stayed busy (DB_POOL_TIMEOUT).
                log.exception("API %s %s: database unavailable", request.method, request.path)
                return error_response(
                    503, "unavailable", "The service is busy or restarting; retry in a moment.", Retry_After="2"
                )
            except Exception:
                log.exception("API %s %s failed", request.method, request.path)
                return error_response(500, "internal", "Something went wrong on our side; it has been logged.")

        return wrapper

    return decorate


def _turn_json(turn: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(turn.as_dict(), status=status, json_dumps_params={"ensure_ascii": False})


@api_endpoint("POST")
def turns(request: HttpRequest, user: AbstractBaseUser) -> JsonResponse:
    """POST /api/v1/turns: run one utterance through the pipeline."""
    data: TurnIn = parse_body(request, TurnIn)
    session = None
    if data.session is not None:
        session = find_session(user, data.session)
        if session is None:
            raise ApiError(404, "unknown_session", f"You have no session {data.session}.")
    device = None
    if data.device is not None:
        device = find_speaker(user, data.device)
        if device is None:
            raise ApiError(404, "unknown_device", f"You have no speaker {data.device!r}.")
    turn = handle_turn(
        user,
        text=data.text,
        nbest=[h.model_dump() for h in data.nbest] if data.nbest is not None else None,
        device=device,
        session=session,
        channel=Session.Channel.API,
        # A retry with the same key gets the stored turn back: the client may resend safely.
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    response = _turn_json(turn, status=201)
    response["Location"] = reverse("api:turn", args=[turn.pk])
    if turn.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@api_endpoint("GET")
def turn_detail(request: HttpRequest, turn_id: int, user: AbstractBaseUser) -> JsonResponse:
    """GET /api/v1/turns/<id>: one of the user's turns."""
    turn = find_turn(user, turn_id)
    if turn is None:
        raise ApiError(404, "unknown_turn", f"You have no turn {turn_id}.")
    return _turn_json(turn)


@api_endpoint("POST")
def turn_feedback(request: HttpRequest, turn_id: int, user: AbstractBaseUser) -> JsonResponse:
    """POST /api/v1/turns/<id>/feedback: a barge-in or a thumbs up/down."""
    turn = find_turn(user, turn_id)
    if turn is None:
        raise ApiError(404, "unknown_turn", f"You have no turn {turn_id}.")
    item = parse_body(request, FeedbackIn).root
    try:
        if isinstance(item, BargeInIn):
            barge_in = record_barge_in(turn, item.offset_words, item.offset_ms, BargeIn.Source.API, user=user)
            payload = {"turn_id": turn.pk, "type": "barge_in", **barge_in.as_dict()}
        else:
            feedback = record_feedback(turn, user, item.type)
            payload = {"turn_id": turn.pk, "type": feedback.kind, "created_at": feedback.created_at.isoformat()}
    except PermissionDenied:
        # find_turn already scoped the turn to the user; answer as for any unknown turn.
        raise ApiError(404, "unknown_turn", f"You have no turn {turn_id}.") from None
    except ValueError as exc:
        raise ApiError(400, "invalid", str(exc)) from None
    return JsonResponse(payload, status=201)


@api_endpoint("GET")
def what_is_known(request: HttpRequest, user: AbstractBaseUser) -> JsonResponse:
    """GET /api/v1/me: what the assistant knows about the user (the export, without the turns)."""
    return JsonResponse(privacy.export(user, include_turns=False))


@api_endpoint("GET", auth=False)
def openapi(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/openapi.json: the OpenAPI 3.1 description of this API."""
    return JsonResponse(openapi_document(server_url=request.build_absolute_uri("/")))


def docs(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/docs: the API for people (Swagger UI over openapi.json, served from our static files)."""
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", "Use GET here.", Allow="GET")
    return render(request, "api/docs.html", {"schema_url": reverse("api:openapi")})


@api_endpoint("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", auth=False)
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Anything else under /api/v1/: a JSON 404 rather than an HTML page."""
    return error_response(404, "not_found", "No such API endpoint; see /api/v1/openapi.json.")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: a request Django refused before any view (a Host not in ALLOWED_HOSTS…).
    Under /api/ the answer is JSON like every other API error."""
    if _is_api(request):
        return error_response(400, "bad_request", "Bad request: the Host header is not one this server answers to.")
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: under /api/ a JSON error, elsewhere Django's plain page (never the debug page)."""
    if _is_api(request):
        return error_response(500, "internal", "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)
