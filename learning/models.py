"""The durable state of learning jobs: Celery carries only a Job's id (learning/jobs.py runs them)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

log = logging.getLogger(__name__)


class Job(models.Model):
    """A background job's durable state: Celery carries only its id.

    A running job's worker writes `heartbeat_at` every JOB_HEARTBEAT_S seconds. A job
    whose heartbeat is older than JOB_STALE_AFTER_S lost its worker (killed, out of
    memory, the machine gone): a redelivered message may claim it again, and the reaper
    (learning.reap_stale_jobs, on beat) fails it so that it can be retried. After
    JOB_MAX_ATTEMPTS claims a job is not run again.
    """

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
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of its worker.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="How many times a worker claimed it.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @classmethod
    def stale_before(cls) -> datetime:
        return timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_S)

    @classmethod
    def claim(cls, job_id: int) -> Job | None:
        """Mark a job running for this worker; None if it is missing, done, or alive elsewhere.

        Claimable: queued, failed (a retry), or running with a stale heartbeat (its worker
        died; a redelivered message takes it over). A conditional UPDATE, so two workers
        handed the same id never both run it.
        """
        now = timezone.now()
        claimable = models.Q(status__in=[cls.Status.QUEUED, cls.Status.FAILED]) | models.Q(
            status=cls.Status.RUNNING, heartbeat_at__lt=cls.stale_before()
        )
        claimed = cls.objects.filter(claimable, pk=job_id, attempts__lt=settings.JOB_MAX_ATTEMPTS).update(
            status=cls.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            progress=0.0,
            message="starting",
            attempts=models.F("attempts") + 1,
        )
        if claimed:
            return cls.objects.get(pk=job_id)
        gave_up = cls.objects.filter(claimable, pk=job_id, attempts__gte=settings.JOB_MAX_ATTEMPTS).update(
            status=cls.Status.FAILED,
            finished_at=now,
            message=f"given up after {settings.JOB_MAX_ATTEMPTS} attempts",
        )
        if gave_up:
            log.error("job %s given up after %s attempts", job_id, settings.JOB_MAX_ATTEMPTS)
        return None

    @property
    def task_name(self) -> str:
        """The Celery task that runs jobs of this kind (learning.jobs.learning_task names it so)."""
        return f"learning.{self.kind}"

    @classmethod
    def enqueue(cls, kind: str, params: dict | None = None) -> Job:
        """A queued job of `kind`, sent to its task ("learning.<kind>") by name once the row is committed.

        By name: the web process (the admin's buttons) and beat need not import the trainers."""
        job = cls.objects.create(kind=kind, params=params or {})
        job._send_when_committed()
        return job

    def retry(self) -> bool:
        """Queue a failed job again (the admin's "Retry"); False unless it is failed and not given up.

        Sent by name, so the web process need not import the trainers to retry one.
        """
        if self.status != Job.Status.FAILED or self.attempts >= settings.JOB_MAX_ATTEMPTS:
            return False
        self._send_when_committed()
        return True

    def _send_when_committed(self) -> None:
        job_id, name = self.pk, self.task_name
        transaction.on_commit(lambda: current_app.send_task(name, args=[job_id]))

    @classmethod
    def claim_exclusive(cls, job_id: int) -> tuple[Job | None, Job | None]:
        """Claim a job of a kind that must not run twice at once: (claimed job, None), or
        (None, the running twin) when another job of its kind is alive (this one is then
        finished as skipped), or (None, None) when it is not claimable at all.

        The check and the claim happen under a lock on the kind (a transaction-level advisory
        lock on Postgres; SQLite's immediate transactions already serialise writers), so two
        jobs started at once cannot both see "nothing running".
        """
        kind = cls.objects.filter(pk=job_id).values_list("kind", flat=True).first()
        if kind is None:
            return None, None
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"job:{kind}"])
            twin = (
                cls.objects.filter(kind=kind, status=cls.Status.RUNNING, heartbeat_at__gte=cls.stale_before())
                .exclude(pk=job_id)
                .first()
            )
            if twin is not None:
                cls.objects.filter(pk=job_id, status=cls.Status.QUEUED).update(
                    status=cls.Status.DONE,
                    progress=1.0,
                    finished_at=timezone.now(),
                    message=f"skipped: {kind} job {twin.pk} is running",
                    result={"skipped": True, "running_job": twin.pk},
                )
                return None, twin
            return cls.claim(job_id), None

    def beat(self) -> None:
        """A sign of life from the worker running this job."""
        Job.objects.filter(pk=self.pk, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())

    def finish(self, message: str, result: dict) -> None:
        Job.objects.filter(pk=self.pk).update(
            status=Job.Status.DONE, progress=1.0, finished_at=timezone.now(), message=message[:2000], result=result
        )

    def fail(self, exc: BaseException | str) -> None:
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        Job.objects.filter(pk=self.pk).update(
            status=Job.Status.FAILED, finished_at=timezone.now(), message=message[:2000]
        )

    @classmethod
    def reap_stale(cls) -> list[int]:
        """Fail every running job whose worker stopped beating; returns their ids (they can be retried)."""
        stale = list(
            cls.objects.filter(status=cls.Status.RUNNING, heartbeat_at__lt=cls.stale_before()).values_list(
                "pk", "heartbeat_at"
            )
        )
        reaped = []
        for pk, heartbeat_at in stale:
            done = cls.objects.filter(pk=pk, status=cls.Status.RUNNING, heartbeat_at=heartbeat_at).update(
                status=cls.Status.FAILED,
                finished_at=timezone.now(),
                message=f"worker lost: no heartbeat since {heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; retry to run it again",
            )
            if done:
                reaped.append(pk)
        return reaped
