"""Concepts taught in conversation: "turn on study mode" -> "What do you mean by study mode?" ->
"turn off the living room lights and set the heating to 20 degrees" -> confirmed, stored, and
applied whenever the user says it again, also in other words ("study mode on", "start study mode").
"When I say goodnight, turn off all the lights and close the garage" teaches one directly.

    concept_key(name)                       the normalised name a concept is found by
    invoked(user_id, understood)            the user's concept an utterance asks for, if any
    read_definition(text, understand)       the requests a definition stands for, or why it is none
    teach(user_id, name, steps, definition) store (or change) a concept
    common(min_users)                       concepts several people taught the same way
    approve_shared / retire_shared          serve one of those to everyone (staff, in review/), or stop

A definition is read by the NLU itself, clause by clause; every clause must be something the
assistant can do (a skill's request, read with CONCEPT_STEP_CONFIDENCE), so a concept never
stands for another concept (no cycles) and never for words it does not understand.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from rapidfuzz import fuzz

from assistant.intents import INTENTS
from assistant.turns import NluResult
from teaching.models import Concept, SharedConcept

CONCEPT_INTENTS = frozenset({"concept_run", "concept_teach"})
# Skills whose requests a concept can stand for: things the assistant does, not talk about it.
STEP_SKILLS = frozenset({"smart_home", "music", "timers", "lists", "weather", "datetime", "sports", "restaurants"})
MAX_STEPS = 6
MAX_NAME_CHARS = 60
_SUFFIX = re.compile(r"\s+(mode|routine|scene|setting|settings|brightness|time)$")
_ARTICLE = re.compile(r"^(the|my|a|an|our)\s+")
_CLAUSES = re.compile(r"\s+(?:and then|and also|then|and|after that|also)\s+")
_LEAD = re.compile(r"^(?:i mean|it means|that means|means|mean|is|should be|should|to|please|you should|just)\s+")


def concept_key(name: str) -> str:
    """ "Study mode", "the study", "STUDY MODE" -> "study"; "good night" -> "goodnight"."""
    text = " ".join(re.sub(r"[^\w\s]", " ", name.lower()).split())
    text = _ARTICLE.sub("", text)
    text = _SUFFIX.sub("", text)
    return text.replace(" ", "")


@dataclass(frozen=True)
class Definition:
    steps: list[dict]  # [{"text", "intent", "slots"}]; empty when `problem` says why
    problem: str = ""


def _clauses(text: str) -> list[list[str]]:
    """Ways to read a definition: as one request, or split at "and", "then"…"""
    whole = _LEAD.sub("", text.strip())
    split = [_LEAD.sub("", c.strip()) for c in _CLAUSES.split(whole) if c.strip()]
    return [split, [whole]] if len(split) > 1 else [[whole]]


def _usable(reading: NluResult) -> bool:
    spec = INTENTS.get(reading.intent)
    return (
        spec is not None
        and spec.skill in STEP_SKILLS
        and not reading.out_of_scope
        and reading.confidence >= settings.CONCEPT_STEP_CONFIDENCE
    )


def read_definition(text: str, understand: Callable[[str], NluResult]) -> Definition:
    """The requests `text` stands for: every clause must read as something the assistant does."""
    if not text.strip():
        return Definition([], "I didn't hear what it should do.")
    tried: list[NluResult] = []
    for clauses in _clauses(text):
        if len(clauses) > MAX_STEPS:
            continue
        readings = [understand(clause) for clause in clauses]
        tried.extend(readings)
        if readings and all(_usable(r) for r in readings):
            return Definition([{"text": r.text, "intent": r.intent, "slots": dict(r.slots)} for r in readings])
    if any(r.intent in CONCEPT_INTENTS for r in tried):
        return Definition([], "A name I learn can only stand for things I can do, not for another name.")
    return Definition([], "I couldn't turn that into things I can do.")


def shadows_builtin(name: str, understand: Callable[[str], NluResult]) -> bool:
    """A name that already is a command ("turn on the lights") cannot be taught to mean something
    else; a greeting ("goodnight") can."""
    reading = understand(name)
    spec = INTENTS.get(reading.intent)
    return (
        spec is not None
        and spec.skill in STEP_SKILLS
        and not reading.out_of_scope
        and reading.confidence >= settings.CONCEPT_STEP_CONFIDENCE
    )


def invoked(user_id: int, understood: NluResult) -> Concept | SharedConcept | None:
    """The user's concept this utterance asks for (their own, else one staff shared with everyone):
    - its name is the whole utterance ("goodnight", whatever else that means);
    - the NLU reads a concept request ("turn on study mode", "study mode on") that names it, or
      tags a name close to it;
    - the NLU cannot place the utterance (out of scope) and it says one's whole name."""
    whole = concept_key(understood.text)
    runs = understood.intent == "concept_run"
    if not runs and not understood.out_of_scope and len(whole) > MAX_NAME_CHARS:
        return None
    own = list(Concept.objects.filter(user_id=user_id).only("id", "key", "name", "steps"))
    # Staff-approved defaults for the names this user has not taught a meaning of their own.
    taught = {c.key for c in own}
    concepts: list[Concept | SharedConcept] = [*own, *(c for c in shared_concepts() if c.key not in taught)]
    if not concepts:
        return None
    for concept in concepts:
        if concept.key == whole:
            return concept
    if not runs and not understood.out_of_scope:
        return None

    # The longest taught name among the words said ("spring cleaning mode on" is not "cleaning"); an
    # utterance the NLU could not place must say the whole name ("I'm reading a book" is not "reading mode").
    def says(concept: Concept | SharedConcept) -> bool:
        name = _bare(concept.name) if runs else " ".join(concept.name.lower().split())
        return re.search(rf"\b{re.escape(name)}\b", understood.text) is not None

    named = [c for c in concepts if says(c)]
    if named:
        return max(named, key=lambda c: len(c.name))
    tagged = understood.slots.get("concept")
    if not runs or not tagged:
        return None
    best = max(((fuzz.ratio(concept_key(tagged), c.key), c) for c in concepts), key=lambda s: s[0])
    return best[1] if best[0] >= 85 else None


def _bare(name: str) -> str:
    """ "study mode" -> "study": the words that name it without the kind of thing it is."""
    return _SUFFIX.sub("", " ".join(name.lower().split())) or name.lower()


def teach(user_id: int, name: str, steps: list[dict], definition: str, now: datetime) -> tuple[Concept, bool]:
    """Store the concept (a name taught again is changed); returns (concept, whether it changed one)."""
    key = concept_key(name)
    fields = {"name": name, "steps": steps, "definition": definition[:1000], "updated_at": now}
    concept, created = Concept.objects.update_or_create(
        user_id=user_id, key=key, defaults=fields, create_defaults={**fields, "created_at": now}
    )
    return concept, not created


def describe_steps(steps: list[dict]) -> str:
    """ "turn off the living room lights, then set the heating to 20 degrees" """
    texts = [str(s.get("text", "")) for s in steps]
    return ", then ".join(texts)


def split_teaching(understood: NluResult) -> tuple[str, str] | None:
    """(name, definition) of "when I say goodnight turn off all the lights": the concept span the
    NLU tagged, and the words after it."""
    span = next((s for s in understood.spans if s.type == "concept"), None)
    if span is None:
        return None
    name = span.value.strip()
    rest = understood.text[span.end :].strip()
    if kind := re.match(r"(mode|brightness|routine|scene)\b\s*", rest):
        name, rest = f"{name} {kind.group(1)}", rest[kind.end() :]  # "study mode": the name as said
    return name, _LEAD.sub("", rest)


def _signature(concept: Concept) -> str:
    """What a concept is, whoever taught it: its name and the requests it stands for (not their wording)."""
    meaning = repr([(s.get("intent"), sorted((s.get("slots") or {}).items())) for s in concept.steps])
    return hashlib.sha256(f"{concept.key}|{meaning}".encode()).hexdigest()[:16]


def common(min_users: int) -> list[dict]:
    """Concepts at least `min_users` distinct people taught the same way (same name, same requests):
    offered to reviewers as global defaults, most taught first. Each: name, key, users, steps (the latest
    teacher's wording), signature (which group it is, for approve_shared)."""
    groups: dict[str, set[int]] = {}
    latest: dict[str, Concept] = {}
    for concept in Concept.objects.order_by("updated_at", "id").only("user_id", "key", "name", "steps", "updated_at"):
        signature = _signature(concept)
        groups.setdefault(signature, set()).add(concept.user_id)
        latest[signature] = concept
    found = [
        {"name": latest[k].name, "key": latest[k].key, "users": len(users), "steps": latest[k].steps, "signature": k}
        for k, users in groups.items()
        if len(users) >= min_users
    ]
    return sorted(found, key=lambda c: (-c["users"], c["key"]))


class SharingError(ValueError):
    """A shared concept cannot be approved or retired as asked (the message says why)."""


def shared_concepts() -> list[SharedConcept]:
    """The concepts staff approved for everyone, still served."""
    return list(SharedConcept.objects.filter(retired_at__isnull=True))


def approve_shared(signature: str, reviewer, now: datetime) -> SharedConcept:
    """Serve a concept several people taught the same way to everyone who has not taught their own."""
    group = next((c for c in common(settings.CONCEPT_GLOBAL_MIN_USERS) if c["signature"] == signature), None)
    if group is None:
        raise SharingError(
            f"No concept is taught that way by {settings.CONCEPT_GLOBAL_MIN_USERS} or more people any more."
        )
    with transaction.atomic():
        if SharedConcept.objects.select_for_update().filter(key=group["key"], retired_at__isnull=True).exists():
            raise SharingError(f"“{group['name']}” is already shared; retire it first to share another meaning.")
        return SharedConcept.objects.create(
            name=group["name"],
            key=group["key"],
            steps=group["steps"],
            teachers=group["users"],
            approved_by=reviewer,
            approved_at=now,
        )


def retire_shared(shared: SharedConcept, reviewer, now: datetime) -> bool:
    """Stop serving a shared concept; False if it was retired already."""
    return (
        SharedConcept.objects.filter(pk=shared.pk, retired_at__isnull=True).update(retired_at=now, retired_by=reviewer)
        == 1
    )
