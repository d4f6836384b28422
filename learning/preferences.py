"""Preference models: what each user likes, per kind (genre, artist, team, cuisine, units, room),
learned from what they taught and from how they use the assistant.

Evidence, read from the feedback store (never from anyone's ground truth):

  taught      a Preference the user taught ("I'm an Arsenal fan"): PREFERENCE_TAUGHT_WEIGHT
  asked       a request that named the value and was carried out ("play jazz", "how did Leeds
              do?", "find a Thai restaurant", "…in Fahrenheit", the lights of a room from a
              device with no room): +1
  corrected   a value asked for within CORRECTION_SECONDS of a request that lacked it ("play some
              music", then "play jazz"): +CORRECTION_WEIGHT. What people say right after an
              underspecified request is what that request should have done, which is exactly
              what a preference is for; and the value the assistant had chosen instead gets -1
  served      a value the assistant chose for an underspecified request and nobody corrected:
              +0.5 when the user let it be (no barge-in, rephrase, thumbs down, or likely defect),
              but only for a value from their own preference: letting the global prior's guess be
              says little, and counting it would let the prior feed itself. A served value that
              was cut short but not corrected counts for nothing: the request itself was often
              misunderstood ("play the two towers" answered with some jazz), which says nothing
              about jazz

Each piece of evidence is halved every half-life before the user's newest evidence: tastes fade as
newer behaviour comes in, not while someone is away (and a replayed history, such as the simulator's
days, decays as it did then). For user u and kind k, with s(v) the decayed
(non-negative) score of value v and S their sum, the posterior is

    P(v) = (alpha * prior_k(v) + s(v)) / (alpha + S)

where prior_k is the global prior: the share of users whose most likely value is v, counting only
values PREFERENCE_PRIOR_MIN_USERS distinct people share (a prior names nobody). The half-life and
alpha are chosen on held-out requests: each (user, kind)'s last correction of an underspecified
request (else their last request that named a value) is predicted from the evidence before it (mean
log-likelihood; top-1 accuracy reported).

The artifact (kind "preference" in the registry) holds the priors and the chosen parameters; each
user's distribution is a teaching.models.InferredPreference row tagged with the version, so the
registry's promotion or rollback swaps them all at once. Users' evidence from before they had
everything (or one kind) forgotten is skipped.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

from assistant.artifacts import write_artifact
from assistant.models import ModelVersion
from assistant.skills.liking import FORMAT, PREFERENCE_MODELS, PRIOR
from feedback.models import Rephrase, Turn
from feedback.reactions import Reactions
from learning.registry import Decision, register_candidate
from teaching.models import ForgottenPreference, InferredPreference, Preference
from teaching.privacy import erasures

log = logging.getLogger(__name__)

Kind = Preference.Kind
ASKED_WEIGHT = 1.0
CORRECTION_WEIGHT = 3.0  # a value asked for right after a request that lacked it: what "some music" should have been
CORRECTION_SECONDS = 120  # how soon after the underspecified request that is
LET_BE_WEIGHT = 0.5
CUT_SHORT_WEIGHT = -1.0
DEFECT_AT = 0.5  # a served turn the defect model scores at least this was not liked
MAX_TURNS = 500_000  # the most recent turns with a value the model reads
MIN_HOLDOUT = 20  # held-out requests needed to compare versions
KEEP_VERSIONS = 3  # versions whose rows are kept (the active one and those a rollback could reach)
TOP_VALUES = 5  # of a distribution, stored on its row
EVIDENCE_TURNS = 10  # turn ids stored on a row
LIGHTS = ("iot_hue_lighton", "iot_hue_lightoff", "iot_hue_lightdim", "iot_hue_lightup", "iot_hue_lightchange")
# The requests a preference answers when they lack its value, and the kinds they can lack.
KINDS_OF_INTENT: dict[str, tuple[str, ...]] = {
    "play_music": (Kind.GENRE, Kind.ARTIST),
    "sports_query": (Kind.TEAM,),
    "restaurant_query": (Kind.CUISINE,),
    "weather_query": (Kind.UNITS,),
    **dict.fromkeys(LIGHTS, (Kind.ROOM,)),
}


@dataclass(frozen=True)
class Evidence:
    user_id: int
    kind: str
    value: str
    weight: float  # signed, before decay
    at: datetime
    turn_id: int | None  # None: a taught preference
    asked: bool  # the user named the value (a held-out target can only be one of these)


@dataclass(frozen=True)
class Params:
    half_life_days: float
    prior_strength: float

    def as_dict(self) -> dict[str, float]:
        return {"half_life_days": self.half_life_days, "prior_strength": self.prior_strength}


# --- evidence ---------------------------------------------------------------------------


def values_in(action: dict | None, context: dict | None) -> list[tuple[str, str, bool]]:
    """(kind, value, asked) of what a carried-out action says about its user's preferences.

    `asked` is False for a value the assistant chose from a preference (params "preference")."""
    if not action:
        return []
    params = action.get("params") or {}
    asked = not params.get("preference")
    intent = action.get("intent")
    found: list[tuple[str, str, bool]] = []
    if intent == "play_music":
        for kind, key in ((Kind.GENRE, "genre"), (Kind.ARTIST, "artist")):
            if params.get(key):
                found.append((kind, str(params[key]).lower(), asked))
    elif intent == "sports_query" and params.get("team"):
        found.append((Kind.TEAM, str(params["team"]), asked))
    elif intent == "restaurant_query" and params.get("cuisine"):
        found.append((Kind.CUISINE, str(params["cuisine"]), asked))
    elif intent == "weather_query" and (params.get("units_said") or params.get("preference")):
        found.append((Kind.UNITS, str(params.get("units") or "celsius"), asked))
    elif intent in LIGHTS and params.get("room") not in (None, "all") and not (context or {}).get("room"):
        # Only a device that does not know its room says something about the user's room.
        found.append((Kind.ROOM, str(params["room"]), asked))
    return found


def collect_evidence(progress: Callable[[float, str], None] | None = None) -> list[Evidence]:
    """Every piece of evidence in the store, oldest first, without what users had forgotten."""
    erased = erasures()
    forgotten = {(u, k): at for u, k, at in ForgottenPreference.objects.values_list("user_id", "kind", "forgotten_at")}

    def kept(user_id: int, kind: str, at: datetime) -> bool:
        since = max(filter(None, (erased.get(user_id), forgotten.get((user_id, kind)))), default=None)
        return since is None or at >= since

    # Turns the NLU or the skill placed among the requests a preference answers, the failed ones too
    # ("how did my team do?" -> "Which team?" is an underspecified request the next turn may correct).
    rows = list(
        Turn.objects.filter(Q(intent__in=KINDS_OF_INTENT) | Q(action__intent__in=KINDS_OF_INTENT))
        .order_by("-id")
        .values_list("id", "user_id", "created_at", "intent", "status", "action", "context", "defect_probability")[
            :MAX_TURNS
        ]
    )
    rows.sort(key=lambda r: (r[1], r[2], r[0]))  # each user's turns in order
    served_ids = [r[0] for r in rows if ((r[5] or {}).get("params") or {}).get("preference")]
    disliked = _disliked(served_ids, {r[0]: r[7] for r in rows})
    window = timedelta(seconds=CORRECTION_SECONDS)
    corrections: set[tuple[int, str]] = set()  # (turn id, kind): a value asked for right after a request lacking it
    # What each carried-out turn says, read once: the corrections below look ahead at the next turns' values.
    values = [values_in(r[5], r[6]) if r[4] == Turn.Status.OK else [] for r in rows]
    evidence: list[Evidence] = []
    for at_row, (turn_id, user_id, at, intent, _, action, _, _) in enumerate(rows):
        found = values[at_row]
        said = {kind for kind, _, asked in found if asked}
        served = {kind: value for kind, value, asked in found if not asked}
        from_prior = ((action or {}).get("params") or {}).get("preference") == PRIOR
        for kind in KINDS_OF_INTENT.get((action or {}).get("intent") or intent, ()):
            if kind in said or not kept(user_id, kind, at):
                continue
            # An underspecified request: did the user's next turns correct it ("play jazz")?
            correction = _correction(rows, values, at_row, kind, window)
            if correction is not None:
                corrections.add((correction[0], kind))
                if kind in served and served[kind] != correction[1]:
                    evidence.append(Evidence(user_id, kind, served[kind], CUT_SHORT_WEIGHT, at, turn_id, False))
            elif kind in served and turn_id not in disliked and not from_prior:
                evidence.append(Evidence(user_id, kind, served[kind], LET_BE_WEIGHT, at, turn_id, False))
        for kind, value, asked in found:
            if asked and kept(user_id, kind, at):
                weight = CORRECTION_WEIGHT if (turn_id, kind) in corrections else ASKED_WEIGHT
                evidence.append(Evidence(user_id, kind, value, weight, at, turn_id, True))
    for user_id, kind, value, at in Preference.objects.filter(source=Preference.Source.TAUGHT).values_list(
        "user_id", "kind", "value", "updated_at"
    ):
        if kind != Kind.NAME and kept(user_id, kind, at):
            weight = float(settings.PREFERENCE_TAUGHT_WEIGHT)
            evidence.append(Evidence(user_id, kind, value.lower(), weight, at, None, False))
    evidence.sort(key=lambda e: (e.at, e.turn_id or 0))
    if progress:
        progress(0.2, f"{len(evidence)} pieces of evidence from {len(rows)} turns")
    return evidence


def _correction(
    rows: list[tuple], values: list[list[tuple[str, str, bool]]], at_row: int, kind: str, window: timedelta
) -> tuple[int, str] | None:
    """(turn id, value) of the first value of `kind` the same user asked for within `window` after the
    turn at `at_row` (rows: each user's turns in order; values: what each says, values_in())."""
    user_id, at = rows[at_row][1], rows[at_row][2]
    for later in range(at_row + 1, len(rows)):
        if rows[later][1] != user_id or rows[later][2] - at > window:
            return None
        for k, value, asked in values[later]:
            if k == kind and asked:
                return rows[later][0], value
    return None


def _disliked(turn_ids: list[int], defect: dict[int, float | None]) -> set[int]:
    """The served turns the user did not like: cut short, rephrased, thumbs down, or a likely defect."""
    if not turn_ids:
        return set()
    bad = {t for t in turn_ids if (defect.get(t) or 0.0) >= DEFECT_AT}
    reacted = Reactions.of(turn_ids)
    bad |= reacted.barged | reacted.down
    bad |= set(Rephrase.objects.filter(first_id__in=turn_ids).values_list("first_id", flat=True))
    return bad


# --- the model ----------------------------------------------------------------------------


def scores(evidence: Iterable[Evidence], now: datetime, half_life_days: float) -> dict[str, float]:
    """Decayed score per value (negative totals count as nothing)."""
    total: dict[str, float] = defaultdict(float)
    for e in evidence:
        age_days = max((now - e.at).total_seconds(), 0.0) / 86_400.0
        total[e.value] += e.weight * 0.5 ** (age_days / half_life_days)
    return {v: s for v, s in total.items() if s > 0}


def posterior(score: dict[str, float], prior: dict[str, float], strength: float) -> dict[str, float]:
    mass = sum(score.values())
    values = set(score) | set(prior)
    if not values:
        return {}
    return {v: (strength * prior.get(v, 0.0) + score.get(v, 0.0)) / (strength + mass) for v in values}


def top(distribution: dict[str, float]) -> tuple[str, float] | None:
    if not distribution:
        return None
    best = max(sorted(distribution), key=lambda v: distribution[v])
    return best, distribution[best]


def global_priors(by_user_kind: dict[tuple[int, str], dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per kind, the share of users whose highest-scoring value is each value, counting only values
    at least PREFERENCE_PRIOR_MIN_USERS people share."""
    favourites: dict[str, Counter] = defaultdict(Counter)
    for (_, kind), score in by_user_kind.items():
        if best := top(score):
            favourites[kind][best[0]] += 1
    priors: dict[str, dict[str, float]] = {}
    for kind, counts in favourites.items():
        shared = {v: c for v, c in counts.items() if c >= settings.PREFERENCE_PRIOR_MIN_USERS}
        if shared:
            n = sum(shared.values())
            priors[kind] = {v: round(c / n, 6) for v, c in sorted(shared.items())}
    return priors


def _grouped(evidence: list[Evidence]) -> dict[tuple[int, str], list[Evidence]]:
    grouped: dict[tuple[int, str], list[Evidence]] = defaultdict(list)
    for e in evidence:
        grouped[(e.user_id, e.kind)].append(e)
    return grouped


def evaluate(evidence: list[Evidence], params: Params, *, prior_only: bool = False) -> dict[str, Any]:
    """Predict each (user, kind)'s last correction of an underspecified request (what "play some
    music" should have played), else their last request that named a value, from the evidence before
    it, where there is some (`prior_only`: from the global prior alone, the baseline a new user gets)."""
    grouped = _grouped(evidence)
    targets = {}
    for key, items in grouped.items():
        asked = [i for i, e in enumerate(items) if e.asked and e.weight > 0]
        corrections = [i for i in asked if items[i].weight >= CORRECTION_WEIGHT]
        if asked and (corrections or asked)[-1] > 0:  # something of that kind came before it to learn from
            targets[key] = (corrections or asked)[-1]
    # The priors come from what came before the targets, so a target never informs its own prior.
    before = {}
    for key, items in grouped.items():
        seen = items[: targets.get(key, len(items))]
        if seen:
            before[key] = scores(seen, seen[-1].at, params.half_life_days)
    priors = global_priors(before)
    hits, log_likelihood = 0, 0.0
    for key, at in targets.items():
        items = grouped[key]
        target = items[at]
        score = {} if prior_only else scores(items[:at], target.at, params.half_life_days)
        distribution = posterior(score, priors.get(key[1], {}), params.prior_strength)
        best = top(distribution)
        hits += best is not None and best[0] == target.value
        log_likelihood += math.log(max(distribution.get(target.value, 0.0), 1e-3))
    n = len(targets)
    return {
        "n": n,
        "accuracy": round(hits / n, 4) if n else None,
        "log_loss": round(-log_likelihood / n, 4) if n else None,
    }


def choose_params(evidence: list[Evidence]) -> tuple[Params, dict[str, Any], list[dict[str, Any]]]:
    """The half-life and prior strength with the best held-out log-likelihood (then accuracy)."""
    grid = []
    for half_life in settings.PREFERENCE_HALF_LIVES_DAYS:
        for strength in settings.PREFERENCE_PRIOR_STRENGTHS:
            params = Params(float(half_life), float(strength))
            grid.append((params, evaluate(evidence, params)))
    scored = [(p, m) for p, m in grid if m["n"]]
    if not scored:
        middle = grid[len(grid) // 2]
        return middle[0], middle[1], [{**p.as_dict(), **m} for p, m in grid]
    best = min(scored, key=lambda pm: (pm[1]["log_loss"], -pm[1]["accuracy"], pm[0].half_life_days))
    return best[0], best[1], [{**p.as_dict(), **m} for p, m in grid]


def fit(evidence: list[Evidence], params: Params) -> tuple[dict, dict]:
    """(priors, {(user, kind): (distribution, weight, evidence turn ids)}) from all the evidence."""
    grouped = _grouped(evidence)
    newest: dict[int, datetime] = {}
    for e in evidence:  # oldest first
        newest[e.user_id] = e.at
    score_by_key = {key: scores(items, newest[key[0]], params.half_life_days) for key, items in grouped.items()}
    priors = global_priors(score_by_key)
    fitted = {}
    for key, score in score_by_key.items():
        if not score:
            continue
        distribution = posterior(score, priors.get(key[1], {}), params.prior_strength)
        best = top(distribution)
        behind = sorted(
            (e for e in grouped[key] if e.turn_id is not None and e.value == best[0] and e.weight > 0),
            key=lambda e: e.at,
            reverse=True,
        )
        fitted[key] = (distribution, sum(score.values()), [e.turn_id for e in behind[:EVIDENCE_TURNS]])
    return priors, fitted


# --- the learning step --------------------------------------------------------------------


def gate(candidate: dict, active: dict | None) -> Decision:
    """Promote unless the active version's parameters predict the same held-out requests better."""
    if active is None:
        return Decision(True, False, "promoted: no active preference model")
    metrics = candidate.get("metrics") or {}
    mine, theirs = metrics.get("holdout") or {}, metrics.get("active_on_holdout") or {}
    if (mine.get("n") or 0) < MIN_HOLDOUT or theirs.get("accuracy") is None:
        return Decision(True, False, f"promoted: fewer than {MIN_HOLDOUT} held-out requests to compare the versions")
    tolerance = float(settings.PREFERENCE_PROMOTION_TOLERANCE)
    if mine["accuracy"] < theirs["accuracy"] - tolerance:
        return Decision(
            False,
            True,
            f"rejected: held-out accuracy {mine['accuracy']} against the active version's {theirs['accuracy']} "
            f"on the same {mine['n']} requests",
            ("accuracy",),
        )
    return Decision(
        True, True, f"promoted: held-out accuracy {mine['accuracy']} (active version: {theirs['accuracy']})"
    )


def train_and_register(progress: Callable[[float, str], None]) -> dict[str, Any]:
    """Fit every user's distributions, write the version's rows and artifact, let the gate decide."""
    evidence = collect_evidence(progress)
    newest = Turn.objects.aggregate(m=Max("id"))["m"] or 0
    params, holdout, grid = choose_params(evidence)
    progress(0.5, f"chose half-life {params.half_life_days} d, prior strength {params.prior_strength}")
    active = PREFERENCE_MODELS.active_version()
    active_params = (active.manifest.get("params") if active is not None else None) or None
    metrics: dict[str, Any] = {
        "holdout": holdout,
        "prior_only_on_holdout": evaluate(evidence, params, prior_only=True),
        "grid": grid,
        "evidence": len(evidence),
        "users": len({e.user_id for e in evidence}),
    }
    if active_params:
        metrics["active_on_holdout"] = evaluate(evidence, Params(**active_params))
    priors, fitted = fit(evidence, params)
    version = f"preference-{datetime.now(UTC):%Y%m%d-%H%M%S}-{newest}-{secrets.token_hex(3)}"
    computed_at = datetime.now(UTC)
    rows = [
        InferredPreference(
            model_version=version,
            user_id=user_id,
            kind=kind,
            value=best[0],
            probability=round(best[1], 4),
            distribution={v: round(p, 4) for v, p in sorted(dist.items(), key=lambda vp: -vp[1])[:TOP_VALUES]},
            evidence=turn_ids,
            weight=round(weight, 4),
            computed_at=computed_at,
        )
        for (user_id, kind), (dist, weight, turn_ids) in fitted.items()
        if (best := top(dist))
    ]
    InferredPreference.objects.bulk_create(rows, batch_size=2000)
    manifest = {
        "format": FORMAT,
        "version": version,
        "params": params.as_dict(),
        "metrics": metrics,
        "users": len({key[0] for key in fitted}),
        "rows": len(rows),
        "trained_on_turns_up_to": newest,
    }
    out = Path(settings.MODEL_DIR) / "preference" / version

    def write_priors(path: Path) -> None:
        path.write_text(json.dumps(priors, sort_keys=True), encoding="utf-8")

    write_artifact(out, manifest, {"priors.json": write_priors})
    row, decision = register_candidate(PREFERENCE_MODELS, out, manifest, gate=gate)
    pruned = prune_rows()
    progress(1.0, f"{version}: {row.status}")
    return {
        "version": version,
        "status": row.status,
        "note": decision.note if decision else "",
        "params": params.as_dict(),
        "holdout": holdout,
        "active_on_holdout": metrics.get("active_on_holdout"),
        "prior_only_on_holdout": metrics["prior_only_on_holdout"],
        "rows": len(rows),
        "pruned_rows": pruned,
    }


def prune_rows() -> int:
    """Delete the rows of versions that are neither active nor among the last promoted ones."""
    kept = list(
        ModelVersion.objects.filter(kind=PREFERENCE_MODELS.name, promoted_at__isnull=False)
        .exclude(status=ModelVersion.Status.REJECTED)
        .order_by("-promoted_at", "-pk")
        .values_list("version", flat=True)[:KEEP_VERSIONS]
    )
    with transaction.atomic():
        return InferredPreference.objects.exclude(model_version__in=kept).delete()[0]
