"""Admin for learning jobs: what ran, how far it got, what it found."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from feedback.admin import pretty_json
from learning.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress_percent", "attempts", "created_at", "heartbeat_at", "finished_at")
    list_filter = ("kind", "status", "created_at")
    search_fields = ("kind", "message")
    date_hierarchy = "created_at"
    readonly_fields = (
        "kind",
        "status",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "message",
        "heartbeat_at",
        "attempts",
        "params_pretty",
        "result_pretty",
    )
    exclude = ("params", "result")
    actions = ("retry_selected_jobs",)

    @admin.action(description="Retry the selected failed jobs", permissions=["change"])
    def retry_selected_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        retried = [job.pk for job in queryset if job.retry()]
        skipped = queryset.count() - len(retried)
        self.message_user(request, f"{len(retried)} job(s) queued again.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} not retried: only failed jobs with attempts left can be.", messages.WARNING
            )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, obj: Job) -> str:
        return f"{obj.progress * 100:.0f}%"

    @admin.display(description="params")
    def params_pretty(self, obj: Job) -> str:
        return pretty_json(obj.params)

    @admin.display(description="result")
    def result_pretty(self, obj: Job) -> str:
        return pretty_json(obj.result)
