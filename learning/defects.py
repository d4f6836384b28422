"""The defect model: P(a turn failed its user), stored on every turn for the learners after it.

Nobody has to annotate turns. The model learns from what the product stores:

  answers     the user's thumbs on a turn whose reply asked "Did I answer your question?"
              (a random SURVEY_RATE of turns, assistant/pipeline/turn.py): few, but an
              unbiased sample of how turns go, so they calibrate the model
  self-labels confident reads of how people reacted: a turn was defective when a
              rephrase of it went well or it got a thumbs down; it was fine when it got a
              thumbs up, or its reply was heard to the end with no retry after it
  synthetic   a turn labelled fine, with its reply swapped for another dialogue's, is a
              defect (the reply no longer answers the request)
  reviewers   where staff labelled a turn (review/), their verdict replaces its self-label: a defect
              when they named the stage that failed or read it otherwise, fine when they confirmed it

Two stages, because self-labels are, by construction, a function of the reactions:

  content     P(defect | the turn itself): NLU and ASR confidence, out of scope, errors, the
              rewrite, and how well the reply answers the request (cosine of the two MiniLM
              sentence embeddings). Gradient-boosted trees (scikit-learn), trained on
              self-labels and synthetic swaps. It can judge a turn before anyone reacted.
  reactions   a logistic regression over the content score (as a logit) and what followed:
              barge-in and how early, thumbs, a rephrase and whether it went well, being a
              retry, the gap to the user's next turn. Trained on the self-labels, then
              recalibrated on the survey answers (Platt scaling: a logistic regression over its
              logit) once there are MIN_ANSWERS of them. The self-labels leave out the turns
              whose reactions are unclear (a quick next turn that is no rephrase, a barge-in with
              nothing after it), and those are mostly defects, so a model of the self-labels
              alone says too little; the answers are few but unbiased, and two parameters are
              all they have to fit.

The artifact (kind "defect" in the registry) holds both; a version is promoted when it
is at least as good as the active one on the answers held out from both (log loss), or
when nothing can be compared. Each learning cycle scores the turns since the previous
cycle's and re-scores that cycle's (their reactions may have arrived since).
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max, Min

from assistant.artifacts import read_pickled, version_name, write_artifact
from assistant.nlu.metrics import binary_calibration_error
from assistant.registry import ModelKind
from feedback.labels import reviewed
from feedback.models import Rephrase, Turn
from feedback.reactions import Reactions
from learning.embeddings import embed
from learning.registry import Decision, register_candidate

log = logging.getLogger(__name__)

FORMAT = "defect-model-1"
MIN_ANSWERS = 20  # survey answers (not held out) needed to recalibrate the reaction stage on them
MAX_TRAINING_TURNS = 200_000  # the most recent turns the model learns from
HOLDOUT_SHARE = 0.25  # of the answers (chosen by a hash of the turn id), never trained on: versions are compared there
NO_NEXT_GAP_S = 86_400.0  # "the user's next turn" when there was none yet: a day later
FINE, DEFECT = 0, 1

CONTENT_FEATURES = (
    "nlu_confidence",
    "out_of_scope",
    "error",
    "asr_confidence",
    "typed",
    "rewrite_kept",
    "reply_words",
    "coherence",
)
REACTION_FEATURES = (
    "barged",
    "heard_share",
    "thumbs_down",
    "thumbs_up",
    "rephrased",
    "rephrase_score",
    "rephrase_went_well",
    "is_retry",
    "next_soon",
    "log_next_gap",
)


def _load(path: Path) -> DefectModel:
    manifest, parts = read_pickled(path, FORMAT)
    return DefectModel(
        version=manifest["version"],
        content=parts["content"],
        reactions=parts["reactions"],
        calibration=parts.get("calibration"),  # None in a version from before recalibration
    )


DEFECT_MODELS = ModelKind("defect", _load, label="defect model", hint="run `python manage.py learn`")


# --- what the store says about turns ------------------------------------------------


def defect_or_guess(p: float | None, status: str, *, rephrased: bool = False) -> float:
    """The stored P(defect), or, for a turn no defect model has scored yet, a guess from what is
    plain to see: a turn someone rephrased or that failed outright probably was a defect."""
    if p is not None:
        return p
    if rephrased:
        return 0.8
    return 0.9 if status in (Turn.Status.OUT_OF_SCOPE, Turn.Status.ERROR) else 0.2


@dataclass
class TurnRows:
    """The turns to featurise and everything around them, in arrays (one row per turn)."""

    ids: np.ndarray
    content: np.ndarray  # (n, len(CONTENT_FEATURES))
    reactions: np.ndarray  # (n, len(REACTION_FEATURES))
    self_label: np.ndarray  # FINE, DEFECT or -1 (no confident label)
    answer: np.ndarray  # the survey answer: FINE, DEFECT or -1
    request_vectors: np.ndarray
    reply_vectors: np.ndarray
    intents: list[str]
    reviewed: int = 0  # of the labels, how many are reviewers' verdicts


def _text(row: dict) -> str:
    return (row["asr_text"] or row["raw_text"] or "").strip()


def load_turns(turn_filter: dict[str, Any]) -> TurnRows:
    """Featurise the turns matching `turn_filter` (Turn.objects.filter kwargs).

    What followed a turn is read from the user's later turns, so those are read too.
    """
    fields = (
        "id", "user_id", "created_at", "raw_text", "asr_text", "response", "status", "intent",
        "nlu_confidence", "asr_confidence", "rewrite", "survey_asked", "slots",
    )  # fmt: skip
    rows = list(Turn.objects.filter(**turn_filter).order_by("user_id", "created_at", "id").values(*fields))
    ids = [r["id"] for r in rows]
    n = len(rows)

    # Next turn of the same user (reads beyond the set only for its last turn per user).
    next_gap = np.full(n, NO_NEXT_GAP_S)
    last_of_user: dict[int, int] = {}
    for i, r in enumerate(rows):
        prev = last_of_user.get(r["user_id"])
        if prev is not None:
            next_gap[prev] = (r["created_at"] - rows[prev]["created_at"]).total_seconds()
        last_of_user[r["user_id"]] = i
    for user_id, i in last_of_user.items():
        later = (
            Turn.objects.filter(user_id=user_id, created_at__gt=rows[i]["created_at"])
            .order_by("created_at", "id")
            .values_list("created_at", flat=True)
            .first()
        )
        if later is not None:
            next_gap[i] = (later - rows[i]["created_at"]).total_seconds()

    reacted = Reactions.of(ids)
    barge, thumbs = reacted.barge, reacted.latest
    rephrased_by: dict[int, tuple[int, float]] = {}
    retry_of: dict[int, int] = {}
    for first, second, score in _chunked_values(Rephrase, "first_id", ids, ("first_id", "second_id", "score")):
        rephrased_by[first] = (second, score)
    for first, second, _score in _chunked_values(Rephrase, "second_id", ids, ("first_id", "second_id", "score")):
        retry_of[second] = first
    # How the rephrase itself went: read its own reactions.
    seconds = [s for s, _ in rephrased_by.values()]
    second_reacted = Reactions.of(seconds)
    second_barged, second_down = second_reacted.barged, second_reacted.down
    second_rephrased = {t for (t,) in _chunked_values(Rephrase, "first_id", seconds, ("first_id",))}

    texts = [_text(r) for r in rows]
    replies = [r["response"] or "" for r in rows]
    vectors = embed(texts + replies) if n else {}
    dim = next(iter(vectors.values())).shape[0] if vectors else 384
    request_vectors = np.stack([vectors.get(t, np.zeros(dim, np.float32)) for t in texts]) if n else np.zeros((0, dim))
    reply_vectors = np.stack([vectors.get(t, np.zeros(dim, np.float32)) for t in replies]) if n else np.zeros((0, dim))

    content = np.zeros((n, len(CONTENT_FEATURES)), dtype=np.float32)
    reactions = np.zeros((n, len(REACTION_FEATURES)), dtype=np.float32)
    self_label = np.full(n, -1, dtype=np.int8)
    answer = np.full(n, -1, dtype=np.int8)
    gap_limit = float(settings.REPHRASE_MAX_GAP_S)
    for i, r in enumerate(rows):
        tid = r["id"]
        words = len(replies[i].split())
        content[i] = _content_row(r, words, float(request_vectors[i] @ reply_vectors[i]))
        b = barge.get(tid)
        heard = min(1.0, b[0] / words) if b and words else 1.0
        kind = None if r["survey_asked"] else thumbs.get(tid)  # on a surveyed turn the thumbs are the answer
        second = rephrased_by.get(tid)
        went_well = bool(second) and not (
            second[0] in second_barged or second[0] in second_down or second[0] in second_rephrased
        )
        soon = next_gap[i] < gap_limit
        reactions[i] = (
            float(b is not None),
            heard,
            float(kind == "thumbs_down"),
            float(kind == "thumbs_up"),
            float(second is not None),
            second[1] if second else 0.0,
            float(went_well),
            float(tid in retry_of),
            float(soon),
            math.log1p(max(0.0, min(next_gap[i], NO_NEXT_GAP_S))),
        )
        if r["survey_asked"] and tid in thumbs:
            answer[i] = DEFECT if thumbs[tid] == "thumbs_down" else FINE
        if kind == "thumbs_down" or went_well:
            self_label[i] = DEFECT
        elif kind == "thumbs_up" or (
            b is None and second is None and not soon and r["status"] == Turn.Status.OK and not r["survey_asked"]
        ):
            self_label[i] = FINE
    verdicts = reviewers_verdicts(rows)
    for i, verdict in verdicts.items():
        self_label[i] = verdict
    return TurnRows(
        ids=np.array(ids, dtype=np.int64),
        content=content,
        reactions=reactions,
        self_label=self_label,
        answer=answer,
        request_vectors=request_vectors,
        reply_vectors=reply_vectors,
        intents=[r["intent"] for r in rows],
        reviewed=len(verdicts),
    )


def reviewers_verdicts(rows: list[dict]) -> dict[int, int]:
    """Row index -> what the turn's reviewer label says (feedback.labels.reviewed): DEFECT when it names the
    stage that failed or reads the turn otherwise than the NLU did, FINE when it confirms the reading. It
    overrides the self-label: a person who read the turn knows better than a read of the reactions."""
    index = {r["id"]: i for i, r in enumerate(rows)}
    ids = list(index)
    verdicts = {}
    for start in range(0, len(ids), 5000):
        labels = reviewed().filter(turn_id__in=ids[start : start + 5000])
        for turn_id, intent, slots, failure_point in labels.values_list("turn_id", "intent", "slots", "failure_point"):
            row = rows[index[turn_id]]
            if failure_point:
                verdicts[index[turn_id]] = DEFECT
            elif intent:
                same = intent == row["intent"] and (slots or {}) == (row["slots"] or {})
                verdicts[index[turn_id]] = FINE if same else DEFECT
    return verdicts


def _content_row(r: dict, reply_words: int, coherence: float) -> tuple[float, ...]:
    asr = r["asr_confidence"]
    rewrite = r["rewrite"] or {}
    return (
        float(r["nlu_confidence"] or 0.0),
        float(r["status"] == Turn.Status.OUT_OF_SCOPE),
        float(r["status"] == Turn.Status.ERROR),
        float(asr) if asr is not None else 1.0,
        float(asr is None),
        float(bool(isinstance(rewrite, dict) and rewrite.get("kept"))),
        math.log1p(reply_words),
        coherence,
    )


def _chunked_values(model, field: str, ids: Iterable[int], columns: tuple[str, ...], order=None, size: int = 5000):
    ids = list(ids)
    for start in range(0, len(ids), size):
        qs = model.objects.filter(**{f"{field}__in": ids[start : start + size]})
        if order:
            qs = qs.order_by(*order)
        yield from qs.values_list(*columns)


# --- the model ----------------------------------------------------------------------


@dataclass
class DefectModel:
    version: str
    content: Any  # sklearn classifier over CONTENT_FEATURES
    reactions: Any  # sklearn LogisticRegression over [content logit] + REACTION_FEATURES
    calibration: Any = None  # sklearn LogisticRegression over the reaction stage's logit (None: too few answers)

    def content_probability(self, content: np.ndarray) -> np.ndarray:
        return self.content.predict_proba(content)[:, 1] if len(content) else np.zeros(0)

    def probability(self, content: np.ndarray, reactions: np.ndarray) -> np.ndarray:
        if not len(content):
            return np.zeros(0)
        p = self.reactions.predict_proba(_reaction_inputs(self.content_probability(content), reactions))[:, 1]
        return self.calibration.predict_proba(_logit(p)[:, None])[:, 1] if self.calibration is not None else p


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _reaction_inputs(content_p: np.ndarray, reactions: np.ndarray) -> np.ndarray:
    return np.column_stack([_logit(content_p), reactions])


def _synthetic_swaps(rows: TurnRows, rng: np.random.Generator) -> np.ndarray:
    """Content rows of fine turns whose reply was swapped for that of a turn with another intent."""
    fine = np.flatnonzero(rows.self_label == FINE)
    if len(fine) < 2:
        return np.zeros((0, len(CONTENT_FEATURES)), dtype=np.float32)
    intents = np.array(rows.intents)
    out = []
    donors = rng.permutation(len(rows.ids))
    for k, i in enumerate(fine):
        j = donors[k % len(donors)]
        if intents[j] == intents[i]:
            continue
        row = rows.content[i].copy()
        row[CONTENT_FEATURES.index("coherence")] = float(rows.request_vectors[i] @ rows.reply_vectors[j])
        out.append(row)
    return np.array(out, dtype=np.float32).reshape(-1, len(CONTENT_FEATURES))


def held_out(ids: np.ndarray) -> np.ndarray:
    """Which turns' answers no version trains on (a stable hash of the id: the same for every version)."""
    return np.array(
        [int.from_bytes(hashlib.sha256(f"defect-holdout|{i}".encode()).digest()[:4], "big") / 2**32 < HOLDOUT_SHARE
         for i in ids.tolist()],
        dtype=bool,
    )  # fmt: skip


def fit(rows: TurnRows, seed: int = 0) -> tuple[DefectModel, dict[str, Any]]:
    """Train both stages on `rows`; the metrics say what it was trained and checked on."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(rows.self_label >= 0)
    swaps = _synthetic_swaps(rows, rng)
    x_content = np.vstack([rows.content[labelled], swaps])
    y_content = np.concatenate([rows.self_label[labelled], np.full(len(swaps), DEFECT)])
    if len(set(y_content.tolist())) < 2:
        raise NotEnoughEvidence("the self-labels hold only one class so far")
    content = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=15, random_state=seed)
    content.fit(x_content, y_content)

    answered = rows.answer >= 0
    holdout = np.flatnonzero(answered & held_out(rows.ids))
    train_answers = np.flatnonzero(answered & ~held_out(rows.ids))
    p_content = content.predict_proba(rows.content)[:, 1] if len(rows.ids) else np.zeros(0)
    reactions = LogisticRegression(C=1.0, max_iter=1000)
    reactions.fit(_reaction_inputs(p_content[labelled], rows.reactions[labelled]), rows.self_label[labelled])
    calibration = None
    if len(train_answers) >= MIN_ANSWERS and len(set(rows.answer[train_answers].tolist())) == 2:
        said = reactions.predict_proba(_reaction_inputs(p_content[train_answers], rows.reactions[train_answers]))[:, 1]
        calibration = LogisticRegression(C=1.0, max_iter=1000).fit(_logit(said)[:, None], rows.answer[train_answers])
    model = DefectModel(version="", content=content, reactions=reactions, calibration=calibration)
    metrics: dict[str, Any] = {
        "calibrated_on": f"{len(train_answers)} survey answers" if calibration else "nothing (too few survey answers)",
        "self_labels": {"defect": int((rows.self_label == DEFECT).sum()), "fine": int((rows.self_label == FINE).sum())},
        "reviewed": rows.reviewed,
        "synthetic_swaps": len(swaps),
        "answers": {"train": len(train_answers), "holdout": len(holdout)},
        "turns": len(rows.ids),
    }
    if len(holdout):
        metrics["holdout"] = score(model, rows, holdout)
    return model, metrics


def score(model: DefectModel, rows: TurnRows, idx: np.ndarray) -> dict[str, float | None]:
    """Log loss, AUC and calibration error on the survey answers at `idx`."""
    from sklearn.metrics import log_loss, roc_auc_score

    y = rows.answer[idx]
    p = np.clip(model.probability(rows.content[idx], rows.reactions[idx]), 1e-6, 1 - 1e-6)
    both = len(set(y.tolist())) == 2
    return {
        "n": len(idx),
        "log_loss": round(float(log_loss(y, p, labels=[0, 1])), 4),
        "auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "ece": round(binary_calibration_error(y, p), 4),
    }


class NotEnoughEvidence(ValueError):
    """Nothing to learn from yet (no turns, or labels of one class only)."""


def gate(candidate: dict, active: dict | None) -> Decision:
    """Promote unless the active version does better on the same held-out answers (log loss)."""
    if active is None:
        return Decision(True, False, "promoted: no active defect model")
    mine = (candidate.get("metrics") or {}).get("holdout")
    theirs_by_mine = (candidate.get("metrics") or {}).get("active_on_holdout")
    if not mine or not theirs_by_mine:
        return Decision(True, False, "promoted: too few held-out survey answers to compare the versions")
    tolerance = float(settings.DEFECT_PROMOTION_TOLERANCE)
    if mine["log_loss"] > theirs_by_mine["log_loss"] + tolerance:
        return Decision(
            False,
            True,
            f"rejected: held-out log loss {mine['log_loss']} against the active version's "
            f"{theirs_by_mine['log_loss']} on the same {mine['n']} answers",
            ("log_loss",),
        )
    return Decision(
        True, True, f"promoted: held-out log loss {mine['log_loss']} (active version: {theirs_by_mine['log_loss']})"
    )


# --- the learning step --------------------------------------------------------------


def train_and_register(progress: Callable[[float, str], None], seed: int = 0) -> dict[str, Any]:
    """Train on the most recent turns, write the artifact, let the gate decide. Raises NotEnoughEvidence."""
    started = time.monotonic()
    newest = Turn.objects.aggregate(m=Max("id"))["m"]
    if newest is None:
        raise NotEnoughEvidence("no turns are stored yet")
    floor = (
        Turn.objects.filter(id__lte=newest)
        .order_by("-id")
        .values_list("id", flat=True)[MAX_TRAINING_TURNS - 1 : MAX_TRAINING_TURNS]
        .first()
    )
    progress(0.05, "reading turns")
    rows = load_turns({"id__gte": floor or 0, "id__lte": newest})
    progress(0.4, f"training on {len(rows.ids)} turns")
    model, metrics = fit(rows, seed=seed)
    holdout = np.flatnonzero((rows.answer >= 0) & held_out(rows.ids))
    try:
        active = DEFECT_MODELS.model()
    except Exception:
        active = None
    if active is not None and len(holdout):
        metrics["active_on_holdout"] = score(active, rows, holdout)
    version = version_name("defect", newest)
    out = Path(settings.MODEL_DIR) / "defect" / version
    manifest = {
        "format": FORMAT,
        "kind": "defect",
        "version": version,
        "content_features": list(CONTENT_FEATURES),
        "reaction_features": list(REACTION_FEATURES),
        "trained_through_turn": newest,
        "metrics": metrics,
    }
    model.version = version

    def write(path: Path) -> None:
        with path.open("wb") as handle:
            pickle.dump(
                {"content": model.content, "reactions": model.reactions, "calibration": model.calibration}, handle
            )

    progress(0.8, "writing the artifact")
    write_artifact(out, manifest, {"model.pkl": write})
    row, decision = register_candidate(DEFECT_MODELS, out, manifest, gate=gate)
    return {
        "version": version,
        "status": row.status,
        "decision": decision.note if decision else None,
        "metrics": metrics,
        "seconds": round(time.monotonic() - started, 2),
    }


def score_turns(after_id: int | None, progress: Callable[[float, str], None]) -> dict[str, Any]:
    """Store the active model's P(defect) on every turn with id > after_id (all with None)."""
    model = DEFECT_MODELS.model()
    ids = Turn.objects.filter(**({"id__gt": after_id} if after_id is not None else {})).aggregate(
        lo=Min("id"), hi=Max("id")
    )
    if ids["lo"] is None:
        return {"scored": 0, "model": model.version, "watermark_id": after_id}
    scored = 0
    step = 20_000
    for start in range(ids["lo"], ids["hi"] + 1, step):
        rows = load_turns({"id__gte": start, "id__lt": start + step})
        if not len(rows.ids):
            continue
        p = model.probability(rows.content, rows.reactions)
        by_id = dict(zip(rows.ids.tolist(), p.tolist(), strict=True))
        turns = list(Turn.objects.filter(id__in=by_id).only("id"))
        for turn in turns:
            turn.defect_probability = round(by_id[turn.id], 4)
            turn.defect_model_version = model.version
        Turn.objects.bulk_update(turns, ["defect_probability", "defect_model_version"], batch_size=2000)
        scored += len(turns)
        progress(0.85 + 0.15 * min(1.0, (start - ids["lo"] + step) / max(1, ids["hi"] - ids["lo"] + 1)), "scoring")
    return {"scored": scored, "model": model.version, "watermark_id": ids["hi"]}
