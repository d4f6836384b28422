"""Admin for the feedback store: browse turns with their traces, review rewrite rules and rephrases.

Turns, barge-ins and feedback are evidence the learning jobs read, so their
recorded fields are read-only here. JSON is shown pretty-printed inside <pre>,
always escaped: utterances are user input and may contain HTML.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator

from feedback.models import (
    BargeIn,
    Experiment,
    ExperimentAssignment,
    Feedback,
    GeneratedLabel,
    Label,
    Rephrase,
    RewriteRule,
    RuleDecision,
    Session,
    Turn,
)


def pretty_json(value: Any) -> str:
    """JSON in a <pre>, HTML-escaped (format_html escapes its arguments)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def short(text: str, length: int = 60) -> str:
    return Truncator(text).chars(length)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BargeInInline(ReadOnlyInline):
    model = BargeIn
    fields = ("offset_words", "offset_ms", "source", "created_at")
    readonly_fields = fields


class FeedbackInline(ReadOnlyInline):
    model = Feedback
    fields = ("kind", "created_at")
    readonly_fields = fields


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = ("created_at", "raw_text", "intent", "status", "response")
    readonly_fields = fields
    ordering = ("created_at", "id")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "channel", "device", "started_at", "turn_count")
    list_filter = ("channel", "started_at")
    search_fields = ("user__username", "device__name")
    date_hierarchy = "started_at"
    list_select_related = ("user", "device")
    raw_id_fields = ("user", "device")
    inlines = (TurnInline,)

    @admin.display(description="turns")
    def turn_count(self, obj: Session) -> int:
        return obj.turns.count()


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "user", "channel", "text_short", "intent", "status", "confidence", "total_ms")
    list_filter = ("status", "intent", "session__channel", "created_at")
    search_fields = ("raw_text", "asr_text", "response", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("user", "session")
    inlines = (BargeInInline, FeedbackInline)
    # A turn is a record of what happened: nothing on it is edited by hand.
    fieldsets = (
        (None, {"fields": ("user", "session", "created_at", "status", "total_ms")}),
        ("Input", {"fields": ("raw_text", "nbest_pretty", "asr_text", "asr_confidence")}),
        ("Understanding", {"fields": ("intent", "nlu_confidence", "slots_pretty", "rewrite_pretty")}),
        ("Outcome", {"fields": ("action_pretty", "response", "context_pretty")}),
        ("Trace", {"fields": ("trace_pretty",)}),
    )
    readonly_fields = (
        "user",
        "session",
        "created_at",
        "status",
        "total_ms",
        "raw_text",
        "nbest_pretty",
        "asr_text",
        "asr_confidence",
        "intent",
        "nlu_confidence",
        "slots_pretty",
        "rewrite_pretty",
        "action_pretty",
        "response",
        "context_pretty",
        "trace_pretty",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="channel", ordering="session__channel")
    def channel(self, obj: Turn) -> str:
        return obj.session.get_channel_display()

    @admin.display(description="text", ordering="raw_text")
    def text_short(self, obj: Turn) -> str:
        return short(obj.raw_text)

    @admin.display(description="conf.", ordering="nlu_confidence")
    def confidence(self, obj: Turn) -> str:
        return "" if obj.nlu_confidence is None else f"{obj.nlu_confidence:.2f}"

    @admin.display(description="trace")
    def trace_pretty(self, obj: Turn) -> str:
        return pretty_json(obj.trace)

    @admin.display(description="n-best")
    def nbest_pretty(self, obj: Turn) -> str:
        return pretty_json(obj.nbest)

    @admin.display(description="slots")
    def slots_pretty(self, obj: Turn) -> str:
        return pretty_json(obj.slots)

    @admin.display(description="rewrite")
    def rewrite_pretty(self, obj: Turn) -> str:
        return pretty_json(obj.rewrite)

    @admin.display(description="action")
    def action_pretty(self, obj: Turn) -> str:
        return pretty_json(obj.action)

    @admin.display(description="context")
    def context_pretty(self, obj: Turn) -> str:
        return pretty_json(obj.context)


@admin.register(BargeIn)
class BargeInAdmin(admin.ModelAdmin):
    list_display = ("id", "turn", "offset_words", "offset_ms", "source", "created_at")
    list_filter = ("source", "created_at")
    search_fields = ("turn__raw_text", "turn__response", "turn__user__username")
    date_hierarchy = "created_at"
    list_select_related = ("turn",)
    raw_id_fields = ("turn",)


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ("id", "turn", "kind", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("turn__raw_text", "turn__response", "turn__user__username")
    date_hierarchy = "created_at"
    list_select_related = ("turn",)
    raw_id_fields = ("turn",)


@admin.register(RewriteRule)
class RewriteRuleAdmin(admin.ModelAdmin):
    list_display = ("id", "source_text", "target_text", "scope", "user", "status", "origin", "confidence", "created_at")
    list_filter = ("status", "scope", "origin", "created_at")
    search_fields = ("source_text", "target_text", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    actions = ("approve", "reject")

    @admin.action(description="Approve: make the selected rules active")
    def approve(self, request: HttpRequest, queryset: QuerySet[RewriteRule]) -> None:
        count = queryset.exclude(status=RewriteRule.Status.ACTIVE).update(status=RewriteRule.Status.ACTIVE)
        self.message_user(request, f"{count} rule(s) approved.", messages.SUCCESS)

    @admin.action(description="Reject: the selected rules never fire")
    def reject(self, request: HttpRequest, queryset: QuerySet[RewriteRule]) -> None:
        count = queryset.exclude(status=RewriteRule.Status.REJECTED).update(status=RewriteRule.Status.REJECTED)
        self.message_user(request, f"{count} rule(s) rejected.", messages.SUCCESS)


class ExperimentAssignmentInline(admin.TabularInline):
    model = ExperimentAssignment
    extra = 0
    fields = ("user", "arm", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "arm_names", "username_prefix", "created_at")
    list_filter = ("is_active", "created_at")
    search_fields = ("name", "description")
    date_hierarchy = "created_at"
    inlines = (ExperimentAssignmentInline,)

    @admin.display(description="arms")
    def arm_names(self, obj: Experiment) -> str:
        arms = obj.arms if isinstance(obj.arms, list) else []
        return ", ".join(str(arm.get("name", "?")) for arm in arms if isinstance(arm, dict))


@admin.register(ExperimentAssignment)
class ExperimentAssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "experiment", "user", "arm", "created_at")
    list_filter = ("experiment", "arm", "created_at")
    search_fields = ("user__username", "arm", "experiment__name")
    date_hierarchy = "created_at"
    list_select_related = ("experiment", "user")
    raw_id_fields = ("user",)


@admin.register(Rephrase)
class RephraseAdmin(admin.ModelAdmin):
    list_display = ("id", "first", "second", "score", "gap_ms", "detector_version", "created_at")
    list_filter = ("detector_version", "created_at")
    search_fields = ("first__raw_text", "second__raw_text", "second__user__username")
    list_select_related = ("first", "second")
    raw_id_fields = ("first", "second")
    date_hierarchy = "created_at"


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    """Raw reviewer labels (reviewers work in /review/, where a label is checked, kept and undone)."""

    list_display = ("turn", "intent", "failure_point", "reviewer", "created_at", "undone_at")
    list_filter = ("failure_point", "created_at")
    search_fields = ("turn__raw_text", "intent", "reviewer__username")
    raw_id_fields = ("turn",)
    readonly_fields = [f.name for f in Label._meta.fields]


@admin.register(GeneratedLabel)
class GeneratedLabelAdmin(admin.ModelAdmin):
    """Labels concluded from feedback (learning/generated_labels.py recomputes them each learning cycle)."""

    list_display = ("turn", "intent", "source", "confidence", "evidence", "created_at")
    list_filter = ("source", "created_at")
    search_fields = ("turn__raw_text", "turn__asr_text", "intent")
    raw_id_fields = ("turn", "evidence")
    readonly_fields = [f.name for f in GeneratedLabel._meta.fields]


@admin.register(RuleDecision)
class RuleDecisionAdmin(admin.ModelAdmin):
    """Raw decisions on rewrite rules (taken in /review/rules/, where they can be undone)."""

    list_display = ("rule", "from_status", "to_status", "reviewer", "created_at", "undone_at")
    list_filter = ("to_status", "created_at")
    raw_id_fields = ("rule",)
    readonly_fields = [f.name for f in RuleDecision._meta.fields]
