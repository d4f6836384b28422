"""The durable state of learning jobs: Celery carries only a Job's id (learning/jobs.py runs them)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Job(models.Model):
    """A background job's durable state: Celery carries only its id."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)  # 0..1
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @classmethod
    def claim(cls, job_id: int) -> Job | None:
        """Mark a queued (or failed, being retried) job running; None if it is missing or taken.

        A conditional UPDATE, so two workers handed the same id never both run it.
        """
        claimed = cls.objects.filter(pk=job_id, status__in=[cls.Status.QUEUED, cls.Status.FAILED]).update(
            status=cls.Status.RUNNING, started_at=timezone.now(), progress=0.0, message="starting"
        )
        return cls.objects.get(pk=job_id) if claimed else None

    def finish(self, message: str, result: dict) -> None:
        Job.objects.filter(pk=self.pk).update(
            status=Job.Status.DONE, progress=1.0, finished_at=timezone.now(), message=message[:2000], result=result
        )

    def fail(self, exc: BaseException) -> None:
        Job.objects.filter(pk=self.pk).update(
            status=Job.Status.FAILED, finished_at=timezone.now(), message=f"{type(exc).__name__}: {exc}"[:2000]
        )
