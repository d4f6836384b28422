"""Idempotency-Key on POST /api/v1/turns, and repeated barge-in reports: a client that lost an
answer may send again without the home acting twice or the evidence counting twice."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connections

from assistant.models import ApiToken, ListItem
from feedback.models import BargeIn, Turn
from tests.api.test_api_bad_input import assert_error

TURNS = "/api/v1/turns"
ADD_MILK = {"text": "add milk to my shopping list"}


@pytest.fixture
def key(alice):
    return ApiToken.objects.create(user=alice).key


def post(client, key: str, body: dict, idempotency_key: str | None = None):
    headers = {"Authorization": f"Token {key}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(TURNS, data=json.dumps(body), content_type="application/json", headers=headers)


@pytest.mark.django_db
def test_a_retry_with_the_same_key_returns_the_stored_turn_and_acts_once(client, nlu_model, alice, key):
    first = post(client, key, ADD_MILK, "order-123")
    again = post(client, key, ADD_MILK, "order-123")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert again.json() == first.json()
    assert Turn.objects.filter(user=alice).count() == 1
    assert ListItem.objects.filter(home=alice.home, text__icontains="milk").count() == 1


@pytest.mark.django_db
def test_without_a_key_every_request_is_a_new_turn(client, nlu_model, alice, key):
    post(client, key, ADD_MILK)
    post(client, key, ADD_MILK)
    assert Turn.objects.filter(user=alice).count() == 2


@pytest.mark.django_db
def test_a_key_reused_for_another_request_is_a_422_and_changes_nothing(client, nlu_model, alice, key):
    post(client, key, ADD_MILK, "k1")
    response = post(client, key, {"text": "add eggs to my shopping list"}, "k1")
    assert_error(response, 422, "idempotency_key_reused")
    assert Turn.objects.filter(user=alice).count() == 1
    assert not ListItem.objects.filter(text__icontains="eggs").exists()


@pytest.mark.django_db
def test_keys_belong_to_their_user(client, nlu_model, alice, bob, key):
    bob_key = ApiToken.objects.create(user=bob).key
    assert post(client, key, ADD_MILK, "same").status_code == 201
    response = post(client, bob_key, ADD_MILK, "same")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Turn.objects.filter(user=bob).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", " ", "x" * 101, "with space", "ünïcode"])
def test_a_malformed_key_is_a_400(client, nlu_model, alice, key, bad):
    assert_error(post(client, key, ADD_MILK, bad), 400, "bad_idempotency_key")
    assert not Turn.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_twin_requests_at_once_make_one_turn(nlu_model, alice):
    """Two threads send the same keyed request at the same moment: one turn, one list item."""
    from django.test import Client

    key = ApiToken.objects.create(user=alice).key
    post(Client(), key, {"text": "hello"})  # the model is loaded before the race
    barrier = threading.Barrier(4)
    answers: list[dict] = []

    def send() -> None:
        barrier.wait()
        try:
            answers.append(post(Client(), key, ADD_MILK, "race-1").json())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({a["turn_id"] for a in answers}) == 1
    assert Turn.objects.filter(user=alice, idempotency_key="race-1").count() == 1
    assert ListItem.objects.filter(home=alice.home, text__icontains="milk").count() == 1


@pytest.mark.django_db
def test_ten_identical_barge_in_reports_store_one(client, nlu_model, alice, key):
    turn_id = post(client, key, {"text": "what's the weather like today"}).json()["turn_id"]
    body = json.dumps({"type": "barge_in", "offset_words": 2, "offset_ms": 700})
    headers = {"Authorization": f"Token {key}"}
    for _ in range(10):
        response = client.post(
            f"{TURNS}/{turn_id}/feedback", data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == 201
    assert BargeIn.objects.filter(turn_id=turn_id).count() == 1
