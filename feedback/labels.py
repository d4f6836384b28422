"""Reviewers' labels on turns: checked, stored with who and when, undone, and exported.

    label_turn(turn, reviewer, intent=…, slots_text=…, failure_point=…)   a new label (LabelError if wrong)
    label_all(turns, reviewer, intent=…, failure_point=…)                  the same label for a cluster's turns
    undo(label, reviewer)                                                  the label (or pair verdict) no longer counts
    reviewed()                                                             each labelled turn's current label
    neighbours(turn)                                                       the turns it may retry or be retried by
    label_rephrase(first, second, reviewer, is_rephrase=…, sampled=…)      was `second` a retry of `first`
    random_pairs(count)                                                    pairs drawn at random, to judge
    reviewed_rephrases()                                                   each judged pair's current verdict
    as_slurp_jsonl(labels) / as_rasa_yaml(labels)                          what assistant/nlu/datasets.py reads

A slot's value must be words of the turn itself (what the user said, as normalised), so a label is a
span over the turn's words, as SLURP's annotations are.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

import yaml
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max, Min, OuterRef, QuerySet, Subquery
from django.utils import timezone

from assistant.intents import INTENTS, OUT_OF_SCOPE
from assistant.text import normalise
from feedback.models import Label, RephraseLabel, Turn

MAX_SLOTS = 10
_SLOT_LINE = re.compile(r"^\s*([a-z_]{1,40})\s*[=:]\s*(.+?)\s*$")


class LabelError(ValueError):
    """A label that cannot be stored, with what to fix."""


def turn_words(turn: Turn) -> str:
    return normalise(turn.asr_text or turn.raw_text or "")


def parse_slots(text: str) -> dict[str, str]:
    """ "place_name = kitchen" lines -> {"place_name": "kitchen"}."""
    slots: dict[str, str] = {}
    for number, line in enumerate(str(text or "").splitlines(), 1):
        if not line.strip():
            continue
        match = _SLOT_LINE.match(line)
        if match is None:
            raise LabelError(f'Line {number}: write each slot as "name = words of the turn".')
        slots[match.group(1)] = normalise(match.group(2))
    if len(slots) > MAX_SLOTS:
        raise LabelError(f"At most {MAX_SLOTS} slots.")
    return slots


def check(turn: Turn, intent: str, slots: dict[str, str], failure_point: str) -> None:
    if not intent and not failure_point:
        raise LabelError("Give an intent, a failure point, or both.")
    if failure_point and failure_point not in Label.FailurePoint.values:
        raise LabelError(f"Unknown failure point {failure_point!r}.")
    if intent and intent != OUT_OF_SCOPE and intent not in INTENTS:
        raise LabelError(f"Unknown intent {intent!r}.")
    if slots and not intent:
        raise LabelError("Slots need an intent.")
    allowed = set(INTENTS[intent].slots) if intent in INTENTS else set()
    words = turn_words(turn)
    for name, value in slots.items():
        if name not in allowed:
            raise LabelError(
                f"{intent} has no slot {name!r}" + (f" (it has {', '.join(sorted(allowed))})." if allowed else ".")
            )
        if word_start(words, value) is None:
            raise LabelError(f"{name}: {value!r} is not words of this turn.")


def label_turn(
    turn: Turn,
    reviewer: AbstractBaseUser,
    *,
    intent: str = "",
    slots_text: str = "",
    failure_point: str = "",
    now: datetime | None = None,
) -> Label:
    intent, failure_point = str(intent or "").strip()[:80], str(failure_point or "").strip()
    slots = parse_slots(slots_text)
    check(turn, intent, slots, failure_point)
    return Label.objects.create(
        turn=turn,
        reviewer=reviewer,
        intent=intent,
        slots=slots,
        failure_point=failure_point,
        created_at=now or timezone.now(),
    )


def label_all(
    turns: Iterable[Turn],
    reviewer: AbstractBaseUser,
    *,
    intent: str = "",
    failure_point: str = "",
    now: datetime | None = None,
) -> list[Label]:
    """The same intent and failure point for many turns (a cluster): all stored, or none if one is wrong."""
    now = now or timezone.now()
    with transaction.atomic():
        return [label_turn(t, reviewer, intent=intent, failure_point=failure_point, now=now) for t in turns]


def undo(label: Label | RephraseLabel, reviewer: AbstractBaseUser, now: datetime | None = None) -> bool:
    """Undo a label on a turn or a verdict on a pair; False if it was undone already."""
    with transaction.atomic():
        done = (
            type(label)
            .objects.filter(pk=label.pk, undone_at__isnull=True)
            .update(undone_at=now or timezone.now(), undone_by=reviewer)
        )
    return done == 1


def reviewed() -> QuerySet[Label]:
    """Each labelled turn's current label (its latest one not undone)."""
    latest = Label.objects.filter(turn=OuterRef("turn"), undone_at__isnull=True).order_by("-created_at", "-id")
    return (
        Label.objects.filter(undone_at__isnull=True, pk=Subquery(latest.values("pk")[:1]))
        .select_related("turn")
        .order_by("turn_id")
    )


def neighbours(turn: Turn) -> tuple[list[Turn], list[Turn]]:
    """The user's turns that may pair with `turn` as first try and retry (the pairs the rephrase detector
    judges): up to REPHRASE_LOOKBACK turns before and after it, closer than REPHRASE_MAX_GAP_S."""
    gap = timedelta(seconds=float(settings.REPHRASE_MAX_GAP_S))
    lookback = int(settings.REPHRASE_LOOKBACK)
    mine = Turn.objects.filter(user_id=turn.user_id).exclude(pk=turn.pk)
    before = mine.filter(created_at__gt=turn.created_at - gap, created_at__lte=turn.created_at)
    before = before.exclude(created_at=turn.created_at, id__gt=turn.pk).order_by("-created_at", "-id")
    after = mine.filter(created_at__gte=turn.created_at, created_at__lt=turn.created_at + gap)
    after = after.exclude(created_at=turn.created_at, id__lt=turn.pk).order_by("created_at", "id")
    return list(before[:lookback])[::-1], list(after[:lookback])


def random_pairs(
    count: int, *, turns: QuerySet[Turn] | None = None, rng: random.Random | None = None
) -> list[tuple[Turn, Turn]]:
    """Up to `count` pairs the rephrase detector judges, none judged yet, drawn uniformly at random from those
    whose later turn is in `turns` (default: every turn). A reviewer's verdicts on these stand for every pair,
    where the pairs they open from the inbox are mostly around failures: the detector's gate measures on these.

    Uniform: a turn id uniformly from the id range (an id with no turn draws again), then one of the
    REPHRASE_LOOKBACK places before that turn uniformly (a place with no turn draws again)."""
    rng = rng or random.Random()
    turns = Turn.objects.all() if turns is None else turns
    bounds = turns.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None or count <= 0:
        return []
    lookback = int(settings.REPHRASE_LOOKBACK)
    drawn: list[tuple[Turn, Turn]] = []
    seen: set[tuple[int, int]] = set()
    for _ in range(50 * count):  # draws that find no pair are most of them when few turns follow one another
        later = turns.filter(pk=rng.randint(bounds["low"], bounds["high"])).first()
        place = rng.randrange(lookback)
        if later is None:
            continue
        before = neighbours(later)[0][::-1]  # the nearest first
        if place >= len(before) or (before[place].pk, later.pk) in seen:
            continue
        first = before[place]
        seen.add((first.pk, later.pk))
        if RephraseLabel.objects.filter(first=first, second=later, undone_at__isnull=True).exists():
            continue
        drawn.append((first, later))
        if len(drawn) >= count:
            break
    return drawn


def label_rephrase(
    first: Turn,
    second: Turn,
    reviewer: AbstractBaseUser,
    *,
    is_rephrase: bool,
    sampled: bool = False,
    now: datetime | None = None,
) -> RephraseLabel:
    """A reviewer's verdict on whether `second` was a retry of `first`: two turns of one user, `second` the
    later, less than REPHRASE_MAX_GAP_S apart (the pairs the rephrase detector judges). `sampled`: the pair
    was drawn by random_pairs, not chosen."""
    if first.user_id != second.user_id:
        raise LabelError("Both turns must be one person's.")
    if first.pk == second.pk:
        raise LabelError("A turn is not a retry of itself.")
    gap = (second.created_at - first.created_at).total_seconds()
    if (second.created_at, second.pk) < (first.created_at, first.pk):
        raise LabelError("The retry must be the later turn.")
    if gap >= float(settings.REPHRASE_MAX_GAP_S) or first.pk not in {t.pk for t in neighbours(second)[0]}:
        raise LabelError(
            f"Only a turn's {settings.REPHRASE_LOOKBACK} turns before it, under {settings.REPHRASE_MAX_GAP_S:.0f} s "
            "before, can be what it retried."
        )
    return RephraseLabel.objects.create(
        first=first,
        second=second,
        is_rephrase=bool(is_rephrase),
        sampled=bool(sampled),
        reviewer=reviewer,
        created_at=now or timezone.now(),
    )


def reviewed_rephrases() -> QuerySet[RephraseLabel]:
    """Each judged pair's current verdict (its latest one not undone)."""
    latest = RephraseLabel.objects.filter(
        first=OuterRef("first"), second=OuterRef("second"), undone_at__isnull=True
    ).order_by("-created_at", "-id")
    return RephraseLabel.objects.filter(undone_at__isnull=True, pk=Subquery(latest.values("pk")[:1])).order_by(
        "second_id", "first_id"
    )


def word_start(text: str, value: str) -> int | None:
    """Where `value` first stands in `text` as whole words, or None."""
    at = f" {text} ".find(f" {value} ")  # the padded string's space stands for the value's first character
    return at if value and at >= 0 else None


def placed(text: str, slots: dict[str, str]) -> list[tuple[int, str, str]]:
    """(start, slot, value) of each slot whose value is words of `text`, in the order they stand."""
    found = [(word_start(text, value), name, value) for name, value in slots.items()]
    return sorted((at, name, value) for at, name, value in found if at is not None)


def _inline(text: str, slots: dict[str, str], mark) -> str:
    out, rest = [], text
    for _, name, value in placed(text, slots):
        head, _, tail = f" {rest} ".partition(f" {value} ")
        out.append(head.strip())
        out.append(mark(name, value))
        rest = tail.strip()
    out.append(rest)
    return " ".join(part for part in out if part)


def as_slurp_jsonl(labels: Iterable[Label]) -> str:
    """SLURP rows: sentence, intent, annotation with "[slot : value]" (labels with an intent only)."""
    rows = []
    for label in labels:
        if not label.intent:
            continue
        text = turn_words(label.turn)
        annotation = _inline(text, label.slots, lambda name, value: f"[{name} : {value}]")
        rows.append(
            json.dumps({"sentence": text, "intent": label.intent, "annotation": annotation}, ensure_ascii=False)
        )
    return "\n".join(rows) + ("\n" if rows else "")


def as_rasa_yaml(labels: Iterable[Label]) -> str:
    """A Rasa NLU file: one `- intent:` per intent, its examples with "[value](slot)" entities."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        if label.intent:
            text = turn_words(label.turn)
            by_intent[label.intent].append(_inline(text, label.slots, lambda name, value: f"[{value}]({name})"))
    doc = {
        "version": "3.1",
        "nlu": [
            {"intent": intent, "examples": "".join(f"- {e}\n" for e in examples)}
            for intent, examples in sorted(by_intent.items())
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
