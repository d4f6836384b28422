"""Property-based fuzzing of every API endpoint: thousands of generated requests, no 5xx,
and the rows stored before are exactly as they were.

Bodies are any JSON (deep, odd types, huge numbers, control characters, HTML), shapes close
to the schema with one field wrong, raw bytes, and a few valid requests (which run real
turns). Ids, methods and headers are generated too.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.models import ApiToken
from feedback.models import BargeIn, Feedback, Turn
from tests.api.test_api_bad_input import make_turn

pytestmark = pytest.mark.django_db

EXAMPLES = 2000
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "<script>alert(1)</script>", "\u200b", "x" * 1001, "?!", "turn on the light"]
)
scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | text
any_json = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4))
number = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | text | st.booleans()

turn_body = st.one_of(
    any_json,
    st.fixed_dictionaries({}, optional={"text": any_json, "nbest": any_json, "session": any_json, "device": any_json}),
    st.fixed_dictionaries(
        {"nbest": st.lists(st.fixed_dictionaries({"text": any_json}, optional={"confidence": number}), max_size=22)}
    ),
    st.fixed_dictionaries({"text": text}, optional={"device": text | number, "session": number}),
)
feedback_body = st.one_of(
    any_json,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["barge_in", "thumbs_up", "thumbs_down", "", "BARGE_IN"]) | any_json},
        optional={"offset_words": number, "offset_ms": number, "extra": any_json},
    ),
)
raw_or_json = st.one_of(st.binary(max_size=200), turn_body.map(lambda v: json.dumps(v, allow_nan=True).encode()))
ids = st.integers(min_value=-(2**64), max_value=2**64).map(str) | st.text(
    alphabet="0123456789abc%-./", min_size=1, max_size=25
)


@pytest.fixture
def world(alice, bob, nlu_model):
    """Alice's token and stored rows (hers and bob's) to check afterwards."""
    key = ApiToken.objects.create(user=alice).key
    turns = [make_turn(alice, "what's the weather like today"), make_turn(bob, "turn on the kitchen light")]
    BargeIn.objects.create(turn=turns[0], offset_words=1, offset_ms=300, source="api")
    Feedback.objects.create(turn=turns[1], kind="thumbs_down")
    return key, turns, snapshot()


def snapshot() -> dict:
    return {
        "turns": list(Turn.objects.order_by("pk").values()),
        "barge_ins": list(BargeIn.objects.order_by("pk").values()),
        "feedback": list(Feedback.objects.order_by("pk").values()),
    }


def unchanged(before: dict) -> None:
    """Rows stored before the fuzzing are all still there, field for field (new ones may exist)."""
    after = snapshot()
    for table, rows in before.items():
        now = {row["id"]: row for row in after[table]}
        for row in rows:
            assert now.get(row["id"]) == row, f"{table} row {row['id']} changed"


def not_5xx(response) -> None:
    assert response.status_code < 500, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    SENT.append(response.status_code)


SENT: list[int] = []  # every answer checked, so each test can prove it sent its examples


@pytest.fixture(autouse=True)
def sent_all_examples():
    SENT.clear()
    yield
    assert len(SENT) >= EXAMPLES, f"only {len(SENT)} requests were generated"


def test_post_turns(client, world):
    key, _, before = world

    @FUZZ
    @given(body=raw_or_json, idempotency=st.none() | text.filter(lambda t: "\n" not in t and "\r" not in t))
    def post(body, idempotency):
        headers = {"Authorization": f"Token {key}"}
        if idempotency is not None:
            headers["Idempotency-Key"] = idempotency
        not_5xx(client.post("/api/v1/turns", data=body, content_type="application/json", headers=headers))

    post()
    unchanged(before)


def test_get_turn(client, world):
    key, turns, before = world

    @FUZZ
    @given(turn_id=ids | st.sampled_from([str(t.pk) for t in turns]), token=st.sampled_from([key, "", "x" * 40]))
    def get(turn_id, token):
        not_5xx(client.get(f"/api/v1/turns/{turn_id}", headers={"Authorization": f"Token {token}"}))

    get()
    unchanged(before)


def test_post_feedback(client, world):
    key, turns, before = world
    own, foreign = turns

    @FUZZ
    @given(body=feedback_body.map(lambda v: json.dumps(v, allow_nan=True).encode()) | st.binary(max_size=100),
           turn_id=st.sampled_from([str(own.pk), str(foreign.pk), "0", "99999999"]) | ids)  # fmt: skip
    def post(body, turn_id):
        response = client.post(
            f"/api/v1/turns/{turn_id}/feedback",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Token {key}"},
        )
        not_5xx(response)

    post()
    unchanged(before)
    assert not Feedback.objects.filter(turn=foreign).exclude(kind="thumbs_down").exists()  # bob's turn untouched


def test_every_other_path_and_method(client, world):
    key, _, before = world

    @FUZZ
    @given(
        path=st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00?#"), max_size=60),
        method=st.sampled_from(["get", "post", "put", "patch", "delete", "head", "options", "trace"]),
        body=st.binary(max_size=64),
    )
    def call(path, method, body):
        response = client.generic(
            method.upper(), "/api/v1/" + path.lstrip("/"), data=body, content_type="application/json",
            headers={"Authorization": f"Token {key}"},
        )  # fmt: skip
        assert response.status_code < 500, (method, path, response.content[:300])
        SENT.append(response.status_code)

    call()
    unchanged(before)
