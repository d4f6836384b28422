"""Login throttling (django-axes): many wrong passwords lock the name out, even for the right one."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def attempt(client, password: str):
    return client.post(reverse("login"), {"username": "alice", "password": password})


def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, alice, settings):
    for _ in range(30):
        assert attempt(client, "wrong-password").status_code in (200, 429)
    response = attempt(client, "alice-password-1")
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("chat")).status_code == 302  # still signed out


def test_a_few_mistakes_then_the_right_password_signs_in_and_resets_the_count(client, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "wrong-password").status_code == 200
    assert attempt(client, "alice-password-1").status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):  # the count started again
        assert attempt(client, "wrong-password").status_code == 200
    assert attempt(client, "alice-password-1").status_code == 302


def test_one_name_locked_out_does_not_lock_out_another(client, alice, bob):
    for _ in range(30):
        attempt(client, "wrong-password")
    response = client.post(reverse("login"), {"username": "bob", "password": "bob-password-1"})
    assert response.status_code == 302
