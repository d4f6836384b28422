"""Rephrase detection: did the user try again, in other words (or the same), right after a turn?

A rephrase is the strongest implicit signal that a turn failed, and the raw material
of rewrite mining (pairs "what failed" -> "what the user said instead").

Candidates: pairs of one user's turns (ordered by created_at, id) less than
REPHRASE_MAX_GAP_S seconds apart, the second at most REPHRASE_LOOKBACK turns after the first
(usually the next one; requests may interleave). A turn is linked to the nearest
earlier candidate that passes the threshold, and each turn is matched at most once
each way. Each candidate is scored by a small, fixed,
transparent logistic model over these features (all in [0, 1]):

  sem       cosine of the MiniLM sentence embeddings of the two texts, clipped at 0
  lex       rapidfuzz token_set_ratio / 100 (repeats and partial rewordings)
  close     1 - gap / max gap (a quick retry is more likely a retry)
  failed    the first turn looked failed: barge-in, thumbs down, or status error/oos
  same      both turns got the same (non-empty) NLU intent

  score = sigmoid(BIAS + sum(WEIGHTS[f] * f))

The weights are set by hand, not fitted: meaning dominates (a retry says the same
thing), wording and speed add evidence, a visible failure of the first turn tips
borderline pairs. Two unrelated requests in quick succession ("turn on the lights",
then "what's the weather") have low sem and lex and stay well below the threshold
even when the first one failed; a paraphrase with no failure signal passes on
meaning alone. Pairs scoring at least REPHRASE_THRESHOLD are stored as
feedback.Rephrase rows (get_or_create: reruns add nothing).

The trained detector (kind "rephrase" in the registry) replaces the formula only where it beats
it on pairs reviewers judged and it never trained on. A logistic regression over PAIR_FEATURES:
the formula's own logit, and what the formula leaves out: plain and phonetic wording (jellyfish
metaphone keys: a misheard retry sounds like what it retries), how early the reply was cut, a
thumbs down, both NLU confidences, whether the later turn answers a question ("yes", "the
kitchen"), how many turns lie between. It learns from

  reviewers   verdicts on pairs ("a retry" / "not a retry", review/), the only labels it is judged on:
              those on pairs drawn at random (review's "Retries to judge") stand for every pair, and a
              share of them (a stable hash of the pair) is held out from every version; the pairs a
              reviewer opens from the inbox, mostly around failures, are only trained on
  self-labels a turn the user said went well (thumbs up, a "yes" to the survey) was not retried;
              the same words again right after a visible failure were a retry
  synthetic   a turn spliced with another user's next request (another intent) is no retry

It calls a pair a retry from the probability where its out-of-fold F1 on the reviewed pairs it
trains on is best (the easy negatives above keep its probabilities low on the harder pairs
reviewers judge), and is promoted only when its F1 on the held-out verdicts beats the formula's on
the same pairs (and the active trained version's), with at least MIN_HELD_OUT of them; the gate's
note says which way it went and by how much. Both are scored on the pairs detection would store with
them, not on each pair's score alone: a pair that passes loses to a nearer earlier turn that passes
too (`links`, `Around`), so a detector that raises every retry-like pair gains nothing where the
nearest try already passed. Until then the formula detects.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max, Min, Q
from rapidfuzz import fuzz

from assistant.artifacts import read_pickled, version_name, write_artifact
from assistant.intents import DIALOGUE_INTENTS
from assistant.registry import ModelKind, ModelUnavailable
from assistant.text import normalise, sounds
from feedback.labels import reviewed_rephrases
from feedback.models import Rephrase, Turn
from feedback.reactions import Reactions
from learning.embeddings import embed
from learning.registry import Decision, register_candidate

DETECTOR_VERSION = "fixed-logistic-1"
BIAS = -4.0
WEIGHTS = {"sem": 4.0, "lex": 2.0, "close": 1.5, "failed": 1.0, "same": 0.5}
FAILED_STATUSES = (Turn.Status.ERROR, Turn.Status.OUT_OF_SCOPE)


def max_gap_s() -> float:
    return float(getattr(settings, "REPHRASE_MAX_GAP_S", 45.0))


def threshold() -> float:
    return float(getattr(settings, "REPHRASE_THRESHOLD", 0.5))


def turn_text(turn: Turn) -> str:
    """What the assistant heard (the ASR top hypothesis), else what was typed."""
    return (turn.asr_text or turn.raw_text or "").strip()


@dataclass(frozen=True)
class PairFeatures:
    sem: float
    lex: float
    close: float
    failed: float
    same: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 4) for k in WEIGHTS}


def score_features(f: PairFeatures) -> float:
    """The fixed logistic scorer: a value in [0, 1]."""
    z = BIAS + sum(WEIGHTS[name] * getattr(f, name) for name in WEIGHTS)
    return 1.0 / (1.0 + math.exp(-z))


# What pairing and scoring read of a turn (not its trace, the largest column).
PAIR_FIELDS = ("id", "user_id", "created_at", "raw_text", "asr_text", "intent", "status", "nlu_confidence", "response")


@dataclass(frozen=True)
class Candidate:
    first: Turn
    second: Turn
    between: int  # the user's turns between the two (0: the second came right after the first)


def _candidate_pairs(new_turns: Q, max_gap: float) -> list[Candidate]:
    """Pairs of a user's turns (one of them new) less than max_gap apart, up to REPHRASE_LOOKBACK turns back."""
    lookback = int(settings.REPHRASE_LOOKBACK)
    pairs: list[Candidate] = []
    spans = Turn.objects.filter(new_turns).values("user_id").annotate(lo=Min("created_at"), hi=Max("created_at"))
    new_ids = set(Turn.objects.filter(new_turns).values_list("id", flat=True))
    for span in spans:
        # The turn just before the earliest new one may be the first of a pair.
        window = Turn.objects.filter(
            user_id=span["user_id"],
            created_at__gte=span["lo"] - timedelta(seconds=max_gap),
            created_at__lte=span["hi"],
        ).order_by("created_at", "id")
        turns = list(window.only(*PAIR_FIELDS))
        for j, second in enumerate(turns):
            for i in range(max(0, j - lookback), j):
                first = turns[i]
                if first.pk not in new_ids and second.pk not in new_ids:
                    continue
                gap = (second.created_at - first.created_at).total_seconds()
                if 0 <= gap < max_gap:
                    pairs.append(Candidate(first, second, j - i - 1))
    return pairs


# --- the trained detector -----------------------------------------------------------

FORMAT = "rephrase-model-1"
PAIR_FEATURES = (
    "formula",  # the fixed formula's logit
    "sem",
    "lex",
    "ratio",  # rapidfuzz ratio / 100: the whole wording, in order
    "sounds",  # rapidfuzz ratio / 100 of the metaphone keys
    "close",
    "barged",
    "heard_share",  # of the first reply, before the barge-in (1 without one)
    "thumbs_down",
    "failed_status",  # the first turn was out of scope or an error
    "same_intent",
    "first_confidence",
    "second_confidence",
    "second_answers",  # the second turn reads as an answer to a question: yes, no, a bare value
    "between",
)
MIN_REVIEWED = 40  # reviewed pairs (not held out) before a detector is trained
MIN_HELD_OUT = 20  # held-out verdicts on pairs drawn at random, of both kinds, to compare it with the formula on
HOLDOUT_SHARE = 0.5  # of the verdicts on pairs drawn at random
MAX_TRAINING_TURNS = 100_000  # the most recent turns whose pairs it learns from
NOT_RETRY, RETRY = 0, 1


def _load(path: Path) -> RephraseModel:
    manifest, classifier = read_pickled(path, FORMAT)
    return RephraseModel(version=manifest["version"], classifier=classifier, threshold=float(manifest["threshold"]))


REPHRASE_MODELS = ModelKind(
    "rephrase",
    _load,
    label="rephrase detector",
    hint="the fixed formula detects until reviewers' verdicts on pairs train one that beats it",
)


@dataclass
class RephraseModel:
    version: str
    classifier: Any  # sklearn pipeline over PAIR_FEATURES
    threshold: float  # a pair is a retry from this probability (chosen by its trainer)

    def probability(self, x: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(x)[:, 1] if len(x) else np.zeros(0)


@dataclass
class Signals:
    """What the product saw of the first turns of pairs: barge-ins and thumbs."""

    heard: dict[int, float]  # turn id -> share of its reply heard before the (earliest) barge-in
    down: set[int]  # turns with a thumbs down (ever)
    up: set[int]  # turns whose latest thumbs is up

    @classmethod
    def of(cls, turns: Iterable[Turn]) -> Signals:
        by_id = {t.pk: t for t in turns}
        reacted = Reactions.of(by_id)
        heard = {}
        for turn_id, (words, _ms) in reacted.barge.items():
            reply_words = len((by_id[turn_id].response or "").split())
            heard[turn_id] = min(1.0, words / reply_words) if reply_words else 0.0
        return cls(heard=heard, down=reacted.down, up=reacted.up)

    def failed(self, turn: Turn) -> bool:
        return turn.pk in self.heard or turn.pk in self.down or turn.status in FAILED_STATUSES


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def pair_row(
    c: Candidate, vectors: dict[str, Any], signals: Signals, max_gap: float, gap: float | None = None
) -> list[float]:
    """PAIR_FEATURES of a candidate (`gap` overrides the seconds between its turns: a spliced pair's)."""
    first, second = c.first, c.second
    a, b = turn_text(first), turn_text(second)
    va, vb = vectors.get(a), vectors.get(b)
    sem = min(1.0, max(0.0, float(va @ vb))) if va is not None and vb is not None else 0.0
    lower_a, lower_b = a.lower(), b.lower()
    lex = fuzz.token_set_ratio(lower_a, lower_b) / 100.0 if a and b else 0.0
    gap = (second.created_at - first.created_at).total_seconds() if gap is None else gap
    close = max(0.0, min(1.0, 1.0 - gap / max_gap)) if max_gap > 0 else 0.0
    failed = signals.failed(first)
    same = bool(first.intent) and first.intent == second.intent
    formula = score_features(PairFeatures(sem=sem, lex=lex, close=close, failed=float(failed), same=float(same)))
    return [
        _logit(formula),
        sem,
        lex,
        fuzz.ratio(lower_a, lower_b) / 100.0 if a and b else 0.0,
        fuzz.ratio(sounds(normalise(a)), sounds(normalise(b))) / 100.0 if a and b else 0.0,
        close,
        float(first.pk in signals.heard),
        signals.heard.get(first.pk, 1.0),
        float(first.pk in signals.down),
        float(first.status in FAILED_STATUSES),
        float(same),
        float(first.nlu_confidence or 0.0),
        float(second.nlu_confidence or 0.0),
        float(second.intent in DIALOGUE_INTENTS),
        float(c.between),
    ]


def formula_probability(x: np.ndarray) -> np.ndarray:
    """The fixed formula's score, from its logit (PAIR_FEATURES[0])."""
    return 1.0 / (1.0 + np.exp(-x[:, 0])) if len(x) else np.zeros(0)


def held_out(first_ids: np.ndarray, second_ids: np.ndarray) -> np.ndarray:
    """Which pairs no version trains on, if drawn at random (a stable hash of the pair: the same for every
    version)."""
    return np.array(
        [int.from_bytes(hashlib.sha256(f"rephrase-holdout|{a}|{b}".encode()).digest()[:4], "big") / 2**32 < HOLDOUT_SHARE
         for a, b in zip(first_ids.tolist(), second_ids.tolist(), strict=True)],
        dtype=bool,
    )  # fmt: skip


@dataclass
class PairRows:
    """Labelled pairs, featurised: one row per pair."""

    first_ids: np.ndarray
    second_ids: np.ndarray
    x: np.ndarray  # (n, len(PAIR_FEATURES))
    label: np.ndarray  # RETRY or NOT_RETRY
    reviewed: np.ndarray  # bool: the label is a reviewer's verdict
    sampled: np.ndarray  # bool: a reviewer's verdict on a pair drawn at random (feedback.labels.random_pairs)
    synthetic: int = 0  # of the rows, how many are spliced pairs (at the end)
    around: Around | None = None  # what detection weighs with the held-out pairs

    @property
    def holdout(self) -> np.ndarray:
        """The rows every version is measured on and none trains on: a share of the verdicts on pairs drawn
        at random, which stand for every pair (the inbox's are mostly around failures)."""
        return self.sampled & held_out(self.first_ids, self.second_ids)


@dataclass
class Around:
    """Every candidate pair detection weighs together with held-out pairs, featurised: for a pair (a, b),
    those among the person's turns from a to b. Detection links b to the nearest earlier turn whose pair
    passes and that no turn before b took (`links`), so these, and nothing outside them, decide whether it
    links b to a. A detector is judged on the pairs it would store, not on each pair's score alone: a pair
    that passes loses to a nearer retry that passes too."""

    pairs: list[Candidate]
    x: np.ndarray  # (len(pairs), len(PAIR_FEATURES))

    @classmethod
    def of(
        cls, held: list[Candidate], candidates: list[Candidate], vectors: dict, signals: Signals, gap_limit: float
    ) -> Around:
        def at(turn: Turn) -> tuple:
            return turn.created_at, turn.pk

        spans: dict[int, list[tuple[tuple, tuple]]] = {}
        for c in held:
            spans.setdefault(c.first.user_id, []).append((at(c.first), at(c.second)))
        pairs = [
            c for c in candidates
            if any(lo <= at(c.first) and at(c.second) <= hi for lo, hi in spans.get(c.first.user_id, ()))
        ]  # fmt: skip
        missing = [text for c in pairs for t in (c.first, c.second) if (text := turn_text(t)) not in vectors]
        vectors = {**vectors, **embed(missing)} if missing else vectors
        x = np.array([pair_row(c, vectors, signals, gap_limit) for c in pairs], dtype=np.float64)
        return cls(pairs=pairs, x=x.reshape(len(pairs), len(PAIR_FEATURES)))

    def linked(self, probability: Callable[[np.ndarray], np.ndarray], cutoff: float) -> set[tuple[int, int]]:
        """The (first, second) ids detection would link with this detector, of these pairs."""
        return {(c.first.pk, c.second.pk) for _, c in links(self.pairs, probability(self.x), cutoff)}


def self_label(c: Candidate, signals: Signals) -> int | None:
    """A confident read of a pair from what the user did, or None."""
    if c.first.pk in signals.up:
        return NOT_RETRY  # the user said it went well: what followed was something else
    same_words = normalise(turn_text(c.first)) == normalise(turn_text(c.second))
    if same_words and c.between == 0 and signals.failed(c.first):
        return RETRY  # the same words again, right after a visible failure
    return None


def load_pairs(turn_filter: Q, seed: int = 0) -> PairRows:
    """The candidate pairs among the turns matching `turn_filter` that reviewers judged or the user's
    reactions label, featurised, plus one spliced pair per labelled pair (where it splices)."""
    gap_limit = max_gap_s()
    candidates = _candidate_pairs(turn_filter, gap_limit)
    signals = Signals.of(c.first for c in candidates)
    ids = list({c.second.pk for c in candidates})
    verdicts: dict[tuple[int, int], tuple[bool, bool]] = {}  # (is a retry, drawn at random)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        current = reviewed_rephrases().filter(second_id__in=chunk)
        fields = ("first_id", "second_id", "is_rephrase", "sampled")
        verdicts.update({(a, b): (v, drawn) for a, b, v, drawn in current.values_list(*fields)})
    labelled: list[tuple[Candidate, int, bool]] = []
    sampled: list[bool] = []
    for c in candidates:
        verdict = verdicts.get((c.first.pk, c.second.pk))
        if verdict is not None:
            labelled.append((c, RETRY if verdict[0] else NOT_RETRY, True))
            sampled.append(verdict[1])
            continue
        label = self_label(c, signals)
        if label is not None:
            labelled.append((c, label, False))
            sampled.append(False)
    rng = np.random.default_rng(seed)
    splices = []
    if len(labelled) > 1:
        donors = rng.permutation(len(labelled))
        for k, (c, _, _) in enumerate(labelled):
            other = labelled[donors[k]][0].second
            if other.user_id != c.first.user_id and other.intent != c.first.intent:
                gap = (c.second.created_at - c.first.created_at).total_seconds()
                splices.append((Candidate(c.first, other, c.between), gap))
    texts = [turn_text(t) for c, _, _ in labelled for t in (c.first, c.second)] + [
        turn_text(c.second) for c, _ in splices
    ]
    vectors = embed(texts) if texts else {}
    rows = [pair_row(c, vectors, signals, gap_limit) for c, _, _ in labelled]
    rows += [pair_row(c, vectors, signals, gap_limit, gap=gap) for c, gap in splices]
    n = len(rows)
    first_ids = np.array([c.first.pk for c, _, _ in labelled] + [c.first.pk for c, _ in splices], dtype=np.int64)
    second_ids = np.array([c.second.pk for c, _, _ in labelled] + [c.second.pk for c, _ in splices], dtype=np.int64)
    held = np.flatnonzero(
        np.array(sampled, dtype=bool) & held_out(first_ids[: len(labelled)], second_ids[: len(labelled)])
    )
    return PairRows(
        first_ids=first_ids,
        second_ids=second_ids,
        x=np.array(rows, dtype=np.float64).reshape(n, len(PAIR_FEATURES)),
        label=np.array([y for _, y, _ in labelled] + [NOT_RETRY] * len(splices), dtype=np.int8),
        reviewed=np.array([r for _, _, r in labelled] + [False] * len(splices), dtype=bool),
        sampled=np.array(sampled + [False] * len(splices), dtype=bool),
        synthetic=len(splices),
        around=Around.of([labelled[i][0] for i in held], candidates, vectors, signals, gap_limit),
    )


class NotEnoughEvidence(ValueError):
    """Too few reviewed pairs to train a detector or to compare it with the formula."""


def fit(rows: PairRows) -> tuple[RephraseModel, dict[str, Any]]:
    """Train on every labelled pair but the held-out reviewed ones; metrics on those, for it and the formula."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    holdout = rows.holdout
    train = ~holdout
    reviewed_train = int((rows.reviewed & train).sum())
    if reviewed_train < MIN_REVIEWED:
        raise NotEnoughEvidence(
            f"{reviewed_train} reviewed pairs to train on, {MIN_REVIEWED} needed: the fixed formula detects"
        )
    if len(set(rows.label[train].tolist())) < 2:
        raise NotEnoughEvidence("the labelled pairs hold only one kind so far: the fixed formula detects")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    classifier.fit(rows.x[train], rows.label[train])
    model = RephraseModel(version="", classifier=classifier, threshold=_threshold(classifier, rows, train))
    metrics: dict[str, Any] = {
        "threshold": model.threshold,
        "trained_on": {
            "reviewed": reviewed_train,
            "self_labels": int((~rows.reviewed[: len(rows.label) - rows.synthetic]).sum()),
            "synthetic": rows.synthetic,
            "retries": int((rows.label[train] == RETRY).sum()),
        },
        "held_out": int(holdout.sum()),
        "weights": dict(
            zip(PAIR_FEATURES, np.round(classifier[-1].coef_[0], 3).tolist(), strict=True)
        ),  # on standardised features
    }
    if holdout.any():
        metrics["holdout"] = score_held_out(rows, model.probability, model.threshold)
        metrics["formula_on_holdout"] = score_held_out(rows, formula_probability, threshold())
    return model, metrics


def score_held_out(rows: PairRows, probability: Callable[[np.ndarray], np.ndarray], cutoff: float) -> dict[str, Any]:
    """A detector's precision, recall and F1 on the held-out verdicts as detection would link their pairs
    (Around), with its F1 on each pair's score alone beside them ("pairwise_f1") and its log loss."""
    idx = np.flatnonzero(rows.holdout)
    p, y = probability(rows.x[idx]), rows.label[idx]
    said = None  # without the pairs around them: each pair's score alone
    if rows.around is not None:
        linked = rows.around.linked(probability, cutoff)
        said = np.array([(int(rows.first_ids[i]), int(rows.second_ids[i])) in linked for i in idx], dtype=bool)
    return {**score(p, y, cutoff, said=said), "pairwise_f1": score(p, y, cutoff)["f1"]}


def _threshold(classifier: Any, rows: PairRows, train: np.ndarray) -> float:
    """The probability from which a pair is a retry: where out-of-fold predictions on the reviewed training
    pairs have the best F1. The self-labels and the spliced pairs are mostly easy negatives, so the
    model's probabilities run low on the harder pairs reviewers judge, and 0.5 would miss retries."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x, y, reviewed = rows.x[train], rows.label[train], rows.reviewed[train]
    folds = min(5, int(np.bincount(y, minlength=2).min()))
    if folds < 2 or not reviewed.any():
        return threshold()
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    p = cross_val_predict(clone(classifier), x, y, cv=cv, method="predict_proba")[:, 1][reviewed]
    grid = np.round(np.arange(0.1, 0.91, 0.05), 2)
    f1s = [score(p, y[reviewed], float(t))["f1"] for t in grid]
    return float(grid[int(np.argmax(f1s))])


def score(p: np.ndarray, y: np.ndarray, cutoff: float, said: np.ndarray | None = None) -> dict[str, Any]:
    """Precision, recall and F1 of scores `p` from `cutoff` on (or of the calls `said`, where given), and log
    loss, against labels `y`."""
    from sklearn.metrics import log_loss

    said = p >= cutoff if said is None else said
    tp = int((said & (y == RETRY)).sum())
    precision = tp / int(said.sum()) if said.any() else 0.0
    recall = tp / int((y == RETRY).sum()) if (y == RETRY).any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(y),
        "retries": int((y == RETRY).sum()),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "log_loss": round(float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])), 4),
    }


def gate(candidate: dict, active: dict | None) -> Decision:
    """Promote only a detector that beats the formula (and the active version) on held-out reviewed pairs."""
    metrics = candidate.get("metrics") or {}
    mine, formula = metrics.get("holdout"), metrics.get("formula_on_holdout")
    if not mine or not formula or mine["n"] < MIN_HELD_OUT or mine["retries"] in (0, mine["n"]):
        n = mine["n"] if mine else 0
        return Decision(
            False, False, f"rejected: {n} held-out verdicts on pairs drawn at random (review's retries to judge), "
            f"{MIN_HELD_OUT} of both kinds needed to compare it with the fixed formula, which detects meanwhile"
        )  # fmt: skip
    versus = (
        f"held-out F1 {mine['f1']} against the fixed formula's {formula['f1']} on the same {mine['n']} pairs as "
        f"detection would link them (each pair's score alone: {mine.get('pairwise_f1')} against {formula.get('pairwise_f1')})"
    )
    beats = (mine["f1"], -mine["log_loss"]) > (formula["f1"], -formula["log_loss"])
    if not beats:
        return Decision(False, True, f"rejected: {versus}; the formula detects", ("f1",))
    theirs = metrics.get("active_on_holdout")
    if theirs and mine["f1"] < theirs["f1"] - float(settings.REPHRASE_PROMOTION_TOLERANCE):
        return Decision(False, True, f"rejected: {versus}, but the active version's is {theirs['f1']}", ("f1",))
    return Decision(True, True, f"promoted: {versus}")


def active_detector() -> RephraseModel | None:
    """The trained detector the gate promoted, or None: the fixed formula detects."""
    try:
        return REPHRASE_MODELS.model()
    except ModelUnavailable:
        return None


def train_and_register(progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """Train on the most recent turns' labelled pairs, write the artifact, let the gate decide.
    Raises NotEnoughEvidence while reviewers have judged too few pairs."""
    progress = progress or (lambda _share, _what: None)
    started = time.monotonic()
    newest = Turn.objects.aggregate(m=Max("id"))["m"]
    if newest is None:
        raise NotEnoughEvidence("no turns are stored yet")
    if reviewed_rephrases().count() < MIN_REVIEWED:
        raise NotEnoughEvidence(f"fewer than {MIN_REVIEWED} reviewed pairs: the fixed formula detects")
    floor = max(0, newest - MAX_TRAINING_TURNS)
    progress(0.05, "reading labelled pairs")
    rows = load_pairs(Q(id__gt=floor, id__lte=newest))
    progress(0.3, f"training on {len(rows.label)} pairs")
    model, metrics = fit(rows)
    active = active_detector()
    if active is not None and rows.holdout.any():
        metrics["active_on_holdout"] = score_held_out(rows, active.probability, active.threshold)
    version = version_name("rephrase", newest)
    manifest = {
        "format": FORMAT,
        "kind": REPHRASE_MODELS.name,
        "version": version,
        "features": list(PAIR_FEATURES),
        "threshold": model.threshold,
        "trained_through_turn": newest,
        "metrics": metrics,
    }

    def write(path: Path) -> None:
        with path.open("wb") as handle:
            pickle.dump(model.classifier, handle)

    out = Path(settings.MODEL_DIR) / "rephrase" / version
    write_artifact(out, manifest, {"model.pkl": write})
    row, decision = register_candidate(REPHRASE_MODELS, out, manifest, gate=gate)
    return {
        "version": version,
        "status": row.status,
        "decision": decision.note if decision else None,
        "metrics": metrics,
        "seconds": round(time.monotonic() - started, 2),
    }


# --- detection ----------------------------------------------------------------------


def links(
    pairs: list[Candidate], scores: np.ndarray, cutoff: float, stored: set[tuple[int, int]] | frozenset = frozenset()
) -> list[tuple[float, Candidate]]:
    """The pairs detection links, in its order (the later turns' times): each turn rephrases at most one
    earlier turn, the nearest whose pair scores `cutoff` or more and is still free (a chain of retries links
    each try to the one before), and is rephrased at most once. The pairs in `stored` (an earlier run's, as
    (first id, second id)) are linked already and hold their turns: a rerun changes nothing."""
    order = sorted(
        zip(scores.tolist(), pairs, strict=True),
        key=lambda item: (item[1].second.created_at, item[1].second.pk, -item[1].first.created_at.timestamp(), -item[1].first.pk),
    )  # fmt: skip
    used_first = {a for a, _ in stored}
    used_second = {b for _, b in stored}
    linked = []
    for score_, c in order:
        if score_ < cutoff:
            continue
        if (c.first.pk, c.second.pk) in stored:
            linked.append((float(score_), c))
            continue
        if c.first.pk in used_first or c.second.pk in used_second:
            continue
        used_first.add(c.first.pk)
        used_second.add(c.second.pk)
        linked.append((float(score_), c))
    return linked


def detect_rephrases(since: datetime | None = None, *, after_id: int | None = None) -> dict[str, Any]:
    """Find and store rephrases among turns created at/after `since` and with id > `after_id`.

    Both None: every turn. The active trained detector scores the pairs if the gate promoted
    one, else the fixed formula. Returns counts and `watermark_id`, the largest turn id seen,
    which the next run can pass as `after_id` (ids, not times: simulated turns carry
    simulated, possibly past, timestamps).
    """
    new_turns = Q()
    if since is not None:
        new_turns &= Q(created_at__gte=since)
    if after_id is not None:
        new_turns &= Q(pk__gt=after_id)
    watermark = Turn.objects.filter(new_turns).aggregate(m=Max("id"))["m"]
    gap_limit = max_gap_s()
    pairs = _candidate_pairs(new_turns, gap_limit)
    vectors = embed([turn_text(t) for c in pairs for t in (c.first, c.second)]) if pairs else {}
    signals = Signals.of(c.first for c in pairs)
    x = np.array([pair_row(c, vectors, signals, gap_limit) for c in pairs], dtype=np.float64).reshape(
        len(pairs), len(PAIR_FEATURES)
    )
    detector = active_detector()
    scores = detector.probability(x) if detector is not None else formula_probability(x)
    version = detector.version if detector is not None else DETECTOR_VERSION
    cutoff = detector.threshold if detector is not None else threshold()
    ids = {t.pk for c in pairs for t in (c.first, c.second)}
    stored = set(
        Rephrase.objects.filter(Q(first_id__in=ids) | Q(second_id__in=ids)).values_list("first_id", "second_id")
    )
    created = existing = 0
    for score_, c in links(pairs, scores, cutoff, stored):
        first, second = c.first, c.second
        if (first.pk, second.pk) in stored:
            existing += 1
            continue
        gap_ms = int((second.created_at - first.created_at).total_seconds() * 1000)
        # get_or_create: a concurrent run may have stored the same pair meanwhile.
        _, was_created = Rephrase.objects.get_or_create(
            first=first,
            second=second,
            defaults={"score": round(score_, 4), "gap_ms": gap_ms, "detector_version": version},
        )
        created += was_created
        existing += not was_created
    return {
        "candidates": len(pairs),
        "detected": created + existing,
        "created": created,
        "already_stored": existing,
        "threshold": cutoff,
        "max_gap_s": gap_limit,
        "detector_version": version,
        "watermark_id": watermark if watermark is not None else after_id,
    }
