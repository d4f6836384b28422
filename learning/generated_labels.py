"""Labels generated from feedback: what the NLU should have read, concluded from how people reacted.

Alexa's first self-learning program turned low-dimensional feedback (defect or not, a successful
rephrase) into the labels its NLU retrained on; this does the same from the product's own store
(never the simulator's truth):

  rephrase  a turn that probably failed (P(defect) >= GENERATED_LABEL_MIN_DEFECT), rephrased (a
            feedback.Rephrase, learning/rephrases.py) into a turn that probably went well
            (P(defect) <= GENERATED_LABEL_MAX_SUCCESS_DEFECT), gets that turn's reading: its intent,
            and its slots placed on the failed turn's OWN words (exactly, else the closest words by
            edit distance: "kitchn" for "kitchen"). A chain of failed tries follows the rephrases to
            the first success. Confidence = P(rephrase) x P(defect of the try) x (1 - P(defect of the
            success)). Skipped: the same words again (nothing to learn about reading them), a success
            that is an answer to a question ("yes") rather than a request, a slot no word carries.
  success   a turn that went well (P(defect) <= GENERATED_LABEL_MAX_SUCCESS_DEFECT, answered, no
            rewrite) confirms its own reading, confidence 1 - P(defect): what works, kept working.

A reviewer's label of the same turn wins at training time (learning/nlu/service.py). Each run
recomputes the labels of the last GENERATED_LABEL_DAYS of turns (before the newest one), so a label
follows the newest defect scores and rephrases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from rapidfuzz.distance import Levenshtein

from assistant.intents import DIALOGUE_INTENTS, INTENTS, OUT_OF_SCOPE
from feedback.labels import turn_words, word_start
from feedback.models import GeneratedLabel, Label, Rephrase, Turn

GENERATOR_VERSION = "generated-labels-1"
MAX_CHAIN = 3  # tries followed from a failed turn to the rephrase that worked


def learnable(turn: Turn) -> bool:
    """A reading worth teaching: a request a skill handles, answered."""
    return (
        turn.status == Turn.Status.OK
        and turn.intent in INTENTS
        and turn.intent != OUT_OF_SCOPE
        and turn.intent not in DIALOGUE_INTENTS
    )


def place_slot(text: str, value: str, max_distance: float = 0.25) -> str | None:
    """The words of `text` that say `value`: the value itself, else the run of as many words (one more or
    one fewer) with the smallest normalised edit distance, if at most `max_distance`; None otherwise."""
    if not value:
        return None
    if word_start(text, value) is not None:
        return value
    words, size = text.split(), len(value.split())
    best, best_distance = None, max_distance
    for n in {max(1, size - 1), size, size + 1}:
        for i in range(len(words) - n + 1):
            candidate = " ".join(words[i : i + n])
            distance = Levenshtein.normalized_distance(candidate, value)
            if distance <= best_distance:
                best, best_distance = candidate, distance
    return best


def success_after(rephrase: Rephrase, by_first: dict[int, list[Rephrase]]) -> tuple[Turn, float] | None:
    """The first try after `rephrase.first` that went well, following the rephrases, with the product of
    the links' scores and the failed tries' defect probabilities on the way."""
    link, weight = rephrase, 1.0
    for _ in range(MAX_CHAIN):
        second = link.second
        weight *= link.score
        if second.defect_probability is None:
            return None
        if second.defect_probability <= settings.GENERATED_LABEL_MAX_SUCCESS_DEFECT:
            return second, weight * (1.0 - second.defect_probability)
        if second.defect_probability < settings.GENERATED_LABEL_MIN_DEFECT:
            return None  # neither a failure nor a success: nothing to conclude
        weight *= second.defect_probability
        nexts = by_first.get(second.pk)
        if not nexts:
            return None
        link = max(nexts, key=lambda r: r.score)
    return None


# What success_after() and its callers read of a rephrase's second turn.
SECOND_TURN_FIELDS = ("second__id", "second__status", "second__defect_probability", "second__intent", "second__slots")


def rephrases_from(first_ids: list[int], depth: int = 1) -> dict[int, list[Rephrase]]:
    """The rephrase links out of these turns by first turn; with `depth` > 1 also those out of their retries,
    and so on: what success_after() follows."""
    by_first: dict[int, list[Rephrase]] = defaultdict(list)
    frontier = list(first_ids)
    for _ in range(depth):
        seconds = set()
        for start in range(0, len(frontier), 5000):
            links = Rephrase.objects.filter(first_id__in=frontier[start : start + 5000]).select_related("second")
            for link in links.only("first", "score", *SECOND_TURN_FIELDS):
                by_first[link.first_id].append(link)
                seconds.add(link.second_id)
        frontier = sorted(seconds - by_first.keys())
        if not frontier:
            break
    return by_first


def first_success(turn_id: int, by_first: dict[int, list[Rephrase]]) -> tuple[Turn, float] | None:
    """success_after() the turn's likeliest rephrase, or None when it was not rephrased."""
    links = by_first.get(turn_id)
    return success_after(max(links, key=lambda r: r.score), by_first) if links else None


def _rephrase_label(failed: Turn, success: Turn, weight: float) -> GeneratedLabel | None:
    if not learnable(success):
        return None
    text = turn_words(failed)
    if not text or text == turn_words(success):
        return None
    slots = {}
    for name, value in (success.slots or {}).items():
        words = place_slot(text, str(value))
        if words is None:
            return None  # a slot the failed turn's words do not carry: the tagger would learn it as nothing
        slots[name] = words
    if failed.intent == success.intent and (failed.slots or {}) == slots:
        return None  # the same reading: it failed for another reason than understanding
    return GeneratedLabel(
        turn=failed,
        intent=success.intent,
        slots=slots,
        confidence=round(weight * float(failed.defect_probability), 4),
        source=GeneratedLabel.Source.REPHRASE,
        evidence=success,
        generator_version=GENERATOR_VERSION,
    )


def generate_labels(now=None) -> dict[str, Any]:
    """Recompute the generated labels of the last GENERATED_LABEL_DAYS of turns (counted back from the
    newest turn, or `now`); returns counts."""
    now = now or Turn.objects.aggregate(newest=Max("created_at"))["newest"] or timezone.now()
    since = now - timedelta(days=settings.GENERATED_LABEL_DAYS)
    # A reviewer's reading wins; a label naming only where a turn failed says nothing of its reading.
    reviewed = set(
        Label.objects.filter(turn__created_at__gte=since).exclude(intent="").values_list("turn_id", flat=True)
    )
    rephrases = list(
        Rephrase.objects.filter(first__created_at__gte=since).select_related("first", "second").order_by("id")
    )
    by_first: dict[int, list[Rephrase]] = {}
    for r in rephrases:
        by_first.setdefault(r.first_id, []).append(r)
    labels: dict[int, GeneratedLabel] = {}
    for r in rephrases:
        failed = r.first
        if failed.pk in reviewed or failed.defect_probability is None:
            continue
        if failed.defect_probability < settings.GENERATED_LABEL_MIN_DEFECT:
            continue
        found = success_after(r, by_first)
        label = _rephrase_label(failed, *found) if found else None
        if label is not None and (failed.pk not in labels or label.confidence > labels[failed.pk].confidence):
            labels[failed.pk] = label
    rephrase_count = len(labels)
    went_well = Turn.objects.filter(
        created_at__gte=since,
        status=Turn.Status.OK,
        defect_probability__lte=settings.GENERATED_LABEL_MAX_SUCCESS_DEFECT,
        rewrite__isnull=True,
    ).exclude(pk__in=reviewed)
    for turn in went_well.only("id", "asr_text", "raw_text", "intent", "slots", "status", "defect_probability"):
        if turn.pk in labels or not learnable(turn):
            continue
        text = turn_words(turn)
        if not text or any(word_start(text, str(v)) is None for v in (turn.slots or {}).values()):
            continue
        labels[turn.pk] = GeneratedLabel(
            turn=turn,
            intent=turn.intent,
            slots=dict(turn.slots or {}),
            confidence=round(1.0 - float(turn.defect_probability), 4),
            source=GeneratedLabel.Source.SUCCESS,
            generator_version=GENERATOR_VERSION,
        )
    with transaction.atomic():
        GeneratedLabel.objects.filter(turn__created_at__gte=since).delete()
        GeneratedLabel.objects.bulk_create(labels.values(), batch_size=1000)
    return {
        "labels": len(labels),
        "from_rephrases": rephrase_count,
        "from_successes": len(labels) - rephrase_count,
        "rephrases_read": len(rephrases),
        "since": since.isoformat(),
    }


def training_labels(min_confidence: float | None = None) -> Iterable[GeneratedLabel]:
    """The generated labels the NLU trains on: confident enough, and only where no reviewer has spoken.
    Success labels of one intent are capped at GENERATED_SUCCESS_PER_INTENT (the newest), so frequent
    requests do not swamp rare ones."""
    floor = settings.GENERATED_LABEL_MIN_CONFIDENCE if min_confidence is None else min_confidence
    rows = (
        GeneratedLabel.objects.filter(confidence__gte=floor)
        .exclude(turn__in=Label.objects.filter(undone_at__isnull=True).exclude(intent="").values("turn"))
        .select_related("turn")
        .order_by("-turn__created_at", "-id")
    )
    per_intent: dict[str, int] = {}
    for row in rows:
        if row.source == GeneratedLabel.Source.SUCCESS:
            per_intent[row.intent] = per_intent.get(row.intent, 0) + 1
            if per_intent[row.intent] > settings.GENERATED_SUCCESS_PER_INTENT:
                continue
        yield row


def recent_successes() -> list[GeneratedLabel]:
    """Requests that recently went well: the success labels the NLU trains on, newest first, at most
    NLU_WORKS_SET_SIZE. The NLU's gate and the context re-ranker's read them as "what works must keep working"."""
    return [label for label in training_labels() if label.source == GeneratedLabel.Source.SUCCESS][
        : settings.NLU_WORKS_SET_SIZE
    ]
