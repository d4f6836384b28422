from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from assistant.checks import check_assistant_settings
from assistant.env import envbool, envfloat, envint


def test_it_passes_with_the_default_settings():
    assert check_assistant_settings(None) == []


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("SPEAKING_RATE_WPS", 0, "assistant.E001"),
        ("MAX_UTTERANCE_CHARS", 0, "assistant.E002"),
        ("NLU_OOS_THRESHOLD", 1.5, "assistant.E003"),
        ("REDIS_URL", "http://example.invalid", "assistant.E004"),
        ("DATABASE_URL", "mysql://x", "assistant.E005"),
        ("TORCH_THREADS", 0, "assistant.E006"),
        ("API_MAX_BODY_BYTES", 10, "assistant.E007"),
        ("WEATHER_PROVIDER", "assistant.world.weather.NoSuchProvider", "assistant.E008"),
        ("MODEL_RECHECK_SECONDS", -1, "assistant.E015"),
        ("SESSION_RESUME_MINUTES", -1, "assistant.E016"),
    ],
)
def test_it_reports_a_bad_setting_by_name(settings, name, value, check_id):
    setattr(settings, name, value)
    assert [e.id for e in check_assistant_settings(None)] == [check_id]


def test_env_helpers_refuse_garbage(monkeypatch):
    monkeypatch.setenv("X_BOOL", "maybe")
    monkeypatch.setenv("X_INT", "ten")
    monkeypatch.setenv("X_FLOAT", "fast")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
        envbool("X_BOOL", True)
    with pytest.raises(ImproperlyConfigured, match="X_INT"):
        envint("X_INT", 1)
    with pytest.raises(ImproperlyConfigured, match="X_FLOAT"):
        envfloat("X_FLOAT", 1.0)


def test_env_helpers_use_defaults_when_unset(monkeypatch):
    monkeypatch.delenv("X_UNSET", raising=False)
    assert envbool("X_UNSET", True) is True
    assert envint("X_UNSET", 3) == 3
