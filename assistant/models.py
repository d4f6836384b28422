"""The simulated world the skills act on, API tokens, and the model registry's rows.

Each user owns one Home. Devices carry their state as a small JSON object whose
shape depends on the device kind (see world/devices.py). The device a user speaks
to is a Device of kind "speaker"; its room and screen give the turn its context.
"""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.db import models


class Home(models.Model):
    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="home")
    name = models.CharField(max_length=100, default="Home")
    place = models.CharField(max_length=100, default="London", help_text="Default place for weather.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} of {self.owner}"


class Device(models.Model):
    class Kind(models.TextChoices):
        SPEAKER = "speaker", "Speaker"
        LIGHT = "light", "Light"
        THERMOSTAT = "thermostat", "Thermostat"
        OVEN = "oven", "Oven"
        GARAGE_DOOR = "garage_door", "Garage door"
        TV = "tv", "TV"
        PLUG = "plug", "Smart plug"
        VACUUM = "vacuum", "Vacuum"

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=100)
    room = models.CharField(max_length=50)
    has_screen = models.BooleanField(default=False, help_text="For speakers: a screen shows films and pictures.")
    state = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["room", "kind", "name"]
        constraints = [models.UniqueConstraint(fields=["home", "name"], name="device_name_unique_per_home")]

    def __str__(self) -> str:
        return f"{self.name} ({self.room})"


class MediaPlayer(models.Model):
    """What a home is playing; one per home (the speaker group plays together)."""

    home = models.OneToOneField(Home, on_delete=models.CASCADE, related_name="media_player")
    status = models.CharField(max_length=10, default="stopped")  # playing, paused, stopped
    item = models.JSONField(default=dict, blank=True)  # the catalogue entry being played
    queue = models.JSONField(default=list, blank=True)  # catalogue ids still to play
    volume = models.PositiveSmallIntegerField(default=5)  # 0..10
    muted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Media player of home {self.home_id} ({self.status})"


_ONE_UNIT = re.compile(r"(?P<n>\d+) (?P<unit>hour|minute|second)s?")


class Timer(models.Model):
    class Kind(models.TextChoices):
        TIMER = "timer", "Timer"
        ALARM = "alarm", "Alarm"

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="timers")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    label = models.CharField(max_length=100, blank=True)
    fires_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    rang_at = models.DateTimeField(null=True, blank=True, help_text="When the assistant announced it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["fires_at"]
        indexes = [models.Index(fields=["rang_at", "cancelled_at", "fires_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label or ''} at {self.fires_at:%Y-%m-%d %H:%M}".replace("  ", " ")

    @property
    def spoken_name(self) -> str:
        """How a timer is spoken of: "10-minute timer", "timer for 1 hour and 30 minutes", "timer"."""
        label = self.label.strip()
        if not label:
            return "timer"
        if one_unit := _ONE_UNIT.fullmatch(label):
            return f"{one_unit['n']}-{one_unit['unit']} timer"  # a 10-minute timer, not a 10 minutes timer
        return f"timer for {label}"


class ListItem(models.Model):
    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="list_items")
    list_name = models.CharField(max_length=50)  # "shopping", "to-do"
    text = models.CharField(max_length=200)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["list_name", "created_at"]

    def __str__(self) -> str:
        return f"{self.text} (on the {self.list_name} list)"


def _new_token() -> str:
    return secrets.token_hex(20)


class ApiToken(models.Model):
    """A bearer token for the JSON API (header `Authorization: Token <key>`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key = models.CharField(max_length=40, unique=True, default=_new_token)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of {self.user}"


class ModelVersion(models.Model):
    """A trained model artifact on disk; one version per kind is active (assistant/registry.py)."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=30, db_index=True)  # a ModelKind's name (assistant/registry.py): "nlu"…
    version = models.CharField(max_length=80)  # as long as the version fields that copy it
    path = models.CharField(max_length=500)
    manifest = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(status="active"), name="one_active_model_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.version} ({self.status})"
