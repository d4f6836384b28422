"""Admin for learning jobs: what ran, how far it got, what it found."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

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

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra = {"can_run_cycle": self.has_change_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def get_urls(self) -> list:
        run = path("run-cycle/", self.admin_site.admin_view(self.run_cycle_view), name="learning_job_run_cycle")
        return [run, *super().get_urls()]

    def run_cycle_view(self, request: HttpRequest) -> HttpResponse:
        """The changelist's "Run a learning cycle now" button (POST): one cycle, queued to a worker."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        job = Job.enqueue("learning_cycle", {"learners": "all"})
        self.message_user(request, f"Learning cycle queued as job {job.pk}; its steps appear here as they run.")
        return HttpResponseRedirect(reverse("admin:learning_job_changelist"))

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, obj: Job) -> str:
        return f"{obj.progress * 100:.0f}%"

    @admin.display(description="params")
    def params_pretty(self, obj: Job) -> str:
        return pretty_json(obj.params)

    @admin.display(description="result")
    def result_pretty(self, obj: Job) -> str:
        return pretty_json(obj.result)
