"""Token authentication for the JSON API: header `Authorization: Token <key>`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from assistant.models import ApiToken

# Recording every use would turn each read into a write; once a minute is enough to see a token is alive.
TOUCH_EVERY = timedelta(minutes=1)
_KEY_CHARS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class AuthFailure:
    code: str
    message: str


def authenticate(request: HttpRequest) -> AbstractBaseUser | AuthFailure:
    """The active user whose token the request carries, or why there is none."""
    header = request.headers.get("Authorization", "")
    if not header:
        return AuthFailure("not_authenticated", "Send the header `Authorization: Token <key>`.")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "token" or not key:
        return AuthFailure("not_authenticated", "The Authorization header must be `Token <key>`.")
    # Keys are 40 hex digits; checking the shape first keeps junk (NUL bytes, megabytes) away from the query.
    if len(key) != 40 or not set(key) <= _KEY_CHARS:
        return AuthFailure("invalid_token", "Unknown token.")
    token = ApiToken.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AuthFailure("invalid_token", "Unknown token.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
