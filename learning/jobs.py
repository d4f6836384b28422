"""The one job runner: every learning task is a `learning_task`, and runs through run_job().

    @learning_task("learning.train_nlu", kind="train_nlu")
    def train_nlu_task(job: Job, progress: Progress) -> JobOutcome: ...

    start_job(train_nlu_task, {"force": True})   # a queued Job row, enqueued once committed

The Celery task takes only the Job's id. run_job() claims the row (a conditional
UPDATE, so two workers handed the same id never both run it), hands the work its
Job and a progress reporter, and finishes the row with the work's message and
result, or fails it with the exception, whatever went wrong. Settings route every
task named "learning.*" to the `learning` queue (CELERY_TASK_ROUTES).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task
from django.db import transaction

from learning.models import Job

log = logging.getLogger(__name__)

LEARNING_QUEUE = "learning"
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class JobOutcome:
    """What a finished job says: a sentence for people and a JSON result for programs."""

    message: str
    result: dict[str, Any] = field(default_factory=dict)


Work = Callable[[Job, Progress], JobOutcome]


def progress_reporter(job_id: int) -> Progress:
    """Write progress into the job row, at most a few times a second."""
    last = [0.0, -1.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - last[0] < 0.5 and fraction - last[1] < 0.1:
            return
        last[0], last[1] = now, fraction
        Job.objects.filter(pk=job_id).update(progress=round(max(0.0, min(1.0, fraction)), 3), message=message[:500])

    return report


def run_job(job_id: int, work: Work) -> Job | None:
    """Claim the Job row, run `work` on it, finish or fail the row; None if the row was not claimable."""
    job = Job.claim(job_id)
    if job is None:
        log.warning("job %s is missing or already running/done; skipped", job_id)
        return None
    try:
        outcome = work(job, progress_reporter(job_id))
    except Exception as exc:  # the job row must say why, whatever went wrong
        log.exception("%s job %s failed", job.kind, job_id)
        job.fail(exc)
    else:
        job.finish(outcome.message, outcome.result)
    job.refresh_from_db()
    return job


def learning_task(name: str, *, kind: str, time_limit: int = 1800) -> Callable[[Work], Any]:
    """Make `work(job, progress) -> JobOutcome` a Celery task taking a Job id, run by run_job().

    `name` must start with "learning." (the settings route those to the learning queue);
    `kind` is the Job rows' kind.
    """
    if not name.startswith("learning."):
        raise ValueError(f"learning task names start with 'learning.', not {name!r}")

    def decorate(work: Work) -> Any:
        @shared_task(name=name, time_limit=time_limit, soft_time_limit=time_limit - 60, ignore_result=True)
        def task(job_id: int) -> None:
            run_job(job_id, work)

        task.job_kind = kind
        task.work = work
        task.__doc__ = work.__doc__
        return task

    return decorate


def start_job(task: Any, params: dict[str, Any] | None = None) -> Job:
    """A queued Job row for `task`, enqueued once the row is committed."""
    job = Job.objects.create(kind=task.job_kind, params=params or {})
    transaction.on_commit(lambda: task.delay(job.pk))
    return job


def previous_result(job: Job, key: str) -> Any:
    """`key` of the result of the last finished job of the same kind (before `job`), or None.

    Incremental steps use it as a watermark: where the last successful run stopped.
    """
    last = (
        Job.objects.filter(kind=job.kind, status=Job.Status.DONE)
        .exclude(pk=job.pk)
        .order_by("-finished_at", "-pk")
        .first()
    )
    return (last.result or {}).get(key) if last else None
