"""Admin for what people taught: preferences, concepts (with the ones several people taught the
same way, offered to reviewers as global defaults), what the preference models inferred, and the
questions sessions are waiting on."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from teaching.concepts import common
from teaching.models import (
    Concept,
    Erasure,
    ForgottenPreference,
    InferredPreference,
    PendingQuestion,
    Preference,
    SharedConcept,
)


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "value", "source", "said", "updated_at")
    list_filter = ("kind", "source")
    search_fields = ("user__username", "value", "said")
    readonly_fields = ("created_at", "updated_at", "evidence")


class SharedConceptFilter(admin.SimpleListFilter):
    title = "taught the same way by several people"
    parameter_name = "shared"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [("yes", f"by {settings.CONCEPT_GLOBAL_MIN_USERS} or more (a global default?)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "yes":
            return queryset
        keys = {c["key"] for c in common(settings.CONCEPT_GLOBAL_MIN_USERS)}
        return queryset.filter(key__in=keys)


@admin.register(Concept)
class ConceptAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "definition", "updated_at")
    list_filter = (SharedConceptFilter,)
    search_fields = ("name", "definition", "user__username")
    readonly_fields = ("key", "steps", "created_at", "updated_at")


@admin.register(SharedConcept)
class SharedConceptAdmin(admin.ModelAdmin):
    """Raw records; staff approve and retire shared concepts in review/ (/review/concepts/)."""

    list_display = ("name", "teachers", "approved_by", "approved_at", "retired_at")
    readonly_fields = [f.name for f in SharedConcept._meta.fields]


@admin.register(PendingQuestion)
class PendingQuestionAdmin(admin.ModelAdmin):
    list_display = ("session", "user", "kind", "prompt", "asked_at", "reasks")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in PendingQuestion._meta.fields]


@admin.register(Erasure)
class ErasureAdmin(admin.ModelAdmin):
    list_display = ("user", "erased_at")
    readonly_fields = ("user", "erased_at")


@admin.register(InferredPreference)
class InferredPreferenceAdmin(admin.ModelAdmin):
    """Raw rows of every kept preference model version (the registry says which one serves)."""

    list_display = ("user", "kind", "value", "probability", "weight", "model_version", "computed_at")
    list_filter = ("kind", "model_version")
    search_fields = ("user__username", "value")
    readonly_fields = [f.name for f in InferredPreference._meta.fields]


@admin.register(ForgottenPreference)
class ForgottenPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "forgotten_at")
    readonly_fields = ("user", "kind", "forgotten_at")
