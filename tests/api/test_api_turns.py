"""POST /api/v1/turns and GET /api/v1/turns/<id>: turns through the real pipeline and NLU model."""

from __future__ import annotations

import json

import pytest

from assistant.models import ApiToken, Device
from feedback.models import Session, Turn
from tests.api.test_api_bad_input import assert_error

TURNS = "/api/v1/turns"
TURN_KEYS = {
    "turn_id",
    "session",
    "created_at",
    "text",
    "asr",
    "nlu",
    "rewrite",
    "action",
    "response",
    "status",
    "trace",
    "barge_ins",
    "feedback",
}


@pytest.fixture
def key(alice) -> str:
    return ApiToken.objects.create(user=alice).key


def post(client, key: str, body: dict):
    return client.post(
        TURNS, data=json.dumps(body), content_type="application/json", headers={"Authorization": f"Token {key}"}
    )


def test_it_answers_typed_text(client, nlu_model, alice, key):
    response = post(client, key, {"text": "turn on the lights in the kitchen"})
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) >= TURN_KEYS
    turn = Turn.objects.get(pk=data["turn_id"])
    assert turn.user == alice
    assert turn.session.channel == Session.Channel.API
    assert response["Location"] == f"{TURNS}/{turn.pk}"
    # One source of the shape: the API prints exactly Turn.as_dict().
    assert data == json.loads(json.dumps(turn.as_dict()))
    assert data["nlu"]["intent"] == "iot_hue_lighton"
    assert set(data["nlu"]) == {"intent", "slots", "confidence"}
    assert data["response"]
    assert [stage["stage"] for stage in data["trace"]] == ["asr", "nlu", "rewrite", "resolve", "execute", "respond"]
    assert all(isinstance(stage["ms"], int | float) for stage in data["trace"])


def test_it_chooses_the_most_confident_hypothesis(client, nlu_model, key):
    nbest = [
        {"text": "turn on the lice in the kitchen", "confidence": 0.31},
        {"text": "Set a timer for FIVE minutes!", "confidence": 0.92},
        {"text": "set a time for five minutes", "confidence": 0.55},
    ]
    response = post(client, key, {"nbest": nbest})
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["text"] == "Set a timer for FIVE minutes!"
    assert data["asr"] == {"text": "set a timer for 5 minutes", "confidence": 0.92}
    assert data["nlu"]["intent"] == "timer_set"
    turn = Turn.objects.get(pk=data["turn_id"])
    assert turn.nbest == nbest


def test_it_continues_a_session(client, nlu_model, key):
    first = post(client, key, {"text": "play some jazz"}).json()
    second = post(client, key, {"text": "pause the music", "session": first["session"]})
    assert second.status_code == 201, second.content
    assert second.json()["session"] == first["session"]
    assert Session.objects.get(pk=first["session"]).turns.count() == 2


def test_without_a_session_each_turn_starts_one(client, nlu_model, key):
    first = post(client, key, {"text": "hello"}).json()
    second = post(client, key, {"text": "hello"}).json()
    assert first["session"] != second["session"]


def test_it_speaks_to_a_device_by_id(client, nlu_model, alice, key):
    speaker = Device.objects.get(home__owner=alice, kind=Device.Kind.SPEAKER, room="kitchen")
    response = post(client, key, {"text": "turn the lights off", "device": speaker.pk})
    assert response.status_code == 201, response.content
    turn = Turn.objects.get(pk=response.json()["turn_id"])
    assert turn.context["device_id"] == speaker.pk
    assert turn.context["room"] == "kitchen"
    assert turn.session.device == speaker


def test_it_speaks_to_a_device_by_name(client, nlu_model, alice, key):
    response = post(client, key, {"text": "what time is it", "device": "bedroom speaker"})
    assert response.status_code == 201, response.content
    assert Turn.objects.get(pk=response.json()["turn_id"]).context["room"] == "bedroom"


def test_html_is_kept_as_text(client, nlu_model, key):
    response = post(client, key, {"text": "<script>alert(1)</script>"})
    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["text"] == "<script>alert(1)</script>"


def test_it_returns_ones_own_turn(client, nlu_model, key):
    created = post(client, key, {"text": "what's the weather like"}).json()
    response = client.get(f"{TURNS}/{created['turn_id']}", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200
    assert response.json() == created


def test_another_user_cannot_read_the_turn(client, nlu_model, bob, key):
    created = post(client, key, {"text": "tell me a joke"}).json()
    bob_key = ApiToken.objects.create(user=bob).key
    response = client.get(f"{TURNS}/{created['turn_id']}", headers={"Authorization": f"Token {bob_key}"})
    assert_error(response, 404, "unknown_turn")


def test_another_users_session_cannot_be_continued(client, nlu_model, bob, key):
    created = post(client, key, {"text": "hello"}).json()
    bob_key = ApiToken.objects.create(user=bob).key
    count = Turn.objects.count()
    response = post(client, bob_key, {"text": "hello", "session": created["session"]})
    assert_error(response, 404, "unknown_session")
    assert Turn.objects.count() == count


def test_a_user_without_a_home_gets_one(client, nlu_model, charlie):
    key = ApiToken.objects.create(user=charlie).key
    response = post(client, key, {"text": "turn on the bedroom light"})
    assert response.status_code == 201, response.content
    assert Device.objects.filter(home__owner=charlie).exists()


def test_an_answer_in_the_same_session_completes_the_request(client, nlu_model, alice, key):
    """The dialogue state through the API: the client continues the session it was given."""
    asked = post(client, key, {"text": "is it on"}).json()
    assert asked["response"] == "Which device do you want to know about?"
    answered = post(client, key, {"text": "the garage door", "session": asked["session"]}).json()
    assert answered["nlu"]["intent"] == "iot_device_query"
    assert "garage door is closed" in answered["response"].lower()
    assert Device.objects.get(home__owner=alice, kind="garage_door").state["open"] is False


def test_preferences_and_concepts_through_the_api(client, nlu_model, alice, key):
    assert post(client, key, {"text": "I'm a Warriors fan"}).json()["response"].startswith("Got it")
    assert "Warriors" in post(client, key, {"text": "how did my team do"}).json()["response"]
    taught = post(client, key, {"text": "when i say goodnight turn off all the lights"}).json()
    assert taught["response"].endswith("Shall I remember that?")
    done = post(client, key, {"text": "yes", "session": taught["session"]}).json()
    assert done["response"].startswith("I'll remember goodnight")
    assert post(client, key, {"text": "goodnight"}).json()["action"]["intent"] == "concept_run"
