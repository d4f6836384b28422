"""Context in understanding: a re-ranker over the NLU's alternatives that reads the situation.

"Turn it up" is the volume while music plays and the heating when the heating was just
mentioned; "what's the temperature" is the oven's while it is on. The NLU reads the words;
this model (gradient-boosted trees, LightGBM) scores each of its top CONTEXT_CANDIDATES
readings with the NLU's probability and what the turn's context says about that reading:
the device spoken to (screen or not, its room's lights), what is on and playing, the hour,
an alarm that just went off, and the intents of the session's last turns. Its score is the
probability that the reading is the right one, and the best becomes the turn's reading.

The model is the active version of CONTEXT_MODELS, trained for one NLU version
(learning/nlu/context.py) on context-labelled examples (context_seed.py) and the stored
turns that feedback labelled, each with the context it was asked in. It serves only beside
that NLU version: another version's probabilities are not what it learned to weigh.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.utils import timezone

from assistant.artifacts import checked_file, read_manifest
from assistant.intents import ACTIONS
from assistant.registry import ModelKind, ModelUnavailable
from assistant.turns import TurnContext

FORMAT = "nlu-context-lightgbm/1"
MODEL_FILE = "ranker.txt"
CONTEXT_CANDIDATES = 5  # the NLU's best readings the re-ranker chooses among

# What each intent is about: the thing a situation can make likelier ("it" is the heating just
# mentioned, the music playing). Public intents (SLURP's scenario_action) fall under their scenario.
_FAMILY_BY_PREFIX = (
    ("iot_hue_", "lights"),
    ("iot_thermostat", "heating"),
    ("iot_temperature", "temperature"),
    ("iot_oven", "oven"),
    ("iot_tv", "tv"),
    ("iot_garage", "garage"),
    ("iot_wemo", "plug"),
    ("iot_cleaning", "vacuum"),
    ("iot_", "devices"),
    ("play_", "media"),
    ("music_", "media"),
    ("audio_", "media"),
    ("timer_", "timer"),
    ("alarm_", "alarm"),
    ("lists_", "lists"),
    ("weather_", "weather"),
    ("datetime_", "datetime"),
    ("general_", "chitchat"),
    ("dialogue_", "dialogue"),
    ("preference_", "preferences"),
    ("concept_", "concepts"),
)
FAMILIES = (
    "other", "lights", "heating", "temperature", "oven", "tv", "garage", "plug", "vacuum", "devices", "media",
    "timer", "alarm", "lists", "weather", "datetime", "chitchat", "dialogue", "preferences", "concepts",
)  # fmt: skip
_FAMILY_INDEX = {name: i for i, name in enumerate(FAMILIES)}
# What being on or playing says about a family: "turn it off" with the oven on.
_ACTIVE = {
    "lights": "light",
    "oven": "oven",
    "temperature": "oven",
    "tv": "tv",
    "plug": "plug",
    "vacuum": "vacuum",
    "garage": "garage_door",
}
MEDIA_KINDS = ("", "song", "film", "audiobook")

_PRONOUN = re.compile(r"\b(?:it|that|this|them|those|one)\b")

FEATURES = (
    "nlu_probability",
    "nlu_log_probability",
    "nlu_rank",
    "below_best",  # the NLU's best probability minus this one's
    "intent",  # categorical: index into the model's intent list
    "family",  # categorical: index into FAMILIES
    "has_screen",
    "hour",
    "media_playing",
    "media_paused",
    "media_kind",  # categorical: index into MEDIA_KINDS
    "family_active",  # what this reading is about is on (or playing) now
    "family_last",  # the last turn was about the same thing
    "family_recent",  # one of the last turns was
    "last_family",  # categorical: what the last turn was about
    "alarm_minutes_ago",  # NaN: no alarm in the last hour
    "things_on",
    "light_here",
    "carried",  # not among the NLU's best readings: the same action on a thing the situation is about
    "pronoun",  # the words refer to something they do not name ("turn it up")
    "words",
    "in_question",  # what this reading is about is on, playing or was just talked about
    "others_in_question",  # how many other candidates are
    "same_action_as_best",  # does what the NLU's best reading does ("up", "off"…)
)
# The re-ranker's score never falls as the NLU's probability rises (LightGBM monotone constraints).
MONOTONE = {"nlu_probability": 1, "nlu_log_probability": 1, "below_best": -1}
CATEGORICAL = ("intent", "family", "media_kind", "last_family")


def family(intent: str) -> str:
    for prefix, name in _FAMILY_BY_PREFIX:
        if intent.startswith(prefix):
            return name
    return "other"


def situation_of(ctx: TurnContext | dict[str, Any]) -> dict[str, Any]:
    """The fields the re-ranker reads, from a TurnContext or a stored turn's `context` (older turns
    lack some: they read as nothing going on), and `about`: what the situation is about, derived once."""
    data = ctx.as_dict() if isinstance(ctx, TurnContext) else dict(ctx or {})
    now = data.get("now")
    if isinstance(now, str):
        try:
            now = datetime.fromisoformat(now)
        except ValueError:
            now = None
    hour = float("nan")
    if isinstance(now, datetime):
        local = timezone.localtime(now) if timezone.is_aware(now) else now
        hour = local.hour + local.minute / 60
    alarm = data.get("alarm_minutes_ago")
    situation = {
        "has_screen": bool(data.get("has_screen")),
        "hour": hour,
        "media": str(data.get("media") or ""),
        "media_kind": str(data.get("media_kind") or ""),
        "on": tuple(str(x) for x in data.get("on") or ()),
        "recent_intents": tuple(str(x) for x in data.get("recent_intents") or ()),
        "alarm_minutes_ago": float(alarm) if isinstance(alarm, int | float) and not isinstance(alarm, bool) else None,
    }
    situation["about"] = _families_in_question(situation)
    return situation


def _families_in_question(situation: dict[str, Any]) -> frozenset[str]:
    """What the situation is about: the things on or playing, and what the last turns were about."""
    about = {fam for fam, thing in _ACTIVE.items() if thing in situation["on"]}
    if situation["media"]:
        about.add("media")
    about |= {family(i) for i in situation["recent_intents"]}
    if "temperature" in about:
        about.add("heating")  # "what's the temperature?" "21 degrees." "turn it up": the heating
    if situation["alarm_minutes_ago"] is not None:
        about.add("plug")  # the morning's things on plugs: "start brewing" after the alarm is the coffee machine
    return frozenset(about)


def candidates(probs: np.ndarray, intents: list[str], situation: dict[str, Any]) -> list[tuple[str, float]]:
    """The readings the re-ranker chooses among: the NLU's CONTEXT_CANDIDATES best, then the same
    action as the best two on what the situation is about (with the NLU's own probability)."""
    order = probs.argsort()[::-1]
    chosen = [(intents[int(i)], float(probs[int(i)])) for i in order[:CONTEXT_CANDIDATES]]
    about = situation["about"]
    actions = set().union(*(ACTIONS.get(intent, frozenset()) for intent, _ in chosen[:2]))
    if actions and about:
        have = {intent for intent, _ in chosen}
        index = {name: i for i, name in enumerate(intents)}
        for intent, does in ACTIONS.items():
            if intent not in have and intent in index and does & actions and family(intent) in about:
                chosen.append((intent, float(probs[index[intent]])))
    return chosen


def feature_rows(
    text: str, alternatives: list[tuple[str, float]], situation: dict[str, Any], intents: list[str]
) -> np.ndarray:
    """One row of FEATURES per candidate reading (intent, NLU probability) of `text`, as candidates() lists them."""
    index = {name: i for i, name in enumerate(intents)}
    on = set(situation["on"])
    recent = [family(i) for i in situation["recent_intents"]]
    pronoun = float(bool(_PRONOUN.search(text.lower())))
    words = float(len(text.split()))
    about = situation["about"]
    in_question = [family(intent) in about for intent, _ in alternatives]
    best_does = ACTIONS.get(alternatives[0][0], frozenset()) if alternatives else frozenset()
    last = recent[0] if recent else ""
    media_kind = situation["media_kind"]
    alarm = situation["alarm_minutes_ago"]
    # The NLU's probabilities to four places: the encoder's last float digits vary with how texts were
    # batched, and trees would split on that noise (a rerun of the same turns must read them the same).
    best = round(alternatives[0][1], 4) if alternatives else 0.0
    rows = []
    for rank, (intent, probability) in enumerate(alternatives):
        probability = round(probability, 4)
        fam = family(intent)
        active = (fam == "media" and bool(situation["media"])) or _ACTIVE.get(fam, "") in on
        rows.append(
            [
                probability,
                math.log(probability + 1e-6),
                rank,
                best - probability,
                index.get(intent, len(intents)),
                _FAMILY_INDEX[fam],
                float(situation["has_screen"]),
                situation["hour"],
                float(situation["media"] == "playing"),
                float(situation["media"] == "paused"),
                MEDIA_KINDS.index(media_kind) if media_kind in MEDIA_KINDS else len(MEDIA_KINDS),
                float(active),
                float(bool(last) and fam == last),
                float(fam in recent),
                _FAMILY_INDEX.get(last, len(FAMILIES)) if last else len(FAMILIES) + 1,
                float("nan") if alarm is None else alarm,
                float(len(on - {"light_here"})),
                float("light_here" in on),
                float(rank >= CONTEXT_CANDIDATES),
                pronoun,
                words,
                float(in_question[rank]),
                float(sum(in_question) - in_question[rank]),
                float(bool(ACTIONS.get(intent, frozenset()) & best_does)),
            ]
        )
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def choose(readings: list[tuple[str, float]], scores: np.ndarray, situation: dict[str, Any]) -> list[tuple[str, float]]:
    """The readings (candidates(), the NLU's best first) ordered by the re-ranker's `scores`, the first
    with the confidence the turn is served with.

    The NLU's own reading is worth the larger of its probability and the re-ranker's score (on words
    that say all, the NLU's calibrated probability is the better judge). Another reading wins only with a
    higher score, and only if it is about what the situation is about (on, playing, just talked about):
    "turn it up" may become the heating after the heating was mentioned, but "add eggs to my list" never
    becomes anything else because music plays."""
    nlu_intent, nlu_probability = readings[0]
    about = situation["about"]
    valued = [
        (intent, max(float(score), nlu_probability) if intent == nlu_intent else float(score))
        for (intent, _), score in zip(readings, scores, strict=True)
    ]
    ranked = sorted(valued, key=lambda pair: -pair[1])
    if ranked[0][0] != nlu_intent and family(ranked[0][0]) not in about:
        ranked.sort(key=lambda pair: pair[0] != nlu_intent)  # stable: the NLU's reading first, the rest in order
    return ranked


class ContextRanker:
    """A loaded re-ranker: `rank` is thread-safe (LightGBM's predict on a read-only booster)."""

    def __init__(self, manifest: dict, booster) -> None:
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.nlu_version: str = manifest["nlu_version"]
        self.intents: list[str] = list(manifest["intents"])
        self.booster = booster

    def scores(self, text: str, readings: list[tuple[str, float]], situation: dict[str, Any]) -> np.ndarray:
        """The probability that each reading (candidates()) is the right one in this situation."""
        return self.booster.predict(feature_rows(text, readings, situation, self.intents), num_threads=1)

    def rank(self, text: str, probs: np.ndarray, intents: list[str], situation: dict[str, Any]):
        """The NLU's readings of `text` (its intent probabilities `probs`) as choose() orders them here."""
        readings = candidates(probs, intents, situation)
        return choose(readings, self.scores(text, readings, situation), situation)


def load_ranker(path: Path) -> ContextRanker:
    import lightgbm

    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} artifact")
    if list(manifest.get("features") or []) != list(FEATURES):
        raise ValueError(f"{path} was trained on other features than this code computes")
    for key in ("nlu_version", "intents"):
        if key not in manifest:
            raise ValueError(f"manifest in {path} lacks {key!r}")
    booster = lightgbm.Booster(model_file=str(checked_file(path, manifest, MODEL_FILE)))
    return ContextRanker(manifest, booster)


CONTEXT_MODELS = ModelKind(
    "nlu_context", load_ranker, label="context re-ranker", hint="run `python manage.py train_nlu --context`"
)


def active_for(nlu_version: str):
    """The active re-ranker's registry row if it was trained for `nlu_version`, else None (no weights read)."""
    row = CONTEXT_MODELS.active_artifact()
    return row if row is not None and row.manifest.get("nlu_version") == nlu_version else None


def serving_ranker(nlu_version: str) -> ContextRanker | None:
    """The active re-ranker, if it was trained for this NLU version."""
    try:
        ranker = CONTEXT_MODELS.model()
    except ModelUnavailable:
        return None
    return ranker if ranker.nlu_version == nlu_version else None
