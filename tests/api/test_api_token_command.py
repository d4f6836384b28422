"""`manage.py create_api_token NAME` prints only a key, and the key works."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from assistant.models import ApiToken, Home


def create_token(name: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", name, stdout=out)
    return out.getvalue()


def test_it_prints_only_the_key(alice):
    printed = create_token("alice")
    assert re.fullmatch(r"[0-9a-f]{40}\n", printed)
    assert ApiToken.objects.get(key=printed.strip()).user == alice


def test_the_key_authenticates(client, alice):
    key = create_token("alice").strip()
    response = client.get("/api/v1/turns/987654321", headers={"Authorization": f"Token {key}"})
    # Authenticated: the turn is unknown (404), not the caller (401).
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_turn"


def test_it_creates_a_missing_user_with_a_home(db):
    key = create_token("dora").strip()
    dora = get_user_model().objects.get(username="dora")
    assert not dora.has_usable_password()
    assert Home.objects.filter(owner=dora).exists()
    assert ApiToken.objects.get(key=key).user == dora


def test_each_call_makes_a_new_key(alice):
    assert create_token("alice") != create_token("alice")
    assert ApiToken.objects.filter(user=alice).count() == 2


@pytest.mark.parametrize("name", ["", "bad name", "<script>", "a" * 151, "nul\x00"])
def test_it_refuses_an_invalid_user_name(db, name):
    with pytest.raises(CommandError):
        create_token(name)
    assert not ApiToken.objects.exists()
