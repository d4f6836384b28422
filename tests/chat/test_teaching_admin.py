"""Staff see what people taught in the admin; a concept several people taught the same way is
offered as a global default (CONCEPT_GLOBAL_MIN_USERS)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from teaching.concepts import common, concept_key
from teaching.models import Concept

pytestmark = pytest.mark.django_db
STEPS = [{"text": "turn off all the lights", "intent": "iot_hue_lightoff", "slots": {"device": "all the lights"}}]


def _concept(username: str, name: str, steps=STEPS) -> Concept:
    user = get_user_model().objects.create_user(username)
    now = timezone.now()
    return Concept.objects.create(
        user=user, name=name, key=concept_key(name), steps=steps, definition="…", created_at=now, updated_at=now
    )


def test_concepts_taught_the_same_way_by_enough_people_are_offered(admin_client, settings):
    settings.CONCEPT_GLOBAL_MIN_USERS = 3
    for name in ("u1", "u2", "u3"):
        _concept(name, "goodnight")
    _concept("u4", "goodnight", steps=[{"text": "close the garage", "intent": "iot_garage_close", "slots": {}}])
    _concept("u5", "study mode")
    (found,) = common(3)
    assert (found["name"], found["key"], found["users"], found["steps"]) == ("goodnight", "goodnight", 3, STEPS)
    page = admin_client.get("/admin/teaching/concept/?shared=yes").content.decode()
    assert page.count("goodnight") >= 3 and "study mode" not in page


@pytest.mark.parametrize("model", ["preference", "concept", "pendingquestion", "erasure"])
def test_the_teaching_admin_pages_load(admin_client, model):
    assert admin_client.get(f"/admin/teaching/{model}/").status_code == 200


def test_people_who_are_not_staff_are_sent_to_log_in(client, alice):
    client.force_login(alice)
    assert client.get("/admin/teaching/concept/").status_code == 302
