"""The one job runner: every learning task is a `learning_task`, and runs through run_job().

    @learning_task("train_nlu")          # the Celery task "learning.train_nlu", Job kind "train_nlu"
    def train_nlu_task(job: Job, progress: Progress) -> JobOutcome: ...

    start_job(train_nlu_task, {"force": True})   # a queued Job row, enqueued once committed

The Celery task takes only the Job's id. run_job() claims the row (a conditional
UPDATE, so two workers handed the same id never both run it), hands the work its
Job and a progress reporter, beats the row's heartbeat while the work runs, and
finishes the row with the work's message and result, or fails it with the
exception, whatever went wrong. Settings route every task named "learning.*" to the
`learning` queue (CELERY_TASK_ROUTES).

A worker killed mid-job (kill -9, out of memory) acknowledged nothing (acks_late):
the broker hands the message out again and the next worker claims the job once its
heartbeat is stale; if no message comes back, the reaper fails the job so it can be
retried (learning.models.Job). Every learning task must therefore be safe to run
again from the start, which they are: each writes a new version or recomputes rows.

A job can split its work into parts for every worker (fan_out): each part is a job of its
own, queued for any worker; the job that split it runs the parts nobody has taken yet
and waits for the others, so it never waits on a queue only it could serve.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

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
        Job.objects.filter(pk=job_id).update(
            progress=round(max(0.0, min(1.0, fraction)), 3), message=message[:500], heartbeat_at=timezone.now()
        )

    return report


class Heartbeat(threading.Thread):
    """Beats a running job's heartbeat every JOB_HEARTBEAT_S until stopped (its own DB connection)."""

    def __init__(self, job: Job) -> None:
        super().__init__(name=f"heartbeat-{job.pk}", daemon=True)
        self.job = job
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_HEARTBEAT_S):
                try:
                    self.job.beat()
                except Exception:  # a database hiccup must not end the job; the next beat retries
                    log.warning("heartbeat of job %s failed", self.job.pk, exc_info=True)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


class AliveElsewhere(Exception):
    """The job is running on another worker whose heartbeat is fresh: look again later."""


def run_job(job_id: int, work: Work, *, exclusive: bool = False) -> Job | None:
    """Claim the Job row, run `work` on it, finish or fail the row; None if the row was not claimable.

    Raises AliveElsewhere when another worker holds the job and still beats (a message handed
    out again before the first worker was known to be dead). With `exclusive`, a job whose
    kind is already running elsewhere is finished as skipped instead of run.
    """
    if exclusive:
        job, twin = Job.claim_exclusive(job_id)
        if twin is not None:
            log.info("job %s skipped: %s job %s is running", job_id, twin.kind, twin.pk)
            return Job.objects.get(pk=job_id)
    else:
        job = Job.claim(job_id)
    if job is None:
        if Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).exists():
            raise AliveElsewhere(job_id)
        log.warning("job %s is missing, done or given up; skipped", job_id)
        return None
    heartbeat = Heartbeat(job)
    heartbeat.start()
    try:
        outcome = work(job, progress_reporter(job_id))
    except Exception as exc:  # the job row must say why, whatever went wrong
        log.exception("%s job %s failed", job.kind, job_id)
        job.fail(exc)
    else:
        job.finish(outcome.message, outcome.result)
        # The one line a learning job leaves at INFO (Celery's per-task lines are quiet).
        log.info("%s job %s finished: %s", job.kind, job_id, outcome.message)
    finally:
        heartbeat.stop()
    job.refresh_from_db()
    return job


def learning_task(kind: str, *, time_limit: int = 1800, exclusive: bool = False) -> Callable[[Work], Any]:
    """Make `work(job, progress) -> JobOutcome` a Celery task taking a Job id, run by run_job().

    `kind` is the Job rows' kind; the task is named "learning.<kind>" (the settings route
    those to the learning queue, and Job.retry() sends a job to its task by that name).
    `exclusive`: two jobs of this kind never run at once; the second one started skips.
    """
    name = f"learning.{kind}"

    def decorate(work: Work) -> Any:
        # acks_late + reject_on_worker_lost: a worker that dies mid-job leaves the message to be
        # handed out again (run_job() claims a job again only once its heartbeat is stale).
        @shared_task(
            bind=True,
            name=name,
            time_limit=time_limit,
            soft_time_limit=time_limit - 60,
            ignore_result=True,
            acks_late=True,
            reject_on_worker_lost=True,
        )
        def task(self, job_id: int) -> None:
            try:
                run_job(job_id, work, exclusive=exclusive)
            except AliveElsewhere:
                # Either that worker finishes it (then this one skips), or its heartbeat goes
                # stale and this one takes the job over.
                raise self.retry(countdown=settings.JOB_STALE_AFTER_S, max_retries=None) from None

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


class PartFailed(RuntimeError):
    """A part of a fanned-out job failed (its Job row says why)."""


def fan_out(kind: str, params: list[dict[str, Any]], work: Work, *, poll: float = 0.5) -> list[Job]:
    """Run one job of `kind` per params across the workers and this process; the finished Job rows, in order.

    Every part is queued for any worker consuming the learning queue ("learning.<kind>", a learning_task
    whose work is `work`). This process then runs each part nobody has claimed, from the last, and waits for
    those other workers run, taking over a part whose worker stopped beating (run_job's claim). With no other worker
    free it runs them all. A failed part is run again, as a retried job is, up to JOB_MAX_ATTEMPTS; then
    PartFailed says which failed and why.
    """
    parts = [Job.enqueue(kind, p).pk for p in params]
    while True:
        rows = Job.objects.in_bulk(parts)
        pending = [pk for pk in parts if _may_still_finish(rows[pk])]
        if not pending:
            break
        ran_here = False
        for pk in reversed(pending):  # from the last: the queue hands the first ones to the other workers
            try:
                ran_here |= run_job(pk, work) is not None
            except AliveElsewhere:
                continue  # another worker runs it and beats
        if not ran_here:
            time.sleep(poll)
    failed = [rows[pk] for pk in parts if rows[pk].status != Job.Status.DONE]
    if failed:
        raise PartFailed("; ".join(f"{kind} job {job.pk}: {job.message}" for job in failed))
    return [rows[pk] for pk in parts]


def _may_still_finish(job: Job) -> bool:
    """Queued, running, or failed with attempts left."""
    if job.status == Job.Status.DONE:
        return False
    return job.status != Job.Status.FAILED or job.attempts < settings.JOB_MAX_ATTEMPTS


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
