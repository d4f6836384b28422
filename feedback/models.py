"""The feedback store: what happened in every turn, and how people reacted.

The evidence the learning jobs read: sessions, turns, barge-ins, explicit
feedback, rephrases, rewrite rules and experiments. The model registry's rows
live beside the serving registry (assistant.models.ModelVersion), learning jobs'
rows with the job runner (learning.models.Job).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Session(models.Model):
    """A conversation with one device, from one entry point."""

    class Channel(models.TextChoices):
        WEB = "web", "Browser chat"
        API = "api", "JSON API"
        CLI = "cli", "Command line"
        SIMULATOR = "sim", "Simulator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistant_sessions")
    device = models.ForeignKey("assistant.Device", null=True, blank=True, on_delete=models.SET_NULL)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user} ({self.channel})"

    @classmethod
    def resumable(cls, user, device, channel: str, now=None) -> Session | None:
        """The person's latest session with this device on this channel, if its last turn was less
        than SESSION_RESUME_MINUTES ago: a reloaded page goes on with the conversation."""
        since = (now or timezone.now()) - timedelta(minutes=settings.SESSION_RESUME_MINUTES)
        last = (
            Turn.objects.filter(user=user, session__device=device, session__channel=channel, created_at__gte=since)
            .select_related("session__device")
            .order_by("-created_at", "-id")
            .first()
        )
        return last.session if last is not None else None


class Turn(models.Model):
    """One utterance and the assistant's answer, with the trace of every stage."""

    class Status(models.TextChoices):
        OK = "ok", "Answered"
        OUT_OF_SCOPE = "oos", "Out of scope"
        ERROR = "error", "Stage failed"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="turns")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="turns")
    created_at = models.DateTimeField(db_index=True)
    # What came in: typed text, or the n-best list [{text, confidence}].
    raw_text = models.TextField(blank=True)
    nbest = models.JSONField(null=True, blank=True)
    # What each stage decided (the full detail is in `trace`).
    asr_text = models.TextField(blank=True)
    asr_confidence = models.FloatField(null=True, blank=True)
    intent = models.CharField(max_length=80, blank=True, db_index=True)
    slots = models.JSONField(default=dict, blank=True)
    nlu_confidence = models.FloatField(null=True, blank=True)
    rewrite = models.JSONField(null=True, blank=True)
    action = models.JSONField(null=True, blank=True)
    response = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK, db_index=True)
    # Copied out of `action` and `trace` when the turn is stored, so that review can filter on them.
    skill = models.CharField(max_length=40, blank=True, default="", help_text="The skill that acted on it.")
    nlu_model_version = models.CharField(
        max_length=80, blank=True, default="", help_text="The NLU model version that read it."
    )
    context = models.JSONField(default=dict, blank=True)  # device, room, screen, time the turn saw
    trace = models.JSONField(
        default=list, blank=True
    )  # [{stage, input, output, confidence, ms, model_version, error?}]
    total_ms = models.FloatField(default=0)
    # A client's key for this request (the API's Idempotency-Key, a chat frame's `key`): a retry with
    # the same key gets this turn back instead of running it, and acting on the home, again.
    idempotency_key = models.CharField(max_length=100, blank=True, default="")
    # The reply ended with "Did I answer your question?" (a random SURVEY_RATE of turns): the
    # user's thumbs on this turn answer it, an unbiased label the defect model is calibrated on.
    survey_asked = models.BooleanField(default=False)
    # Why the reply ended with that question: "survey" (the random share above) or a teachable moment
    # ("rewrite", "low_confidence", "repeated"; assistant/pipeline/prompts.py); blank when it did not.
    prompt_reason = models.CharField(max_length=20, blank=True, default="")
    # What the defect model (learning/defects.py) concluded: P(the turn failed its user).
    defect_probability = models.FloatField(null=True, blank=True)
    defect_model_version = models.CharField(max_length=80, blank=True, default="")
    # Where it failed, as the failure-point model (learning/failure_points.py) concluded, on likely defects:
    # one of Label.FailurePoint's values, blank when not concluded (a reviewer's label wins where there is one).
    failure_point = models.CharField(max_length=10, blank=True, default="")
    failure_point_confidence = models.FloatField(null=True, blank=True)
    failure_point_model_version = models.CharField(max_length=80, blank=True, default="")
    # The group of turns that failed the same way (learning/clusters.py), for the review inbox.
    defect_cluster = models.ForeignKey(
        "feedback.DefectCluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["user", "created_at"]),
            # The review inbox: the likeliest defects first, and a cluster's newest turns first.
            models.Index(
                fields=["-defect_probability", "-created_at", "-id"],
                name="turn_defect_rank",
                condition=models.Q(defect_probability__isnull=False),
            ),
            models.Index(fields=["defect_cluster", "-created_at", "-id"], name="turn_cluster_recent"),
            # The inbox filtered by skill or by the NLU version that read the turn.
            models.Index(
                fields=["skill", "-defect_probability", "-id"],
                name="turn_skill_defect",
                condition=models.Q(defect_probability__isnull=False),
            ),
            models.Index(
                fields=["nlu_model_version", "-defect_probability", "-id"],
                name="turn_nlu_version_defect",
                condition=models.Q(defect_probability__isnull=False),
            ),
            # The review queue of likely failures whose failure point the model is least sure of.
            models.Index(
                fields=["failure_point_confidence", "-defect_probability", "-id"],
                name="turn_failure_point_unsure",
                condition=models.Q(failure_point_confidence__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="one_turn_per_idempotency_key",
            )
        ]

    # Set by handle_turn(): True when an idempotent retry got this stored turn back (not a field).
    replayed = False

    def __str__(self) -> str:
        return f"turn {self.pk}: {self.raw_text[:40]!r}"

    @property
    def response_words(self) -> list[str]:
        return self.response.split()

    def as_dict(self) -> dict:
        """The public shape of a turn: `say --json` and the JSON API print this."""
        nlu = {"intent": self.intent, "slots": self.slots, "confidence": self.nlu_confidence}
        return {
            "turn_id": self.pk,
            "session": self.session_id,
            "created_at": self.created_at.isoformat(),
            "text": self.raw_text,
            "asr": {"text": self.asr_text, "confidence": self.asr_confidence},
            "nlu": nlu,
            "rewrite": self.rewrite,
            "action": self.action,
            "response": self.response,
            "status": self.status,
            "trace": self.trace,
            "barge_ins": [b.as_dict() for b in self.barge_ins.all()],
            "feedback": [f.as_dict() for f in self.feedback.all()],
        }


class BargeIn(models.Model):
    """The user interrupted the reply: where it happened, and how."""

    class Source(models.TextChoices):
        STOP = "stop", "Stop button"
        NEW_MESSAGE = "new_message", "Spoke over the reply"
        API = "api", "Reported through the API"

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="barge_ins")
    offset_words = models.PositiveIntegerField(help_text="Words of the reply already delivered.")
    offset_ms = models.PositiveIntegerField(help_text="Milliseconds since the reply began.")
    source = models.CharField(max_length=20, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # A client retrying a report (the network dropped the answer) must not make it count twice.
        constraints = [
            models.UniqueConstraint(
                fields=["turn", "offset_words", "offset_ms", "source"], name="one_row_per_barge_in_report"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} at word {self.offset_words} of turn {self.turn_id}"

    def as_dict(self) -> dict:
        return {"offset_words": self.offset_words, "offset_ms": self.offset_ms, "source": self.source}


class Feedback(models.Model):
    """Explicit feedback on a turn."""

    class Kind(models.TextChoices):
        THUMBS_UP = "thumbs_up", "Thumbs up"
        THUMBS_DOWN = "thumbs_down", "Thumbs down"

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="feedback")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on turn {self.turn_id}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "created_at": self.created_at.isoformat()}


class RewriteRule(models.Model):
    """A precomputed rewrite: an utterance (normalised) is replaced by a better one.

    Global rules apply to everyone and name no user; personal ones apply to their user only.
    Only active rules fire. Mined rules (learning/mining.py) are proposed or active by the
    confidence policy in settings (MINE_*); staff approve or reject proposed ones. Every
    fired rule's outcome (the defect model's reading of the turn it rewrote) adds to its
    wins and losses; a rule whose win rate's lower bound falls below REWRITE_RETIRE_BELOW
    retires itself, saying why in `status_reason`.
    """

    class Scope(models.TextChoices):
        GLOBAL = "global", "Global"
        PERSONAL = "personal", "Personal"

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        ACTIVE = "active", "Active"
        REJECTED = "rejected", "Rejected"
        RETIRED = "retired", "Retired"

    class Origin(models.TextChoices):
        MINED = "mined", "Mined from rephrases"
        TAUGHT = "taught", "Taught by a user"
        MANUAL = "manual", "Written by staff"

    source_text = models.CharField(max_length=1000, db_index=True, help_text="Normalised utterance to replace.")
    target_text = models.CharField(max_length=1000)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.GLOBAL)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED, db_index=True)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    confidence = models.FloatField(default=1.0, help_text="Mined: P(the user ends up served by the target).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # What the miner saw (learning/mining.py): occurrences of the source whose rephrase chain ended
    # well at the target, the distinct users behind them, and how often the source succeeds alone.
    support = models.FloatField(default=0.0)
    distinct_users = models.PositiveIntegerField(default=0)
    source_success = models.FloatField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True, help_text="Anonymised chains behind a mined rule.")
    # Outcomes of the turns it rewrote: expected wins and losses under the defect model.
    wins = models.FloatField(default=0.0)
    losses = models.FloatField(default=0.0)
    status_reason = models.TextField(blank=True, help_text="Why the rule has its status (set by the learners).")

    class Meta:
        indexes = [models.Index(fields=["status", "source_text"])]

    def __str__(self) -> str:
        return f"{self.source_text!r} -> {self.target_text!r} ({self.scope}, {self.status})"


class Experiment(models.Model):
    """An A/B test: users are split into arms by a stable hash (feedback/experiments.py).

    `arms` is a list of {"name": str, "config": dict, "weight": number (optional, default 1)}.
    The rewrite stage reads {"global_rewrites": bool, "personal_rewrites": bool} from the config.
    """

    name = models.SlugField(max_length=80, unique=True, help_text="Also the salt of the assignment hash.")
    description = models.TextField(blank=True)
    arms = models.JSONField(default=list, help_text='[{"name": "control", "config": {...}, "weight": 1}, …]')
    username_prefix = models.CharField(
        max_length=150,
        blank=True,
        help_text="Enrol only users whose username starts with this (blank: everyone). Overrides always count.",
    )
    is_active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"experiment {self.name} ({'active' if self.is_active else 'inactive'})"


class ExperimentAssignment(models.Model):
    """An operator's override: this user is in this arm, whatever the hash says."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="experiment_assignments")
    arm = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "user"], name="one_assignment_per_experiment")]

    def __str__(self) -> str:
        return f"{self.user} -> {self.arm} in {self.experiment.name}"


class Rephrase(models.Model):
    """The product's belief that `second` rephrases (or repeats) `first`: the user tried again.

    Written by the rephrase detector (learning/rephrases.py); rewrite mining and the
    defect signals read it. `score` is the detector's probability-like score in [0, 1].
    """

    first = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="rephrased_by")
    second = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="rephrase_of")
    score = models.FloatField()
    gap_ms = models.IntegerField(help_text="Milliseconds between the two turns.")
    detector_version = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["first", "second"], name="one_rephrase_per_pair")]

    def __str__(self) -> str:
        return f"turn {self.second_id} rephrases turn {self.first_id} ({self.score:.2f})"


class RephraseLabel(models.Model):
    """A reviewer's verdict on a pair of one user's turns: was `second` a retry of `first` (a rephrase or a
    repeat of the same request) or not. The rephrase detector trains and is checked on them
    (learning/rephrases.py). Kept with who and when; undoing one sets `undone_at` (the pair's verdict is
    then its latest one not undone). feedback/labels.py checks and stores them."""

    first = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="+")
    is_rephrase = models.BooleanField()
    # Drawn at random from every pair the detector judges (feedback.labels.random_pairs), not chosen by the
    # reviewer: only these stand for all pairs, so the detector's gate measures it on them.
    sampled = models.BooleanField(default=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["second", "first", "-created_at"])]

    def __str__(self) -> str:
        verdict = "a retry" if self.is_rephrase else "not a retry"
        return f"turn {self.second_id} is {verdict} of turn {self.first_id}"


class Label(models.Model):
    """A reviewer's reading of a turn: the intent and slots it should have had, and the first stage that
    failed. Every decision is kept with who and when; undoing one sets `undone_at` (the turn's label is
    then its latest one not undone). Training and export read feedback/labels.py's reviewed()."""

    class FailurePoint(models.TextChoices):
        ASR = "asr", "Speech recognition"
        NLU = "nlu", "Understanding"
        REWRITE = "rewrite", "Rewrite"
        RESOLVE = "resolve", "Resolve"
        EXECUTE = "execute", "Execute"
        NONE = "none", "Beyond the product"

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="labels")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    intent = models.CharField(max_length=80, blank=True, help_text="Blank: the intent was not judged.")
    slots = models.JSONField(default=dict, blank=True, help_text="{slot: the words of the turn that fill it}")
    failure_point = models.CharField(max_length=10, choices=FailurePoint.choices, blank=True)
    created_at = models.DateTimeField()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["turn", "-created_at"])]

    def __str__(self) -> str:
        return f"label of turn {self.turn_id}: {self.intent or '-'} / {self.failure_point or '-'}"


class GeneratedLabel(models.Model):
    """What a turn should have been understood as, concluded from feedback rather than said by a reviewer
    (learning/generated_labels.py): a turn that probably failed and was then rephrased successfully gets
    the rephrase's intent, with its slots on this turn's own words; a turn that went well confirms its
    own reading. The NLU trains on them (a reviewer's Label of the same turn wins)."""

    class Source(models.TextChoices):
        REPHRASE = "rephrase", "A successful rephrase"
        SUCCESS = "success", "It went well"

    turn = models.OneToOneField(Turn, on_delete=models.CASCADE, related_name="generated_label")
    intent = models.CharField(max_length=80)
    slots = models.JSONField(default=dict, blank=True, help_text="{slot: the words of the turn that fill it}")
    confidence = models.FloatField(help_text="P(the label is right), from the evidence behind it")
    source = models.CharField(max_length=10, choices=Source.choices)
    evidence = models.ForeignKey(
        Turn, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="The rephrase it came from."
    )
    generator_version = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"generated label of turn {self.turn_id}: {self.intent} ({self.source}, {self.confidence:.2f})"


# How the review inbox ranks clusters: those a reviewer's label or rule can fix first (where most of their turns
# failed: understanding, hearing or a rewrite, or not known yet), then most people affected, then most turns,
# then growing fastest.
CLUSTER_RANKING = ("-fixable", "-users", "-turns", "-recent_turns", "id")
# The failure points (Label.FailurePoint values) a reviewer's label or an approved rewrite rule can fix.
FIXABLE_POINTS = ("asr", "nlu", "rewrite")


class DefectCluster(models.Model):
    """Turns that probably failed the same way: one request, however people worded it (MiniLM
    neighbours across users), as learning/clusters.py last grouped them. The review inbox ranks these
    by how many people and turns they affect and by trend; each run replaces the previous grouping."""

    representative = models.TextField(help_text="The most frequent wording among its turns (normalised).")
    examples = models.JSONField(default=list, help_text="The most frequent wordings, most frequent first.")
    wordings = models.TextField(
        blank=True, default="", help_text="Its wordings, one per line, most frequent first: what the inbox searches."
    )
    turns = models.PositiveIntegerField(default=0)
    users = models.PositiveIntegerField(default=0, help_text="Distinct people affected.")
    recent_turns = models.PositiveIntegerField(default=0, help_text="In the last REVIEW_TREND_DAYS.")
    earlier_turns = models.PositiveIntegerField(default=0, help_text="In the REVIEW_TREND_DAYS before those.")
    top_intent = models.CharField(max_length=80, blank=True, help_text="What the NLU mostly read them as.")
    mean_defect = models.FloatField(default=0.0)
    rewrites_fired = models.PositiveIntegerField(default=0, help_text="Its turns a rewrite acted on.")
    failure_point = models.CharField(
        max_length=10, blank=True, default="", help_text="Where most of its turns failed (the failure-point model)."
    )
    failure_point_share = models.FloatField(default=0.0, help_text="The share of its turns that failed there.")
    underspecified_share = models.FloatField(
        default=0.0,
        help_text="The share of its turns whose retry that went well only added what they had left unsaid.",
    )
    fixable = models.BooleanField(
        default=True,
        help_text="Most of its turns failed where a label or a rule can fix them (or nobody knows where), and "
        "most of those retried were not underspecified requests (which a preference or a concept fixes).",
    )
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    built_at = models.DateTimeField()

    class Meta:
        ordering = list(CLUSTER_RANKING)

    def __str__(self) -> str:
        return f"{self.representative[:60]!r}: {self.turns} turns, {self.users} people"

    @property
    def trend(self) -> int:
        """Turns in the last REVIEW_TREND_DAYS minus the days before: growing above 0."""
        return self.recent_turns - self.earlier_turns


class RuleDecision(models.Model):
    """A reviewer approved, rejected or retired a rewrite rule: who, when, from which status; undone by
    putting the rule back (feedback/rule_review.py)."""

    rule = models.ForeignKey(RewriteRule, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    from_status = models.CharField(max_length=10, choices=RewriteRule.Status.choices)
    to_status = models.CharField(max_length=10, choices=RewriteRule.Status.choices)
    created_at = models.DateTimeField()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"rule {self.rule_id}: {self.from_status} -> {self.to_status}"
