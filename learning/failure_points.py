"""Failure-point isolation: for a turn that probably failed its user, the first stage that failed
irrecoverably: asr, nlu, rewrite, resolve, execute, or none (the request was beyond the product).

Nobody annotates most turns. The model (kind "failure_point" in the registry, LightGBM multiclass)
learns from what the product stores, never from the simulator's truth:

  reviewer labels  a reviewer's failure point for a turn (feedback.Label), the surest evidence:
                   weighted REVIEWED_WEIGHT, and the held-out share of them is what versions are
                   compared on once there are enough
  self-labels      a failed turn whose retries (the rephrase chain, learning/generated_labels.py)
                   reached a try that went well: what changed between the two says where the first
                   one failed (self_label() below); a turn with no such try stays unlabelled

Features (FEATURES) come from the turn's trace (ASR and NLU confidences, the NLU's margin, n-best
disagreement, a rewrite and its source, resolve and execute errors, a stage that raised), from how
plausible its words are as a request (a word-bigram language model over what people say to the product,
`RequestLanguageModel`), from how they sound next to requests that went well (`GoodRequests`: words that
sound almost like another request that went well were probably that request misheard; words that went well
for others, read the same way, were probably read right), from the turns around it (how the user retried:
with the same words re-heard or other words, what the retry was read as) and from the user's channel (how
often their repeats came back as different words). A reviewer's or the model's point is shown on every
turn in review/, and each learning cycle stores the active model's point on the likely defects of the last
FAILURE_POINT_DAYS.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import pickle
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max, Q
from rapidfuzz import fuzz, process

from assistant.artifacts import read_pickled, version_name, write_artifact
from assistant.intents import OUT_OF_SCOPE
from assistant.registry import ModelKind
from assistant.text import sound, sounds
from feedback.labels import turn_words
from feedback.models import Label, Rephrase, Turn
from feedback.reactions import Reactions
from learning.registry import Decision, register_candidate

FORMAT = "failure-point-model-1"
POINTS = tuple(Label.FailurePoint.values)  # asr, nlu, rewrite, resolve, execute, none
REVIEWED_WEIGHT = 5.0  # a reviewer's label counts as this many self-labels
HOLDOUT_SHARE = 0.25  # of the labelled turns (by a stable hash of the id): versions are compared there
MIN_LABELS = 30  # labelled turns needed to train at all
MAX_CHAIN = 3  # retries followed from a failed turn to the one that went well
SPELT_ALIKE = 75.0  # rapidfuzz ratio of two words at or above which one may be the other misheard
RESAID_SHARE = 0.9  # of a try's words that must be, or sound like, the other's for it to re-say them
SOUNDS_LIKE = 85.0  # rapidfuzz ratio of two requests' sounds at or above which one may be the other misheard

FEATURES = (
    "nlu_confidence",
    "nlu_margin",  # the best intent's probability minus the runner-up's
    "context_changed",  # the context re-ranker chose another reading than the NLU's words alone
    "out_of_scope",
    "asr_confidence",
    "asr_unscored",  # typed, or a recogniser that gave no confidence
    "nbest_size",
    "nbest_disagree",  # the n-best hypotheses were read as different intents
    "rewrite_kept",
    "rewrite_personal",
    "rewrite_online",
    "rewrite_confidence",
    "resolve_error",
    "execute_failed",
    "stage_error_asr",
    "stage_error_nlu",
    "stage_error_resolve",
    "stage_error_execute",
    "slot_count",
    "words",
    "lm_mean_surprisal",  # the words' mean surprisal under the request language model, in nats
    "lm_max_surprisal",
    "lm_unknown_share",  # words the language model never saw
    "barged",
    "thumbs_down",
    "retried",
    "retry_similarity",  # rapidfuzz ratio of this turn's words and the retry's
    "retry_same_sound",  # share of the retry's words that sound like one of this turn's (metaphone)
    "retry_same_intent",
    "retry_same_slots",
    "retry_pre_rewrite_intent",  # the retry was read as what the NLU read before a rewrite replaced it
    "user_misheard_rate",  # of the user's retries re-saying a turn, the share whose words came back different
    "user_retries",
    "sounds_like_good",  # how alike the turn's words sound to the nearest request (in other words) that went well
    "sounds_like_good_read_otherwise",  # that request was read as another intent than this turn
    "retry_reading_sounds_like",  # how alike they sound to the nearest that went well read as the retry was
    "log_same_words_went_well",  # turns with exactly these words that went well (for anyone)
    "same_words_read_alike",  # and they were read as this turn was: the reading is probably right
)
# What the user's next try says; all zero for a turn nobody retried.
RETRY_FEATURES = tuple(name for name in FEATURES if name == "retried" or name.startswith("retry_"))
# Nothing about whether a retry went well, nor how many tries it took: every self-label but "none" needs a
# try that went well, so the model would learn "no success, so none" and say it of every turn that has
# none yet (most of them; a reviewer's labels cover a few).


# --- a language model of requests -------------------------------------------------------


@dataclass
class RequestLanguageModel:
    """Interpolated word-bigram model (absolute discounting) over what people say to the product: how
    surprising a turn's words are as a request. Misrecognised speech ("start seven am alarms") tends to be
    more surprising than a clearly heard request the NLU misread."""

    unigrams: Counter = field(default_factory=Counter)
    bigrams: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    total: int = 0
    discount: float = 0.75

    @classmethod
    def fit(cls, texts: Iterable[str]) -> RequestLanguageModel:
        model = cls()
        for text in texts:
            words = ["<s>", *text.lower().split(), "</s>"]
            model.unigrams.update(words[1:])
            for a, b in itertools.pairwise(words):
                model.bigrams[a][b] += 1
        model.total = sum(model.unigrams.values())
        model.bigrams = dict(model.bigrams)
        return model

    def surprisals(self, text: str) -> list[float]:
        """-log P(word | previous word) for each word and the end of the request."""
        vocabulary = len(self.unigrams) + 1
        words = ["<s>", *text.lower().split(), "</s>"]
        out = []
        for a, b in itertools.pairwise(words):
            p_uni = (self.unigrams.get(b, 0) + 0.1) / (self.total + 0.1 * vocabulary)
            following = self.bigrams.get(a)
            if following:
                n = sum(following.values())
                seen = len(following)
                p = max(following.get(b, 0) - self.discount, 0) / n + (self.discount * seen / n) * p_uni
            else:
                p = p_uni
            out.append(-math.log(max(p, 1e-12)))
        return out

    def features(self, text: str) -> tuple[float, float, float]:
        words = text.lower().split()
        if not words:
            return 0.0, 0.0, 0.0
        s = self.surprisals(text)
        unknown = sum(1 for w in words if w not in self.unigrams) / len(words)
        return float(np.mean(s)), float(max(s)), unknown


# --- what the store says about a turn ----------------------------------------------------


def same_sound_share(first: str, second: str) -> float:
    """Share of `second`'s words that are, or sound like, a word of `first`: the same metaphone code, or
    spelt almost alike (rapidfuzz ratio >= SPELT_ALIKE: "light" and "lights")."""
    b = second.split()
    if not b:
        return 0.0
    a_words = set(first.split())
    a_sounds = {sound(w) for w in a_words}

    def alike(word: str) -> bool:
        return word in a_words or sound(word) in a_sounds or any(fuzz.ratio(word, w) >= SPELT_ALIKE for w in a_words)

    return sum(1 for w in b if alike(w)) / len(b)


@dataclass
class GoodRequests:
    """The distinct requests that went well, by how they sound (metaphone codes of their words), with what
    each was read as. Words that sound much like one of them but fail are probably that request misheard;
    the turn's own words, said and read that way, are not what went well."""

    texts: list[str]
    sounds: list[str]
    intents: list[str]  # what each was read as most often
    counts: list[int]  # how many turns with these words went well
    by_intent: dict[str, list[int]] = field(default_factory=dict)
    row: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, turns: Iterable[tuple[str, str]], most: int = 10_000) -> GoodRequests:
        """From (words, intent) of turns that went well; the `most` most frequent wordings (each turn's
        words are compared with every one of them)."""
        readings: dict[str, Counter] = defaultdict(Counter)
        for words, intent in turns:
            if words and intent and intent != OUT_OF_SCOPE:
                readings[words][intent] += 1
        texts = sorted(sorted(readings, key=lambda t: -sum(readings[t].values()))[:most])
        intents = [readings[t].most_common(1)[0][0] for t in texts]
        by_intent: dict[str, list[int]] = defaultdict(list)
        for i, intent in enumerate(intents):
            by_intent[intent].append(i)
        counts = [sum(readings[t].values()) for t in texts]
        return cls(
            texts, [sounds(t) for t in texts], intents, counts, dict(by_intent), {t: i for i, t in enumerate(texts)}
        )

    @classmethod
    def from_store(cls, limit: int = 50_000) -> GoodRequests:
        """The newest `limit` turns that went well."""
        good = Turn.objects.filter(
            defect_probability__lte=settings.GENERATED_LABEL_MAX_SUCCESS_DEFECT, status=Turn.Status.OK
        ).order_by("-id")[:limit]
        return cls.of((turn_words(t), t.intent) for t in good.only("id", "asr_text", "raw_text", "intent"))

    def same_words(self, words: str) -> tuple[int, str | None]:
        """(how many turns with exactly these words went well, what they were read as most often)."""
        i = self.row.get(words)
        return (self.counts[i], self.intents[i]) if i is not None else (0, None)

    def nearest(self, words: str, intent: str | None = None) -> tuple[float, str | None]:
        """(how alike they sound, 0..1; what it was read as) of the request in other words that sounds most
        like `words`, among those read as `intent` when given; (0, None) when there is none."""
        rows = self.by_intent.get(intent, []) if intent is not None else None
        choices = [self.sounds[i] for i in rows] if rows is not None else self.sounds
        if not words or not choices:
            return 0.0, None
        for _, ratio, k in process.extract(sounds(words), choices, scorer=fuzz.ratio, limit=3):
            i = rows[k] if rows is not None else k
            if self.texts[i] != words:
                return ratio / 100.0, self.intents[i]
        return 0.0, None


def _stages(trace: list | None) -> dict[str, dict]:
    return {r.get("stage"): r for r in trace or [] if isinstance(r, dict)}


def pre_rewrite_intent(turn: Turn) -> str:
    """What the NLU read before a rewrite replaced it (the turn's intent when none did)."""
    return str(_output(_stages(turn.trace), "nlu").get("intent") or turn.intent)


def _output(stages: dict[str, dict], stage: str) -> dict:
    output = (stages.get(stage) or {}).get("output")
    return output if isinstance(output, dict) else {}


def trace_facts(turn: Turn) -> dict[str, float]:
    stages = _stages(turn.trace)
    nlu_out = _output(stages, "nlu")
    alternatives = [a for a in (nlu_out.get("alternatives") or []) if isinstance(a, (list, tuple)) and len(a) == 2]
    before = [a for a in (nlu_out.get("before_context") or []) if isinstance(a, (list, tuple)) and len(a) == 2]
    probabilities = sorted((float(p) for _, p in alternatives), reverse=True)
    margin = (
        probabilities[0] - probabilities[1] if len(probabilities) > 1 else (probabilities[0] if probabilities else 0.0)
    )
    nlu_in = (stages.get("nlu") or {}).get("input")
    hypotheses = nlu_in.get("hypotheses") if isinstance(nlu_in, dict) else None
    read_as = {h.get("intent") for h in hypotheses or [] if isinstance(h, dict)}
    rewrite = turn.rewrite if isinstance(turn.rewrite, dict) else {}
    kept = bool(rewrite.get("kept"))
    action, executed = _output(stages, "resolve"), _output(stages, "execute")
    errors = {r.get("stage") for r in turn.trace or [] if isinstance(r, dict) and r.get("error")}
    return {
        "nlu_confidence": float(turn.nlu_confidence or 0.0),
        "nlu_margin": float(margin),
        "context_changed": float(bool(before) and before[0][0] != (alternatives[0][0] if alternatives else None)),
        "out_of_scope": float(turn.status == Turn.Status.OUT_OF_SCOPE or turn.intent == OUT_OF_SCOPE),
        "asr_confidence": float(turn.asr_confidence) if turn.asr_confidence is not None else 1.0,
        "asr_unscored": float(turn.asr_confidence is None),
        "nbest_size": float(len(turn.nbest or []) or 1),
        "nbest_disagree": float(len(read_as) > 1),
        "rewrite_kept": float(kept),
        "rewrite_personal": float(kept and rewrite.get("scope") == "personal"),
        "rewrite_online": float(kept and "online" in str(rewrite.get("layer") or "")),
        "rewrite_confidence": float((rewrite.get("rewritten") or {}).get("confidence") or 0.0) if kept else 0.0,
        "resolve_error": float(bool((action.get("params") or {}).get("error"))),
        "execute_failed": float("ok" in executed and not executed.get("ok")),
        "stage_error_asr": float("asr" in errors),
        "stage_error_nlu": float("nlu" in errors),
        "stage_error_resolve": float("resolve" in errors),
        "stage_error_execute": float("execute" in errors),
        "slot_count": float(len(turn.slots or {})),
    }


@dataclass
class Retry:
    """How the user went on after a turn: the next try (a rephrase link), and the first that went well."""

    next_turn: Turn | None = None
    success: Turn | None = None
    failed_tries: int = 0


def went_well(turn: Turn) -> bool:
    return (
        turn.defect_probability is not None and turn.defect_probability <= settings.GENERATED_LABEL_MAX_SUCCESS_DEFECT
    )


def follow_retries(turn: Turn, by_first: dict[int, list[Rephrase]]) -> Retry:
    links = by_first.get(turn.pk)
    if not links:
        return Retry()
    link = max(links, key=lambda r: r.score)
    retry = Retry(next_turn=link.second)
    for _ in range(MAX_CHAIN):
        second = link.second
        if went_well(second):
            retry.success = second
            return retry
        retry.failed_tries += 1
        nexts = by_first.get(second.pk)
        if not nexts:
            return retry
        link = max(nexts, key=lambda r: r.score)
    return retry


def self_label(turn: Turn, retry: Retry, good: GoodRequests | None = None) -> str | None:
    """Where the turn failed, concluded from the try that went well after it; None when nothing is sure.

    rewrite  a rewrite replaced the NLU's reading and the success has the NLU's own intent
    asr      the success was read otherwise, and its words re-say the failed words (each the same or
             sounding alike, resaid()): the user said the same thing again and it was heard differently;
             or the failed words sound almost like (SOUNDS_LIKE) other words that went well read as the
             success was (`good`): what was said was that request, misheard
    nlu      the success was read otherwise, in other words: it was said in words the NLU reads (the
             failed words may still have been misheard; the features weigh that)
    resolve  the same reading, and resolving it had failed; or resolving it failed and the success has the same
             intent and adds slots the failed words never said (added_unsaid: an underspecified request
             the product should have filled in)
    execute  the same reading, resolved, and carrying it out failed
    none     out of scope, and none of two or more retries after it went well (the user gave up)
    """
    success = retry.success
    facts = trace_facts(turn)
    if success is None:
        if facts["out_of_scope"] and retry.next_turn is not None and retry.failed_tries >= 2:
            return Label.FailurePoint.NONE
        return None
    failed_words, success_words = turn_words(turn), turn_words(success)
    same_reading = turn.intent == success.intent and (turn.slots or {}) == (success.slots or {})
    if facts["rewrite_kept"] and pre_rewrite_intent(turn) == success.intent != turn.intent:
        return Label.FailurePoint.REWRITE
    if same_reading:
        if facts["resolve_error"]:
            return Label.FailurePoint.RESOLVE
        if facts["execute_failed"]:
            return Label.FailurePoint.EXECUTE
        return None
    if (
        facts["resolve_error"]
        and turn.intent == success.intent
        and added_unsaid(failed_words, turn.slots or {}, success.slots or {})
    ):
        return Label.FailurePoint.RESOLVE
    if not failed_words or failed_words == success_words:
        return None
    if resaid(failed_words, success_words):
        return Label.FailurePoint.ASR
    if good is not None and good.nearest(failed_words, success.intent)[0] * 100 >= SOUNDS_LIKE:
        return Label.FailurePoint.ASR
    return Label.FailurePoint.NLU


def added_unsaid(failed_words: str, failed_slots: dict, success_slots: dict) -> bool:
    """The success kept the failed turn's slots and added some whose words the failed turn never said (nor
    anything sounding like them): "how did my team do" ("Which team?"), then "how did chelsea do". The NLU
    read what was said; the request left out what the product should have known (a preference, the
    context), which is the resolve stage's to fill in."""
    added = {k: str(v) for k, v in success_slots.items() if k not in failed_slots}
    kept = all(success_slots.get(k) == v for k, v in failed_slots.items())
    return (
        bool(added) and kept and all(same_sound_share(failed_words, v.lower()) < RESAID_SHARE for v in added.values())
    )


def resaid(first: str, second: str) -> bool:
    """`second` says `first` again, heard otherwise: every word of each is, or sounds like, a word of the other."""
    return same_sound_share(first, second) >= RESAID_SHARE and same_sound_share(second, first) >= RESAID_SHARE


# --- rows --------------------------------------------------------------------------------


@dataclass
class FailureRows:
    ids: np.ndarray
    x: np.ndarray  # (n, len(FEATURES))
    label: list[str | None]  # the reviewer's point, else the self-label, else None
    reviewed: np.ndarray  # bool: the label is a reviewer's


def _user_channels(turns: list[Turn], by_first: dict[int, list[Rephrase]]) -> dict[int, tuple[float, int]]:
    """Per user: (share of their re-said retries whose words came back different, how many re-said retries)."""
    repeats: Counter = Counter()
    changed: Counter = Counter()
    for turn in turns:
        for link in by_first.get(turn.pk, ()):
            a, b = turn_words(turn), turn_words(link.second)
            if a and b and resaid(a, b):
                repeats[turn.user_id] += 1
                changed[turn.user_id] += int(a != b)
    return {u: ((changed[u] + 0.5) / (repeats[u] + 2.0), repeats[u]) for u in repeats}


def load_rows(turns: list[Turn], lm: RequestLanguageModel, good: GoodRequests | None = None) -> FailureRows:
    """Features and labels of `turns` (their retries are read from the store); `good`: the requests that went
    well, which misheard words sound like (none when not given)."""
    good = good or GoodRequests.of([])
    ids = [t.pk for t in turns]
    by_first: dict[int, list[Rephrase]] = defaultdict(list)
    for start in range(0, len(ids), 5000):
        for r in Rephrase.objects.filter(first_id__in=ids[start : start + 5000]).select_related("second"):
            by_first[r.first_id].append(r)
    # Follow chains beyond the set: the retries' own retries.
    frontier = [r.second_id for links in by_first.values() for r in links if r.second_id not in by_first]
    for _ in range(MAX_CHAIN):
        if not frontier:
            break
        found = list(Rephrase.objects.filter(first_id__in=frontier).select_related("second"))
        frontier = []
        for r in found:
            if r not in by_first[r.first_id]:
                by_first[r.first_id].append(r)
                frontier.append(r.second_id)
    reacted = Reactions.of(ids)
    barged, down = reacted.barged, reacted.down
    reviewed = {
        label.turn_id: label.failure_point
        for label in Label.objects.filter(turn_id__in=ids, undone_at__isnull=True)
        .exclude(failure_point="")
        .order_by("created_at", "id")
    }
    channels = _user_channels(turns, by_first)

    x = np.zeros((len(turns), len(FEATURES)), dtype=np.float32)
    labels: list[str | None] = []
    is_reviewed = np.zeros(len(turns), dtype=bool)
    for i, turn in enumerate(turns):
        words = turn_words(turn)
        facts = trace_facts(turn)
        retry = follow_retries(turn, by_first)
        nxt = retry.next_turn
        next_words = turn_words(nxt) if nxt is not None else ""
        misheard, repeats = channels.get(turn.user_id, (0.5 / 2.0, 0))
        mean_s, max_s, unknown = lm.features(words)
        alike, read_as = good.nearest(words)
        went_well, read_then = good.same_words(words)
        facts.update(
            words=float(len(words.split())),
            lm_mean_surprisal=mean_s,
            lm_max_surprisal=max_s,
            lm_unknown_share=unknown,
            barged=float(turn.pk in barged),
            thumbs_down=float(turn.pk in down),
            retried=float(nxt is not None),
            retry_similarity=float(fuzz.ratio(words, next_words)) / 100.0 if nxt is not None else 0.0,
            retry_same_sound=same_sound_share(words, next_words) if nxt is not None else 0.0,
            retry_same_intent=float(nxt is not None and nxt.intent == turn.intent),
            retry_same_slots=float(nxt is not None and (nxt.slots or {}) == (turn.slots or {})),
            retry_pre_rewrite_intent=float(
                nxt is not None and bool(turn.rewrite) and nxt.intent == pre_rewrite_intent(turn) != turn.intent
            ),
            user_misheard_rate=misheard,
            user_retries=float(repeats),
            sounds_like_good=alike,
            sounds_like_good_read_otherwise=float(read_as is not None and read_as != turn.intent),
            retry_reading_sounds_like=good.nearest(words, nxt.intent)[0] if nxt is not None else 0.0,
            log_same_words_went_well=math.log1p(went_well),
            same_words_read_alike=float(read_then is not None and read_then == turn.intent),
        )
        x[i] = [facts[name] for name in FEATURES]
        if turn.pk in reviewed:
            labels.append(reviewed[turn.pk])
            is_reviewed[i] = True
        else:
            labels.append(self_label(turn, retry, good))
    return FailureRows(ids=np.array(ids, dtype=np.int64), x=x, label=labels, reviewed=is_reviewed)


def likely_defects(since: datetime | None = None, until: datetime | None = None) -> list[Turn]:
    """The turns the defect model thinks failed (FAILURE_POINT_MIN_DEFECT or more), oldest first."""
    rows = Turn.objects.filter(defect_probability__gte=settings.FAILURE_POINT_MIN_DEFECT)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lte=until)
    return list(rows.order_by("created_at", "id"))


def reviewed_turns() -> list[Turn]:
    """Every turn a reviewer gave a failure point (whatever the defect model thinks of it)."""
    turn_ids = Label.objects.filter(undone_at__isnull=True).exclude(failure_point="").values("turn_id")
    return list(Turn.objects.filter(pk__in=turn_ids).order_by("created_at", "id"))


@functools.lru_cache(maxsize=2)
def _training_sentences(files: tuple[tuple[str, float], ...]) -> tuple[str, ...]:
    """The seed's and the public data's sentences (read once per process while the files stay the same)."""
    from assistant.nlu.datasets import merge_sources
    from assistant.nlu.seed import seed_examples

    examples, _ = merge_sources([Path(path) for path, _ in files], split="devel", seed=seed_examples())
    return tuple(e.text for e in examples)


def request_texts() -> list[str]:
    """What people say to the product: the NLU's training sentences (the seed and the public data its best
    recipe trains on) and the stored turns that went well."""
    from learning.nlu.service import public_data_files

    files = tuple((str(p), p.stat().st_mtime) for p in public_data_files())
    texts = list(_training_sentences(files))
    good = Turn.objects.filter(
        defect_probability__lte=settings.GENERATED_LABEL_MAX_SUCCESS_DEFECT, status=Turn.Status.OK
    ).order_by("-id")[:50_000]
    texts += [turn_words(t) for t in good.only("id", "asr_text", "raw_text")]
    return [t for t in texts if t]


# --- the model ---------------------------------------------------------------------------


@dataclass
class FailurePointModel:
    version: str
    classifier: Any  # lightgbm.LGBMClassifier over `features`
    classes: list[str]
    lm: RequestLanguageModel
    good: GoodRequests = field(default_factory=lambda: GoodRequests.of([]))
    features: tuple[str, ...] = FEATURES  # a version trained before some of FEATURES existed has fewer

    def rows(self, turns: list[Turn]) -> FailureRows:
        """`turns` as this version sees them: its language model and the requests that went well then."""
        return load_rows(turns, self.lm, self.good)

    def predict(self, x: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(point, confidence) per row of FEATURES."""
        if not len(x):
            return [], np.zeros(0)
        if self.features != FEATURES:
            x = x[:, [FEATURES.index(name) for name in self.features]]
        p = self.classifier.predict_proba(x)
        best = p.argmax(axis=1)
        return [self.classes[i] for i in best], p[np.arange(len(x)), best]


def _load(path: Path) -> FailurePointModel:
    manifest, parts = read_pickled(path, FORMAT)
    features = tuple(manifest.get("features") or FEATURES)
    if not set(features) <= set(FEATURES):
        raise ValueError(f"{path} was trained on features this code no longer computes")
    return FailurePointModel(
        version=manifest["version"],
        classifier=parts["classifier"],
        classes=parts["classes"],
        lm=parts["lm"],
        good=parts.get("good") or GoodRequests.of([]),
        features=features,
    )


FAILURE_POINT_MODELS = ModelKind(
    "failure_point", _load, label="failure-point model", hint="run `python manage.py learn`"
)


class NotEnoughEvidence(ValueError):
    """Too few labelled failed turns (or of one point only) to train on."""


def held_out(ids: np.ndarray) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.sha256(f"failure-point-holdout|{i}".encode()).digest()[:4], "big") / 2**32 < HOLDOUT_SHARE
         for i in ids.tolist()],
        dtype=bool,
    )  # fmt: skip


def fit(
    rows: FailureRows, lm: RequestLanguageModel, good: GoodRequests | None = None, seed: int = 0
) -> tuple[FailurePointModel, dict[str, Any]]:
    import lightgbm

    labelled = np.array([label is not None for label in rows.label], dtype=bool)
    train = np.flatnonzero(labelled & ~held_out(rows.ids))
    y_all = np.array([label or "" for label in rows.label])
    if len(train) < MIN_LABELS or len(set(y_all[train].tolist())) < 2:
        raise NotEnoughEvidence(
            f"{len(train)} labelled failed turns of {len(set(y_all[train].tolist()))} points (need {MIN_LABELS}, 2)"
        )
    classes = sorted(set(y_all[train].tolist()))
    weight = np.where(rows.reviewed[train], REVIEWED_WEIGHT, 1.0)
    # Self-labels come from retried turns only, yet most failed turns are never retried (or not yet): each
    # labelled retried turn is also learned as it looked before the retry, so that where there is none the
    # trace and the words decide. Not "none", whose evidence is the retries that failed.
    again = np.flatnonzero((rows.x[train, FEATURES.index("retried")] > 0) & (y_all[train] != Label.FailurePoint.NONE))
    x = np.vstack([rows.x[train], before_the_retry(rows.x[train][again])])
    y = np.concatenate([y_all[train], y_all[train][again]])
    weight = np.concatenate([weight, weight[again]])
    classifier = lightgbm.LGBMClassifier(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=5,
        class_weight="balanced",
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )
    classifier.fit(x, y, sample_weight=weight)
    model = FailurePointModel(
        version="", classifier=classifier, classes=list(classifier.classes_), lm=lm, good=good or GoodRequests.of([])
    )
    counts = Counter(y_all[labelled].tolist())
    metrics: dict[str, Any] = {
        "labels": {p: counts[p] for p in POINTS if counts[p]},
        "reviewed": int(rows.reviewed.sum()),
        "turns": len(rows.ids),
        "classes": classes,
    }
    holdout = np.flatnonzero(labelled & held_out(rows.ids))
    if len(holdout):
        metrics["holdout"] = score(model, rows, holdout)
    return model, metrics


def before_the_retry(x: np.ndarray) -> np.ndarray:
    """Rows of FEATURES as if nobody had retried the turns."""
    out = x.copy()
    out[:, [FEATURES.index(name) for name in RETRY_FEATURES]] = 0.0
    return out


def score(model: FailurePointModel, rows: FailureRows, idx: np.ndarray) -> dict[str, Any]:
    """Accuracy and per-point recall on the labelled rows at `idx`."""
    predicted, _ = model.predict(rows.x[idx])
    truth = [rows.label[i] for i in idx.tolist()]
    recall = {}
    for point in POINTS:
        mine = [p == t for p, t in zip(predicted, truth, strict=True) if t == point]
        if mine:
            recall[point] = round(sum(mine) / len(mine), 4)
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    return {"n": len(idx), "accuracy": round(correct / max(1, len(idx)), 4), "recall": recall}


def gate(candidate: dict, active: dict | None) -> Decision:
    """Promote unless the active version is more accurate on the same held-out labelled turns."""
    if active is None:
        return Decision(True, False, "promoted: no active failure-point model")
    metrics = candidate.get("metrics") or {}
    mine, theirs = metrics.get("holdout"), metrics.get("active_on_holdout")
    if not mine or not theirs:
        return Decision(True, False, "promoted: no held-out labels to compare the versions on")
    # One binomial standard error of slack: a difference smaller than that is sampling noise.
    tolerance = max(float(settings.FAILURE_POINT_PROMOTION_TOLERANCE), math.sqrt(0.25 / max(1, mine["n"])))
    if mine["accuracy"] < theirs["accuracy"] - tolerance:
        return Decision(
            False,
            True,
            f"rejected: held-out accuracy {mine['accuracy']} against the active version's {theirs['accuracy']} "
            f"on the same {mine['n']} labelled turns",
            ("accuracy",),
        )
    return Decision(
        True, True, f"promoted: held-out accuracy {mine['accuracy']} (active version: {theirs['accuracy']})"
    )


# --- the learning step -------------------------------------------------------------------


def _window() -> tuple[datetime | None, datetime | None]:
    newest = Turn.objects.aggregate(m=Max("created_at"))["m"]
    if newest is None:
        return None, None
    return newest - timedelta(days=settings.FAILURE_POINT_DAYS), newest


def train_and_register(progress: Callable[[float, str], None], seed: int = 0) -> dict[str, Any]:
    """Train on the likely defects of the last FAILURE_POINT_DAYS and every reviewed turn; the gate decides."""
    started = time.monotonic()
    since, until = _window()
    if until is None:
        raise NotEnoughEvidence("no turns are stored yet")
    progress(0.05, "reading what people say")
    lm = RequestLanguageModel.fit(request_texts())
    good = GoodRequests.from_store()
    progress(0.3, "reading the failed turns")
    by_id = {t.pk: t for t in likely_defects(since, until)}
    by_id.update({t.pk: t for t in reviewed_turns()})
    turns = sorted(by_id.values(), key=lambda t: (t.created_at, t.pk))
    rows = load_rows(turns, lm, good)
    progress(0.6, f"training on {sum(label is not None for label in rows.label)} labelled of {len(rows.ids)} turns")
    model, metrics = fit(rows, lm, good, seed=seed)
    holdout = np.flatnonzero(np.array([label is not None for label in rows.label], dtype=bool) & held_out(rows.ids))
    try:
        active = FAILURE_POINT_MODELS.model()
    except Exception:
        active = None
    if active is not None and len(holdout):
        # The same turns in the active version's features (its own language model), on the same held-out rows.
        # Judged against the candidate's labels: a self-label depends on the requests that went well.
        metrics["active_on_holdout"] = score(active, replace(active.rows(turns), label=rows.label), holdout)
    newest = int(rows.ids.max()) if len(rows.ids) else 0
    version = version_name("fp", newest)
    out = Path(settings.MODEL_DIR) / "failure_point" / version
    manifest = {
        "format": FORMAT,
        "kind": "failure_point",
        "version": version,
        "features": list(FEATURES),
        "trained_through_turn": newest,
        "metrics": metrics,
    }
    model.version = version

    def write(path: Path) -> None:
        with path.open("wb") as handle:
            pickle.dump(
                {"classifier": model.classifier, "classes": model.classes, "lm": model.lm, "good": model.good}, handle
            )

    progress(0.85, "writing the artifact")
    write_artifact(out, manifest, {"model.pkl": write})
    row, decision = register_candidate(FAILURE_POINT_MODELS, out, manifest, gate=gate)
    return {
        "version": version,
        "status": row.status,
        "decision": decision.note if decision else None,
        "metrics": metrics,
        "seconds": round(time.monotonic() - started, 2),
    }


def store_points(progress: Callable[[float, str], None]) -> dict[str, Any]:
    """Store the active model's failure point on the likely defects of the last FAILURE_POINT_DAYS (a turn
    no longer a likely defect loses its point)."""
    model = FAILURE_POINT_MODELS.model()
    since, until = _window()
    if until is None:
        return {"stored": 0, "model": model.version}
    turns = likely_defects(since, until)
    no_longer = Q(defect_probability__lt=settings.FAILURE_POINT_MIN_DEFECT) | Q(defect_probability__isnull=True)
    Turn.objects.filter(no_longer, created_at__gte=since, failure_point__gt="").update(
        failure_point="", failure_point_confidence=None, failure_point_model_version=""
    )
    stored = 0
    step = 5000
    for start in range(0, len(turns), step):
        chunk = turns[start : start + step]
        rows = model.rows(chunk)
        points, confidence = model.predict(rows.x)
        for turn, point, p in zip(chunk, points, confidence.tolist(), strict=True):
            turn.failure_point, turn.failure_point_confidence = point, round(float(p), 4)
            turn.failure_point_model_version = model.version
        Turn.objects.bulk_update(
            chunk, ["failure_point", "failure_point_confidence", "failure_point_model_version"], batch_size=2000
        )
        stored += len(chunk)
        progress(0.9 + 0.1 * min(1.0, (start + step) / max(1, len(turns))), "storing failure points")
    return {"stored": stored, "model": model.version, "points": dict(Counter(t.failure_point for t in turns))}
