"""System checks: bad settings fail at start with a clear message."""

from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility, deploy=False)
def check_assistant_settings(app_configs, **kwargs) -> list[Error]:
    errors: list[Error] = []
    if settings.SPEAKING_RATE_WPS <= 0 or settings.SPEAKING_RATE_WPS > 50:
        errors.append(Error("SPEAKING_RATE_WPS must be between 0 and 50 words a second.", id="assistant.E001"))
    if not 1 <= settings.MAX_UTTERANCE_CHARS <= 100_000:
        errors.append(Error("MAX_UTTERANCE_CHARS must be between 1 and 100000.", id="assistant.E002"))
    if not 0.0 <= settings.NLU_OOS_THRESHOLD < 1.0:
        errors.append(Error("NLU_OOS_THRESHOLD must be in [0, 1).", id="assistant.E003"))
    if settings.REDIS_URL and urlparse(settings.REDIS_URL).scheme not in ("redis", "rediss", "unix"):
        errors.append(Error(f"REDIS_URL must be a redis:// URL, not {settings.REDIS_URL!r}.", id="assistant.E004"))
    if settings.DATABASE_URL and urlparse(settings.DATABASE_URL).scheme not in (
        "postgres", "postgresql", "sqlite", "pgsql", "postgis",
    ):  # fmt: skip
        errors.append(Error("DATABASE_URL must be a postgres:// or sqlite:// URL.", id="assistant.E005"))
    if settings.TORCH_THREADS < 1:
        errors.append(Error("TORCH_THREADS must be at least 1.", id="assistant.E006"))
    if not 1 <= settings.TURN_THREADS <= 64:
        errors.append(Error("TURN_THREADS must be between 1 and 64.", id="assistant.E009"))
    if settings.API_MAX_BODY_BYTES < 1024:
        errors.append(Error("API_MAX_BODY_BYTES must be at least 1024.", id="assistant.E007"))
    if not 0.0 <= settings.SURVEY_RATE <= 1.0:
        errors.append(Error("SURVEY_RATE must be between 0 and 1.", id="assistant.E012"))
    if settings.MINE_MIN_USERS < 1 or settings.MINE_PERSONAL_MIN_SUPPORT < 1:
        errors.append(Error("MINE_MIN_USERS and MINE_PERSONAL_MIN_SUPPORT must be at least 1.", id="assistant.E013"))
    for name in (
        "MINE_MAX_SOURCE_SUCCESS", "MINE_MIN_TARGET_SUCCESS", "MINE_MIN_PROBABILITY", "MINE_ACTIVE_PROBABILITY",
        "REWRITE_EVIDENCE_WEIGHT", "REWRITE_RETIRE_BELOW",
    ):  # fmt: skip
        if not 0.0 <= getattr(settings, name) <= 1.0:
            errors.append(Error(f"{name} must be between 0 and 1.", id="assistant.E014"))
    if not 0.0 <= settings.MODEL_RECHECK_SECONDS <= 300.0:
        errors.append(Error("MODEL_RECHECK_SECONDS must be between 0 and 300.", id="assistant.E015"))
    if settings.SESSION_RESUME_MINUTES < 0:
        errors.append(Error("SESSION_RESUME_MINUTES must be 0 or more.", id="assistant.E016"))
    if settings.PENDING_QUESTION_MINUTES < 0 or not 0 <= settings.DIALOGUE_MAX_REASKS <= 10:
        errors.append(
            Error("PENDING_QUESTION_MINUTES must be 0 or more, DIALOGUE_MAX_REASKS 0 to 10.", id="assistant.E017")
        )
    if settings.PROMPT_MIN_GAP_TURNS < 1:
        errors.append(Error("PROMPT_MIN_GAP_TURNS must be at least 1.", id="assistant.E017"))
    if settings.CONCEPT_GLOBAL_MIN_USERS < 1:
        errors.append(Error("CONCEPT_GLOBAL_MIN_USERS must be at least 1.", id="assistant.E017"))
    if settings.REVIEW_CLUSTER_DAYS < 1 or settings.REVIEW_TREND_DAYS < 1:
        errors.append(Error("REVIEW_CLUSTER_DAYS and REVIEW_TREND_DAYS must be at least 1.", id="assistant.E017"))
    if settings.PREFERENCE_PRIOR_MIN_USERS < 1 or settings.PREFERENCE_TAUGHT_WEIGHT <= 0:
        errors.append(
            Error(
                "PREFERENCE_PRIOR_MIN_USERS must be at least 1, PREFERENCE_TAUGHT_WEIGHT positive.", id="assistant.E017"
            )
        )
    for name in (
        "DIALOGUE_NEW_REQUEST_CONFIDENCE", "CONFIRM_BELOW_CONFIDENCE", "CONCEPT_STEP_CONFIDENCE", "PROMPT_BELOW_CONFIDENCE",
        "PREFERENCE_INFERRED_MIN_PROBABILITY", "PREFERENCE_PRIOR_MIN_PROBABILITY", "PREFERENCE_PROMOTION_TOLERANCE",
        "REVIEW_DEFECT_AT", "REVIEW_CLUSTER_SIMILARITY",
    ):  # fmt: skip
        if not 0.0 <= getattr(settings, name) <= 1.0:
            errors.append(Error(f"{name} must be between 0 and 1.", id="assistant.E017"))
    if not 1 <= settings.DB_POOL_SIZE <= 200:
        errors.append(Error("DB_POOL_SIZE must be between 1 and 200.", id="assistant.E011"))
    if not settings.DEBUG and settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        errors.append(
            Error(
                "DEBUG is off but SECRET_KEY is the development key: set SECRET_KEY to a long random value "
                "(or DEBUG=true on a development machine).",
                id="assistant.E010",
            )
        )
    try:
        from django.utils.module_loading import import_string

        import_string(settings.WEATHER_PROVIDER)
    except ImportError as exc:
        errors.append(Error(f"WEATHER_PROVIDER cannot be imported: {exc}", id="assistant.E008"))
    return errors
