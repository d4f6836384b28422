"""POST /api/v1/turns/<id>/feedback: barge-ins and thumbs, on one's own turns only."""

from __future__ import annotations

import pytest

from assistant.models import ApiToken
from feedback.models import BargeIn, Feedback
from tests.api.test_api_bad_input import assert_error, make_turn, post_raw, snapshot


@pytest.fixture
def key(alice) -> str:
    return ApiToken.objects.create(user=alice).key


@pytest.fixture
def turn(alice):
    return make_turn(alice, response="Playing jazz in the kitchen for you now.")


def url(turn) -> str:
    return f"/api/v1/turns/{turn.pk}/feedback"


def test_it_records_a_barge_in(client, key, turn):
    response = post_raw(client, url(turn), b'{"type": "barge_in", "offset_words": 3, "offset_ms": 1200}', key)
    assert response.status_code == 201
    assert response.json() == {
        "turn_id": turn.pk,
        "type": "barge_in",
        "offset_words": 3,
        "offset_ms": 1200,
        "source": "api",
    }
    barge_in = BargeIn.objects.get(turn=turn)
    assert (barge_in.offset_words, barge_in.offset_ms, barge_in.source) == (3, 1200, BargeIn.Source.API)


def test_a_barge_in_may_come_after_the_last_word(client, key, turn):
    words = len(turn.response_words)
    body = f'{{"type": "barge_in", "offset_words": {words}, "offset_ms": 0}}'.encode()
    assert post_raw(client, url(turn), body, key).status_code == 201


@pytest.mark.parametrize("kind", ["thumbs_up", "thumbs_down"])
def test_it_records_thumbs(client, key, turn, kind):
    response = post_raw(client, url(turn), f'{{"type": "{kind}"}}'.encode(), key)
    assert response.status_code == 201
    assert response.json()["type"] == kind
    assert response.json()["turn_id"] == turn.pk
    assert list(Feedback.objects.filter(turn=turn).values_list("kind", flat=True)) == [kind]


def test_the_turn_shows_its_feedback(client, key, turn):
    post_raw(client, url(turn), b'{"type": "thumbs_down"}', key)
    post_raw(client, url(turn), b'{"type": "barge_in", "offset_words": 1, "offset_ms": 300}', key)
    data = client.get(f"/api/v1/turns/{turn.pk}", headers={"Authorization": f"Token {key}"}).json()
    assert [f["kind"] for f in data["feedback"]] == ["thumbs_down"]
    assert data["barge_ins"] == [{"offset_words": 1, "offset_ms": 300, "source": "api"}]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"type": "meh"}', "unknown_type"),
        (b'{"type": 1}', None),
        (b'{"kind": "thumbs_up"}', "missing_field"),
        (b"{}", "missing_field"),
        (b'{"type": "barge_in"}', "missing_field"),
        (b'{"type": "barge_in", "offset_words": 2}', "missing_field"),
        (b'{"type": "barge_in", "offset_words": -1, "offset_ms": 10}', "out_of_range"),
        (b'{"type": "barge_in", "offset_words": "2", "offset_ms": 10}', "wrong_type"),
        (b'{"type": "barge_in", "offset_words": 2.5, "offset_ms": 10}', "wrong_type"),
        (b'{"type": "barge_in", "offset_words": 2, "offset_ms": 1e99}', None),
        (b'{"type": "barge_in", "offset_words": 99999999999, "offset_ms": 10}', "out_of_range"),
        # Past the end of the reply: the store refuses it.
        (b'{"type": "barge_in", "offset_words": 500, "offset_ms": 10}', "invalid"),
        (b'{"type": "thumbs_up", "offset_words": 1}', "unknown_field"),
        (b'{"type": "thumbs_up"', "malformed_json"),
        (b"[]", None),
        (b"", "malformed_json"),
    ],
)
def test_bad_feedback_is_a_400_and_stores_nothing(client, key, turn, body, code):
    before = snapshot()
    assert_error(post_raw(client, url(turn), body, key), 400, code)
    assert snapshot() == before


def test_feedback_needs_a_token(client, turn):
    before = snapshot()
    assert_error(post_raw(client, url(turn), b'{"type": "thumbs_up"}', None), 401)
    assert snapshot() == before


def test_feedback_on_another_users_turn_is_a_404(client, bob, key):
    bobs = make_turn(bob)
    before = snapshot()
    assert_error(post_raw(client, url(bobs), b'{"type": "thumbs_up"}', key), 404, "unknown_turn")
    assert snapshot() == before


def test_feedback_on_an_unknown_turn_is_a_404(client, key):
    assert_error(post_raw(client, "/api/v1/turns/987654321/feedback", b'{"type": "thumbs_up"}', key), 404)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", '`type` is required: one of "barge_in" or "thumbs_down" or "thumbs_up".'),
        (b'{"type": "thumbs"}', '`type` must be one of "barge_in" or "thumbs_up" or "thumbs_down", not "thumbs".'),
    ],
)
def test_a_missing_or_unknown_type_is_explained_in_plain_words(client, key, turn, body, message):
    response = post_raw(client, url(turn), body, key)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
    assert "discriminator" not in response.content.decode()
