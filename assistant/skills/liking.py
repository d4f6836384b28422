"""What a user likes, for the skills that serve underspecified requests ("play some music",
"how did my team do?", "find a restaurant", the temperature's units, the lights' room).

    liked(user_id, kind)   the taught preference, else what the active preference model infers

A taught preference (teaching/preferences.py) always wins. Otherwise the registry's active
"preference" version (trained by learning/preferences.py) serves: its rows for the user
(teaching.models.InferredPreference) when the user's posterior is confident enough
(PREFERENCE_INFERRED_MIN_PROBABILITY), else its global prior when most people like the same thing
(PREFERENCE_PRIOR_MIN_PROBABILITY). No model yet: nothing is inferred.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from assistant.artifacts import checked_file, read_manifest
from assistant.registry import ModelKind, ModelUnavailable
from teaching import preferences
from teaching.models import InferredPreference, Preference

FORMAT = "preference-model-1"
TAUGHT, INFERRED = Preference.Source.TAUGHT, Preference.Source.INFERRED
PRIOR = "prior"  # what most people like, for someone the model knows nothing about yet


@dataclass(frozen=True)
class PreferenceModel:
    version: str
    # kind -> {value: P(value)} over the users with evidence (each value backed by several people)
    priors: dict[str, dict[str, float]]

    def prior(self, kind: str) -> tuple[str, float] | None:
        values = self.priors.get(kind) or {}
        if not values:
            return None
        best = max(sorted(values), key=lambda v: values[v])
        return best, values[best]


def load_preference_model(path: Path) -> PreferenceModel:
    manifest = read_manifest(path)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} artifact")
    priors = json.loads(checked_file(path, manifest, "priors.json").read_text(encoding="utf-8"))
    return PreferenceModel(version=manifest["version"], priors=priors)


PREFERENCE_MODELS = ModelKind(
    "preference", load_preference_model, label="preference model", hint="run `python manage.py learn`"
)


@dataclass(frozen=True)
class Liked:
    value: str
    source: str  # TAUGHT, INFERRED (from the user's own evidence) or PRIOR
    probability: float

    @property
    def because(self) -> str:
        """Why this value, as a reply says it."""
        return {TAUGHT: "your favourite", INFERRED: "which you often ask for"}.get(
            self.source, "which many people like"
        )


def inferred(user_id: int) -> list[InferredPreference]:
    """What the active preference model infers about the user with enough confidence, for the kinds
    they did not teach (the "What you've taught me" page, "what do you know about me?")."""
    try:
        model = PREFERENCE_MODELS.model()
    except ModelUnavailable:
        return []
    taught = set(Preference.objects.filter(user_id=user_id).values_list("kind", flat=True))
    rows = InferredPreference.objects.filter(
        model_version=model.version,
        user_id=user_id,
        probability__gte=float(settings.PREFERENCE_INFERRED_MIN_PROBABILITY),
    )
    order = {kind: index for index, kind in enumerate(Preference.Kind.values)}
    return sorted((r for r in rows if r.kind not in taught), key=lambda r: order.get(r.kind, len(order)))


def liked(user_id: int | None, kind: str) -> Liked | None:
    """What the user likes of `kind`: taught, else inferred with enough confidence, else None."""
    if user_id is None:
        return None
    taught = preferences.value(user_id, kind)
    if taught:
        return Liked(taught, TAUGHT, 1.0)
    try:
        model = PREFERENCE_MODELS.model()
    except ModelUnavailable:
        return None
    floor = float(settings.PREFERENCE_INFERRED_MIN_PROBABILITY)
    row = (
        InferredPreference.objects.filter(model_version=model.version, user_id=user_id, kind=kind)
        .values_list("value", "probability")
        .first()
    )
    if row is not None:
        return Liked(row[0], INFERRED, row[1]) if row[1] >= floor else None
    prior = model.prior(kind)  # someone the model knows nothing about yet
    if prior is not None and prior[1] >= float(settings.PREFERENCE_PRIOR_MIN_PROBABILITY):
        return Liked(prior[0], PRIOR, prior[1])
    return None
