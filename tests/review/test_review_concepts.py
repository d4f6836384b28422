"""Staff share a concept several people taught the same way with everyone, and retire it; everyone who has not
taught their own meaning of the name then gets it. Reviewers see the candidates but cannot decide."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from assistant.turns import NluResult
from teaching.concepts import concept_key, invoked
from teaching.models import Concept, SharedConcept
from tests.review.test_review_pages import _client

pytestmark = pytest.mark.django_db
LIGHTS_OFF = [{"text": "turn off all the lights", "intent": "iot_hue_lightoff", "slots": {"device": "all the lights"}}]
GARAGE = [{"text": "close the garage", "intent": "iot_garage_close", "slots": {}}]


def _concept(user, name: str, steps=LIGHTS_OFF) -> Concept:
    now = timezone.now()
    return Concept.objects.create(
        user=user, name=name, key=concept_key(name), steps=steps, definition="…", created_at=now, updated_at=now
    )


def _taught_by_three(name: str = "goodnight") -> None:
    for username in ("t1", "t2", "t3"):
        _concept(get_user_model().objects.create_user(username), name)


def _says(text: str) -> NluResult:
    return NluResult(text=text, intent="out_of_scope", confidence=0.2, slots={})


def test_staff_share_a_commonly_taught_concept_and_others_get_it_until_retired(alice, bob, staff, settings):
    settings.CONCEPT_GLOBAL_MIN_USERS = 3
    _taught_by_three()
    _concept(alice, "goodnight", steps=GARAGE)  # alice's own meaning wins over a shared one
    client = _client(staff)
    page = client.get("/review/concepts/").content.decode()
    assert "“goodnight”" in page and "turn off all the lights" in page and "t1" not in page  # nobody named
    assert invoked(bob.pk, _says("goodnight")) is None
    signature = page.split('name="signature" value="')[1].split('"')[0]
    assert client.post("/review/concepts/share/", {"signature": signature}).status_code == 302
    shared = SharedConcept.objects.get()
    assert (shared.name, shared.teachers, shared.steps, shared.approved_by) == ("goodnight", 3, LIGHTS_OFF, staff)
    assert invoked(bob.pk, _says("goodnight")) == shared
    assert invoked(alice.pk, _says("goodnight")).steps == GARAGE
    again = client.post("/review/concepts/share/", {"signature": signature})
    assert again.status_code == 400 and "already shared" in again.content.decode()
    assert client.post(f"/review/concepts/{shared.pk}/retire/").status_code == 302
    shared.refresh_from_db()
    assert shared.retired_at is not None and shared.retired_by == staff
    assert invoked(bob.pk, _says("goodnight")) is None
    assert "retired by sam" in client.get("/review/concepts/").content.decode()


def test_only_staff_decide_and_bad_requests_are_refused(alice, staff, reviewer, settings):
    settings.CONCEPT_GLOBAL_MIN_USERS = 3
    _taught_by_three("<script>alert(1)</script> mode")
    seen = _client(reviewer).get("/review/concepts/")
    assert seen.status_code == 200 and "<script>alert(1)" not in seen.content.decode()
    assert "Share with everyone" not in seen.content.decode()
    assert _client(reviewer).post("/review/concepts/share/", {"signature": "x"}).status_code == 403
    assert _client(alice).get("/review/concepts/").status_code == 403
    unknown = _client(staff).post("/review/concepts/share/", {"signature": "nope"})
    assert unknown.status_code == 400 and "any more" in unknown.content.decode()
    assert _client(staff).post("/review/concepts/999999/retire/").status_code == 404
    assert _client(staff).get("/review/concepts/share/").status_code == 405
    assert not SharedConcept.objects.exists()


def test_a_shared_concept_runs_through_the_pipeline_for_someone_who_never_taught_it(bob, staff, nlu_model, settings):
    from assistant.pipeline.turn import handle_turn
    from teaching.concepts import approve_shared, common

    settings.CONCEPT_GLOBAL_MIN_USERS = 3
    _taught_by_three()
    approve_shared(common(3)[0]["signature"], staff, timezone.now())
    turn = handle_turn(bob, text="goodnight")
    assert turn.intent == "concept_run" and turn.slots == {"concept": "goodnight"}
    assert turn.status == "ok" and "light" in turn.response.lower()
