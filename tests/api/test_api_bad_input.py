"""Bad requests to the JSON API get a clear JSON 4xx and change nothing that is stored.

None of these requests reaches the pipeline, so no NLU model is needed here.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from assistant.models import ApiToken, Device
from feedback.models import BargeIn, Feedback, Session, Turn

TURNS = "/api/v1/turns"


def make_turn(user, text: str = "turn on the light", response: str = "The light is on.") -> Turn:
    session = Session.objects.create(user=user, channel=Session.Channel.API, started_at=timezone.now())
    return Turn.objects.create(
        session=session,
        user=user,
        created_at=timezone.now(),
        raw_text=text,
        asr_text=text,
        intent="iot_hue_lighton",
        response=response,
        trace=[{"stage": "asr", "ms": 0.1}],
    )


def snapshot() -> list[dict]:
    """Everything the feedback store holds about turns, to compare before and after."""
    return [
        {**t.as_dict(), "pk": t.pk} for t in Turn.objects.order_by("pk").prefetch_related("barge_ins", "feedback")
    ] + [
        {
            "sessions": Session.objects.count(),
            "barge_ins": BargeIn.objects.count(),
            "feedback": Feedback.objects.count(),
        }
    ]


@pytest.fixture
def key(alice) -> str:
    return ApiToken.objects.create(user=alice).key


@pytest.fixture
def stored(alice, bob) -> dict:
    """A turn for each of alice and bob, to check that nothing changes."""
    return {"alice": make_turn(alice), "bob": make_turn(bob)}


def post_raw(client, url: str, body: bytes, key: str | None):
    headers = {"Authorization": f"Token {key}"} if key else {}
    return client.post(url, data=body, content_type="application/json", headers=headers)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


BAD_TURN_BODIES = [
    pytest.param(b'{"text": ', 400, "malformed_json", id="truncated-json"),
    pytest.param(b"", 400, "malformed_json", id="empty-body"),
    pytest.param(b"   \n", 400, "malformed_json", id="blank-body"),
    pytest.param(b"\xff\xfe\x00\x01binary", 400, "malformed_json", id="binary-body"),
    pytest.param(b"{'text': 'single quotes'}", 400, "malformed_json", id="not-json"),
    pytest.param(b'["turn on the light"]', 400, "not_an_object", id="array"),
    pytest.param(b"null", 400, "not_an_object", id="null"),
    pytest.param(b'"turn on the light"', 400, "not_an_object", id="string"),
    pytest.param(b"{}", 400, "text_or_nbest", id="neither-text-nor-nbest"),
    pytest.param(b'{"text": "hi", "nbest": [{"text": "hi"}]}', 400, "text_or_nbest", id="both"),
    pytest.param(b'{"text": 42}', 400, "wrong_type", id="text-number"),
    pytest.param(b'{"text": ["hi"]}', 400, "wrong_type", id="text-list"),
    pytest.param(b'{"text": {"hi": 1}}', 400, "wrong_type", id="text-object"),
    pytest.param(b'{"text": ""}', 400, "empty", id="text-empty"),
    pytest.param(b'{"text": "  \\n\\t "}', 400, "empty", id="text-whitespace"),
    pytest.param(json.dumps({"text": "x" * 1001}).encode(), 400, "too_long", id="text-too-long"),
    pytest.param(b'{"text": "bad\\u0000byte"}', 400, "control_chars", id="text-nul"),
    pytest.param(b'{"text": "ring \\u0007 bell"}', 400, "control_chars", id="text-bel"),
    pytest.param(b'{"text": "\\u001b[31mred"}', 400, "control_chars", id="text-escape-sequence"),
    pytest.param(b'{"text": "\\ud800"}', 400, "malformed_json", id="text-lone-surrogate"),
    # Nothing to understand: once stored as a failed turn with a traceback.
    pytest.param(b'{"text": "\\u200b\\u200b\\u200b"}', 400, "no_words", id="text-zero-width-only"),
    pytest.param(b'{"text": "?!... ---"}', 400, "no_words", id="text-punctuation-only"),
    pytest.param(b'{"text": "\\ufeff \\u2060"}', 400, "no_words", id="text-invisible-only"),
    pytest.param(b'{"nbest": [{"text": "!!!", "confidence": 0.9}]}', 400, "no_words", id="hypothesis-no-words"),
    # 8,000-deep nesting: once a RecursionError on the socket; a clear 400 here.
    pytest.param(b'{"text": ' + b"[" * 8000 + b"]" * 8000 + b"}", 400, "malformed_json", id="deeply-nested"),
    pytest.param(b'{"text": "hi", "colour": "red"}', 400, "unknown_field", id="unknown-field"),
    pytest.param(b'{"nbest": "play jazz"}', 400, "wrong_type", id="nbest-string"),
    pytest.param(b'{"nbest": []}', 400, "empty", id="nbest-empty"),
    pytest.param(b'{"nbest": [{"confidence": 0.5}]}', 400, "missing_field", id="nbest-no-text"),
    pytest.param(b'{"nbest": [{"text": "a", "confidence": "high"}]}', 400, "wrong_type", id="confidence-string"),
    pytest.param(b'{"nbest": [{"text": "a", "confidence": true}]}', 400, "wrong_type", id="confidence-bool"),
    pytest.param(b'{"nbest": [{"text": "a", "confidence": 1.5}]}', 400, "out_of_range", id="confidence-above-1"),
    pytest.param(b'{"nbest": [{"text": "a", "confidence": -0.1}]}', 400, "out_of_range", id="confidence-negative"),
    pytest.param(b'{"nbest": [{"text": "a", "confidence": NaN}]}', 400, "wrong_type", id="confidence-nan"),
    pytest.param(b'{"nbest": [{"text": "", "confidence": 0.5}]}', 400, "empty", id="hypothesis-empty"),
    pytest.param(b'{"nbest": [{"text": "a\\u0000", "confidence": 0.5}]}', 400, "control_chars", id="hypothesis-nul"),
    pytest.param(
        json.dumps({"nbest": [{"text": f"h{i}"} for i in range(21)]}).encode(), 400, "too_many", id="nbest-21"
    ),
    pytest.param(b'{"text": "hi", "session": "1"}', 400, "wrong_type", id="session-string"),
    pytest.param(b'{"text": "hi", "session": 1.5}', 400, "wrong_type", id="session-float"),
    pytest.param(b'{"text": "hi", "session": 0}', 400, "out_of_range", id="session-zero"),
    pytest.param(b'{"text": "hi", "session": 100000000000000000000000}', 400, "out_of_range", id="session-huge"),
    pytest.param(b'{"text": "hi", "device": true}', 400, "wrong_type", id="device-bool"),
    pytest.param(b'{"text": "hi", "device": ""}', 400, "empty", id="device-empty"),
    pytest.param(b'{"text": "hi", "device": "kitchen\\u0000"}', 400, "control_chars", id="device-nul"),
    pytest.param(json.dumps({"text": "hi", "device": "d" * 101}).encode(), 400, "too_long", id="device-too-long"),
    pytest.param(json.dumps({"text": "a" * 70_000}).encode(), 413, "too_large", id="body-over-64kb"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_TURN_BODIES)
def test_a_bad_turn_request_is_a_json_4xx_and_stores_nothing(client, key, stored, body, status, code):
    before = snapshot()
    response = post_raw(client, TURNS, body, key)
    assert_error(response, status, code)
    assert snapshot() == before


def test_the_error_names_the_field(client, key, stored):
    body = assert_error(post_raw(client, TURNS, b'{"nbest": [{"text": "a", "confidence": "x"}]}', key), 400)
    assert "nbest.0.confidence" in body["error"]["message"]


def test_the_body_limit_is_checked_before_parsing(client, key, stored, settings):
    settings.API_MAX_BODY_BYTES = 100
    before = snapshot()
    assert_error(post_raw(client, TURNS, json.dumps({"text": "x" * 200}).encode(), key), 413, "too_large")
    assert snapshot() == before


def test_a_text_longer_than_the_setting_is_refused(client, key, stored, settings):
    settings.MAX_UTTERANCE_CHARS = 10
    assert_error(post_raw(client, TURNS, b'{"text": "eleven chars"}', key), 400, "too_long")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Token",
        "Token ",
        "Bearer 0123456789012345678901234567890123456789",
        "Token not-a-key",
        "Token 0123456789abcdef0123456789abcdef01234567",  # the right shape, but no such key
        "Token " + "a" * 5000,
        "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQtMQ==",
    ],
)
def test_a_missing_or_bad_token_is_a_401(client, stored, header):
    before = snapshot()
    headers = {} if header is None else {"Authorization": header}
    response = client.post(TURNS, data=b'{"text": "hi"}', content_type="application/json", headers=headers)
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"
    assert snapshot() == before


def test_a_token_of_an_inactive_user_is_a_401(client, alice, key, stored):
    alice.is_active = False
    alice.save()
    assert_error(post_raw(client, TURNS, b'{"text": "hi"}', key), 401, "invalid_token")


def test_a_401_comes_before_the_body_is_read(client, stored):
    assert_error(post_raw(client, TURNS, b"{not json", None), 401, "not_authenticated")


def test_a_token_records_when_it_was_last_used(client, key, stored):
    turn = stored["alice"]
    assert client.get(f"{TURNS}/{turn.pk}", headers={"Authorization": f"Token {key}"}).status_code == 200
    assert ApiToken.objects.get(key=key).last_used_at is not None


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", TURNS, "POST"),
        ("put", TURNS, "POST"),
        ("delete", TURNS, "POST"),
        ("post", f"{TURNS}/{{alice}}", "GET"),
        ("delete", f"{TURNS}/{{alice}}", "GET"),
        ("patch", f"{TURNS}/{{alice}}", "GET"),
        ("get", f"{TURNS}/{{alice}}/feedback", "POST"),
        ("post", "/api/v1/openapi.json", "GET"),
    ],
)
def test_a_wrong_method_is_a_json_405(client, key, stored, method, path, allow):
    before = snapshot()
    url = path.format(alice=stored["alice"].pk)
    response = client.generic(
        method.upper(), url, data=b"{}", content_type="application/json", headers={"Authorization": f"Token {key}"}
    )
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == allow
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body_of", "code"),
    [
        (lambda s: {"text": "hi", "session": 999_999_999}, "unknown_session"),
        (lambda s: {"text": "hi", "session": s["bob"].session_id}, "unknown_session"),
        (lambda s: {"text": "hi", "device": 999_999_999}, "unknown_device"),
        (lambda s: {"text": "hi", "device": "attic"}, "unknown_device"),
        # Digits to str.isdigit() but not to int(): once a 500.
        (lambda s: {"text": "hi", "device": "\u00b2"}, "unknown_device"),
        (lambda s: {"text": "hi", "device": "\u0661\u0662"}, "unknown_device"),
        (lambda s: {"text": "hi", "device": "<script>alert(1)</script>"}, "unknown_device"),
        (
            lambda s: {
                "text": "hi",
                "device": Device.objects.filter(home__owner__username="bob", kind="speaker")[0].pk,
            },
            "unknown_device",
        ),
        (
            # A device of alice's that is not a speaker: one does not speak to a light.
            lambda s: {
                "text": "hi",
                "device": Device.objects.filter(home__owner__username="alice", kind="light")[0].pk,
            },
            "unknown_device",
        ),
    ],
)
def test_an_unknown_or_foreign_session_or_device_is_a_404(client, key, stored, body_of, code):
    before = snapshot()
    response = post_raw(client, TURNS, json.dumps(body_of(stored)).encode(), key)
    assert_error(response, 404, code)
    assert snapshot() == before


@pytest.mark.parametrize("suffix", ["", "/feedback"])
def test_another_users_turn_is_a_404(client, key, stored, suffix):
    before = snapshot()
    url = f"{TURNS}/{stored['bob'].pk}{suffix}"
    if suffix:
        response = post_raw(client, url, b'{"type": "thumbs_down"}', key)
    else:
        response = client.get(url, headers={"Authorization": f"Token {key}"})
    assert_error(response, 404, "unknown_turn")
    assert snapshot() == before


@pytest.mark.parametrize("turn_id", ["999999999", "100000000000000000000000000"])
def test_an_unknown_turn_is_a_404(client, key, stored, turn_id):
    response = client.get(f"{TURNS}/{turn_id}", headers={"Authorization": f"Token {key}"})
    assert_error(response, 404, "unknown_turn")


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/nope", "/api/v1/turns/abc", "/api/v1/turns/"])
def test_an_unknown_api_path_is_a_json_404(client, key, path):
    assert_error(client.get(path, headers={"Authorization": f"Token {key}"}), 404, "not_found")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_through_asgi_bad_requests_are_json_errors_too(async_client):
    """The server runs the ASGI handler (daphne); its request body handling must give the same answers."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.db import connections

    user = await sync_to_async(get_user_model().objects.create)(username="asgi")
    key = (await ApiToken.objects.acreate(user=user)).key
    headers = {"Authorization": f"Token {key}"}
    big = json.dumps({"text": "a" * 70_000})
    response = await async_client.post(TURNS, data=big, content_type="application/json", headers=headers)
    assert_error(response, 413, "too_large")
    response = await async_client.post(TURNS, data=b"{oops", content_type="application/json", headers=headers)
    assert_error(response, 400, "malformed_json")
    response = await async_client.post(TURNS, data=b'{"text": "hi"}', content_type="application/json")
    assert_error(response, 401, "not_authenticated")
    assert await Turn.objects.acount() == 0
    await sync_to_async(connections.close_all)()  # the sync thread's connection, back to the pool


@pytest.mark.parametrize("path", ["/api/v1/turns", "/api/v1/openapi.json", "/api/v1/nothing"])
def test_a_host_the_server_does_not_answer_to_is_a_json_400(client, path):
    response = client.get(path, HTTP_HOST="evil.example")
    assert_error(response, 400, "bad_request")


def test_outside_the_api_a_bad_host_keeps_the_plain_page(client):
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
