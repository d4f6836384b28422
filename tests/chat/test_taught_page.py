"""The "What you've taught me" page: what is known, with its source; forget one item, export all of
it, forget everything, verified in every store that holds something learned about the person."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from assistant.pipeline.turn import handle_turn
from feedback.models import RewriteRule, Turn
from learning.mining import collect
from learning.online import build_entries
from learning.preferences import train_and_register as train_preference_model
from teaching.models import Concept, Erasure, ForgottenPreference, InferredPreference, PendingQuestion, Preference

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _teach(user) -> dict:
    """Something of every kind learned about `user`."""
    now = timezone.now()
    pref = Preference.objects.create(
        user=user, kind="team", value="Golden State Warriors", said="warriors", created_at=now, updated_at=now
    )
    concept = Concept.objects.create(
        user=user,
        name="study mode",
        key="study",
        steps=[{"text": "turn off the tv", "intent": "iot_tv_off", "slots": {}}],
        definition="turn off the tv",
        created_at=now,
        updated_at=now,
    )
    rule = RewriteRule.objects.create(
        source_text="lights of",
        target_text="lights off",
        scope=RewriteRule.Scope.PERSONAL,
        user=user,
        status=RewriteRule.Status.ACTIVE,
        origin=RewriteRule.Origin.MINED,
    )
    return {"preference": pref, "concept": concept, "rule": rule}


def test_the_page_needs_a_login(client):
    response = client.get("/me/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_lists_what_is_known_with_its_source(alice):
    _teach(alice)
    page = _client(alice).get("/me/").content.decode()
    assert "Golden State Warriors" in page and "You told me" in page and "“warriors”" in page
    assert "study mode" in page and "turn off the tv" in page
    assert "“lights of”" in page and "Mined from rephrases" in page


def test_user_text_is_escaped(alice):
    now = timezone.now()
    Preference.objects.create(user=alice, kind="name", value="<script>x</script>", created_at=now, updated_at=now)
    page = _client(alice).get("/me/").content.decode()
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_forgetting_one_item_with_htmx_swaps_its_row_out(alice):
    items = _teach(alice)
    response = _client(alice).post(f"/me/preference/{items['preference'].pk}/forget/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""
    assert not Preference.objects.filter(user=alice).exists()
    assert Concept.objects.filter(user=alice).exists()


def test_forgetting_one_item_without_javascript_reloads_the_page(alice):
    items = _teach(alice)
    response = _client(alice).post(f"/me/concept/{items['concept'].pk}/forget/")
    assert response.status_code == 302 and response["Location"] == "/me/"
    assert not Concept.objects.exists()


@pytest.mark.parametrize("path", ["/me/preference/{id}/forget/", "/me/rule/{id}/forget/", "/me/concept/{id}/forget/"])
def test_someone_elses_item_is_not_found_and_kept(alice, bob, path):
    items = _teach(alice)
    kind = path.split("/")[2]
    response = _client(bob).post(path.format(id=items[kind].pk))
    assert response.status_code == 404
    assert type(items[kind]).objects.filter(pk=items[kind].pk).exists()


@pytest.mark.parametrize("path", ["/me/turn/1/forget/", "/me/preference/999999/forget/"])
def test_unknown_kinds_and_ids_are_not_found(alice, path):
    assert _client(alice).post(path).status_code == 404


def test_forgetting_needs_a_post(alice):
    items = _teach(alice)
    assert _client(alice).get(f"/me/preference/{items['preference'].pk}/forget/").status_code == 405
    assert _client(alice).get("/me/forget-everything/").status_code == 405
    assert Preference.objects.exists()


def test_export_has_everything_of_theirs_and_nothing_of_anyone_elses(alice, bob, nlu_model):
    _teach(alice)
    _teach(bob)
    handle_turn(alice, text="what time is it", now=NOON)
    response = _client(alice).get("/me/export.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["user"] == "alice"
    assert [p["value"] for p in data["preferences"]] == ["Golden State Warriors"]
    assert [c["name"] for c in data["concepts"]] == ["study mode"]
    assert [r["said"] for r in data["personal_rewrite_rules"]] == ["lights of"]
    assert [t["said"] for t in data["turns"]] == ["what time is it"]


def test_forget_everything_needs_the_words_typed(alice):
    _teach(alice)
    response = _client(alice).post("/me/forget-everything/", {"confirm": "yes"})
    assert response.status_code == 400
    assert Preference.objects.exists() and Concept.objects.exists() and RewriteRule.objects.exists()


def test_forget_everything_leaves_nothing_learned_in_any_store(alice, bob, nlu_model, settings):
    """Preferences, concepts, pending questions, personal rewrite rules, the online index's personal
    layer and personal mining: after "forget everything" none holds anything learned about alice, and
    bob's are untouched."""
    settings.MINE_PERSONAL_MIN_SUPPORT = 1
    _teach(alice)
    _teach(bob)
    session = None
    for i, text in enumerate(["turn on the kitchen lights", "is it on", "turn off the kitchen lights"]):
        session = handle_turn(alice, text=text, session=session, now=timezone.now() - timedelta(minutes=5 - i)).session
    Turn.objects.filter(user=alice).update(defect_probability=0.05)
    _infer_jazz(alice, settings)
    _infer_jazz(alice, settings)  # two versions of the preference model: a rollback must not bring hers back
    assert InferredPreference.objects.filter(user=alice).values("model_version").distinct().count() == 2
    before = build_entries()
    assert before.by_user.get(alice.pk), "alice's good turns are her personal layer"

    response = _client(alice).post("/me/forget-everything/", {"confirm": "forget everything"})
    assert response.status_code == 302 and response["Location"] == "/me/?forgot=1"

    assert not Preference.objects.filter(user=alice).exists()
    assert not Concept.objects.filter(user=alice).exists()
    assert not PendingQuestion.objects.filter(user=alice).exists()
    assert not RewriteRule.objects.filter(user=alice).exists()
    assert not InferredPreference.objects.filter(user=alice).exists()
    assert Erasure.objects.filter(user=alice).exists()
    train_preference_model(lambda fraction, message: None)
    assert not InferredPreference.objects.filter(user=alice).exists()  # what she said before is not learned again
    after = build_entries()
    assert not after.by_user.get(alice.pk) and alice.pk not in after.personal_bad
    occurrences = collect()
    assert set(Turn.objects.filter(user=alice).values_list("session_id", flat=True)) <= occurrences.forgotten_sessions
    # Bob keeps what he taught.
    assert Preference.objects.filter(user=bob).exists() and Concept.objects.filter(user=bob).exists()
    assert RewriteRule.objects.filter(user=bob).exists()
    # The page says so, and what alice says from now on is hers to teach again.
    assert "forgotten everything" in _client(alice).get("/me/?forgot=1").content.decode()


def test_a_preference_is_changed_on_the_page_as_if_it_had_been_said(alice):
    items = _teach(alice)
    client = _client(alice)
    response = client.post(
        f"/me/preference/{items['preference'].pk}/change/", {"value": "the lakers"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "Los Angeles Lakers" in response.content.decode()
    assert Preference.objects.get(user=alice).value == "Los Angeles Lakers"
    refused = client.post(f"/me/preference/{items['preference'].pk}/change/", {"value": "<b>blorgons</b>"})
    assert refused.status_code == 400 and "I don&#x27;t know a team called" in refused.content.decode()
    assert Preference.objects.get(user=alice).value == "Los Angeles Lakers"  # nothing stored half-way


def test_changing_someone_elses_preference_is_not_found(alice, bob):
    items = _teach(alice)
    response = _client(bob).post(f"/me/preference/{items['preference'].pk}/change/", {"value": "the lakers"})
    assert response.status_code == 404
    assert Preference.objects.get(user=alice).value == "Golden State Warriors"


def _infer_jazz(user, settings) -> None:
    """Three "play some jazz" turns, then the preference model learns from them."""
    import tempfile

    settings.MODEL_DIR = tempfile.mkdtemp(prefix="preference-models-")
    for minute in range(3):
        handle_turn(user, text="play some jazz", now=timezone.now() - timedelta(minutes=10 - minute))
    train_preference_model(lambda fraction, message: None)


def test_an_inferred_preference_shows_the_requests_behind_it_and_can_be_kept(alice, nlu_model, settings):
    _infer_jazz(alice, settings)
    page = _client(alice).get("/me/").content.decode()
    assert "What I've noticed" in page and "Inferred" in page and "“play some jazz”" in page
    inferred = InferredPreference.objects.get(user=alice, kind="genre")
    data = json.loads(_client(alice).get("/me/export.json").content)
    assert [(i["kind"], i["value"]) for i in data["inferred_preferences"]] == [("genre", "jazz")]
    assert data["inferred_preferences"][0]["because_you_said"][0] == "play some jazz"

    refused = _client(alice).post(f"/me/inferred/{inferred.pk}/change/", {"value": "<script>x</script>"})
    assert refused.status_code == 400 and "<script>x" not in refused.content.decode()
    assert not Preference.objects.filter(user=alice).exists()  # nothing stored half-way
    kept = _client(alice).post(f"/me/inferred/{inferred.pk}/change/", {"value": "jazz"})
    assert kept.status_code == 302
    taught = Preference.objects.get(user=alice, kind="genre")
    assert taught.value == "jazz" and taught.source == Preference.Source.TAUGHT
    assert "What I've noticed" not in _client(alice).get("/me/").content.decode()  # taught wins


def test_an_inferred_preference_is_forgotten_and_not_inferred_again(alice, bob, nlu_model, settings):
    _infer_jazz(alice, settings)
    inferred = InferredPreference.objects.get(user=alice, kind="genre")
    assert _client(bob).post(f"/me/inferred/{inferred.pk}/forget/").status_code == 404  # not his
    assert _client(bob).post(f"/me/inferred/{inferred.pk}/change/", {"value": "rock"}).status_code == 404
    assert _client(alice).post("/me/inferred/999999/forget/").status_code == 404
    response = _client(alice).post(f"/me/inferred/{inferred.pk}/forget/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""
    assert ForgottenPreference.objects.filter(user=alice, kind="genre").exists()
    train_preference_model(lambda fraction, message: None)
    assert not InferredPreference.objects.filter(user=alice, kind="genre").exists()
