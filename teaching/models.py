"""What the assistant is taught in conversation, and what it is waiting to be told.

PendingQuestion: a question the assistant asked in a session ("Which device?", "Shall I open the
garage door?", "Did I answer your question?"); the session's next utterance is read as its answer
first (teaching/dialogue.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models


class PendingQuestion(models.Model):
    """The one question a session is waiting for an answer to (a newer question replaces it)."""

    class Kind(models.TextChoices):
        SLOT = "slot", "A value the request lacked"  # "Which device do you want to know about?"
        CONFIRM = "confirm", "Confirm an action"  # "Do you want me to open the garage door?"
        SURVEY = "survey", "Did I answer your question?"
        DEFINE = "define", "What a taught name means"  # "What do you mean by study mode?"
        GUIDED = "guided", "Learning your preferences"  # "Which team do you support?"

    session = models.OneToOneField("feedback.Session", on_delete=models.CASCADE, related_name="pending_question")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pending_questions")
    asked_in = models.ForeignKey(
        "feedback.Turn", on_delete=models.CASCADE, related_name="questions_asked", help_text="The turn that asked."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    prompt = models.TextField(help_text="The question as the assistant said it.")
    # SLOT: the request understood so far and the slot it lacks. CONFIRM: the action to carry out on yes.
    intent = models.CharField(max_length=80, blank=True)
    slots = models.JSONField(default=dict, blank=True)
    needs = models.CharField(max_length=40, blank=True)
    action = models.JSONField(null=True, blank=True)
    asked_at = models.DateTimeField()
    # Answers that answered nothing; the question is dropped after DIALOGUE_MAX_REASKS of them.
    reasks = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} in session {self.session_id}: {self.prompt[:60]!r}"

    def is_stale(self, now) -> bool:
        """An answer this late answers nothing: the next utterance is a new request."""
        return now - self.asked_at > timedelta(minutes=settings.PENDING_QUESTION_MINUTES)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "prompt": self.prompt,
            "intent": self.intent,
            "slots": self.slots,
            "needs": self.needs,
            "action": self.action,
            "asked_in": self.asked_in_id,
            "reasks": self.reasks,
        }


class Preference(models.Model):
    """Something the assistant knows about its user: one value per kind ("team", "genre"…).

    Taught ones come from what the user said ("I'm a Warriors fan"); a later statement of the
    same kind replaces the value (and the reply says so). Inferred ones (the preference models)
    never replace a taught one.
    """

    class Kind(models.TextChoices):
        NAME = "name", "Name"
        TEAM = "team", "Team"
        CUISINE = "cuisine", "Food"
        GENRE = "genre", "Music"
        ARTIST = "artist", "Artist"
        UNITS = "units", "Temperature units"
        ROOM = "room", "Default room"

    class Source(models.TextChoices):
        TAUGHT = "taught", "You told me"
        INFERRED = "inferred", "Inferred from what you asked"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value = models.CharField(max_length=100, help_text="Canonical value: a team's name, a genre, a room…")
    said = models.CharField(max_length=300, blank=True, help_text="The user's own words for it.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.TAUGHT)
    confidence = models.FloatField(default=1.0)
    # The turns it came from (taught: the statement; inferred: the requests behind it).
    evidence = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_preference_per_kind")]

    def __str__(self) -> str:
        return f"{self.user}: {self.kind} = {self.value} ({self.source})"


class Concept(models.Model):
    """A name the user taught the assistant ("study mode") and the requests it stands for.

    `steps` are the understood requests of the definition, [{"text", "intent", "slots"}], resolved
    again each time the concept is used (so "the living room lights" are the ones there are then).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="concepts")
    name = models.CharField(max_length=100, help_text="As the user said it: study mode, goodnight.")
    key = models.CharField(max_length=100, help_text="Normalised name the concept is found by.")
    steps = models.JSONField(default=list)
    definition = models.CharField(max_length=1000, help_text="The user's own words for what it means.")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_concept_per_name")]

    def __str__(self) -> str:
        return f"{self.user}: {self.name!r} = {self.definition!r}"


class SharedConcept(models.Model):
    """A concept staff approved as everyone's default (review/, from concepts CONCEPT_GLOBAL_MIN_USERS or
    more people taught the same way): served to whoever has not taught one of that name themselves. Retiring
    it (`retired_at`) stops serving it and keeps the record of who decided what, and when."""

    name = models.CharField(max_length=100)
    key = models.CharField(max_length=100, help_text="Normalised name the concept is found by.")
    steps = models.JSONField(default=list, help_text="[{text, intent, slots}] as its teachers defined it.")
    teachers = models.PositiveIntegerField(help_text="Distinct people who had taught it so when it was approved.")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField()
    retired_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "-approved_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(retired_at__isnull=True), name="one_shared_concept_per_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name!r} for everyone{' (retired)' if self.retired_at else ''}"


class Erasure(models.Model):
    """The user had everything learned about them forgotten at `erased_at` (the "What you've
    taught me" page): the personal learners skip what they said before it, and a personal layer
    built before it is not served for them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="erasure")
    erased_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user} forgotten at {self.erased_at:%Y-%m-%d %H:%M}"


class InferredPreference(models.Model):
    """What a preference model version (learning/preferences.py) infers a user likes, for one kind.

    One row per (version, user, kind): the registry's active "preference" version is the one served
    (assistant/skills/liking.py), so promoting or rolling back a version swaps every row at once. A
    taught Preference of the same kind always wins over it.
    """

    model_version = models.CharField(max_length=80, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inferred_preferences")
    kind = models.CharField(max_length=20, choices=Preference.Kind.choices)
    value = models.CharField(max_length=100, help_text="The most likely value.")
    probability = models.FloatField(help_text="P(value) under the user's posterior distribution.")
    distribution = models.JSONField(default=dict, help_text="The most likely values and their probabilities.")
    # The turns behind it, most weighty first (shown on the "What you've taught me" page).
    evidence = models.JSONField(default=list, blank=True)
    weight = models.FloatField(default=0.0, help_text="Decayed evidence behind the distribution.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["kind"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "user", "kind"], name="one_inference_per_version_kind")
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.kind} ~ {self.value} ({self.probability:.2f}, {self.model_version})"


class ForgottenPreference(models.Model):
    """The user asked to forget what was inferred of one kind: the preference models skip the
    evidence of that kind from before `forgotten_at` (else it would be inferred again)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forgotten_preferences")
    kind = models.CharField(max_length=20, choices=Preference.Kind.choices)
    forgotten_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_forgetting_per_kind")]

    def __str__(self) -> str:
        return f"{self.user} forgot {self.kind} at {self.forgotten_at:%Y-%m-%d %H:%M}"
