"""GET /api/v1/me: what the assistant knows about the caller (taught and inferred), and nobody else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assistant.models import ApiToken
from teaching.models import Preference

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def test_it_answers_what_is_known_about_the_caller_only(client, alice, bob):
    Preference.objects.create(user=alice, kind="genre", value="jazz", said="jazz", created_at=NOON, updated_at=NOON)
    Preference.objects.create(user=bob, kind="genre", value="rock", said="rock", created_at=NOON, updated_at=NOON)
    key = ApiToken.objects.create(user=alice).key
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    data = response.json()
    assert data["user"] == "alice"
    assert [(p["kind"], p["value"], p["source"]) for p in data["preferences"]] == [("genre", "jazz", "taught")]
    assert data["inferred_preferences"] == [] and "turns" not in data


def test_it_needs_a_token_and_a_get(client, alice):
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION="Token nope").status_code == 401
    key = ApiToken.objects.create(user=alice).key
    response = client.post("/api/v1/me", data=b"{}", content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 405 and response.json()["error"]["code"]
