"""Celery tasks of the learning loop. Tasks are thin: the work is in plain modules,
the durable state in feedback.Job rows (Celery carries only the job id)."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import transaction

from feedback.models import Job

log = logging.getLogger(__name__)

NLU_JOB_KIND = "train_nlu"
# Long learning jobs run on their own queue so they never delay short tasks. Celery 5.7
# deprecates the task-level `queue` option: callers route explicitly (or CELERY_TASK_ROUTES).
LEARNING_QUEUE = "learning"


def start_nlu_training(params: dict | None = None) -> Job:
    """Create a queued Job and enqueue the training task once the row is committed."""
    job = Job.objects.create(kind=NLU_JOB_KIND, params=params or {})
    transaction.on_commit(lambda: train_nlu_task.apply_async(args=[job.pk], queue=LEARNING_QUEUE))
    return job


def _progress_reporter(job_id: int):
    """Write progress into the job row, at most a few times a second."""
    last = [0.0, -1.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - last[0] < 0.5 and fraction - last[1] < 0.1:
            return
        last[0], last[1] = now, fraction
        Job.objects.filter(pk=job_id).update(progress=round(max(0.0, min(1.0, fraction)), 3), message=message[:500])

    return report


@shared_task(name="feedback.train_nlu", time_limit=1800, soft_time_limit=1700, ignore_result=True)
def train_nlu_task(job_id: int) -> None:
    """Train the NLU, register and promote it; the Job row says how it went.

    params: force, force_promote, architecture ("heads"/"joint"), and for training on
    labelled files: data (paths), format, split, seed (false: the files only)."""
    from assistant.nlu.service import train_and_register, training_examples

    job = Job.claim(job_id)
    if job is None:
        log.warning("train_nlu job %s is missing or already running/done; skipped", job_id)
        return
    try:
        examples = None
        data = job.params.get("data") or []
        if not isinstance(data, list) or not all(isinstance(path, str) for path in data):
            raise ValueError("params.data must be a list of file paths")
        if data or job.params.get("seed") is False:
            # Public or exported data on the worker's disk, as `train_nlu --data` takes it.
            examples, _ = training_examples(
                data,
                fmt=str(job.params.get("format", "auto")),
                split=job.params.get("split"),
                with_seed=job.params.get("seed", True) is not False,
            )
        outcome = train_and_register(
            examples,
            force=bool(job.params.get("force")),
            force_promote=bool(job.params.get("force_promote")),
            # "heads" (default) or "joint" (fine-tuned, early exit); anything else fails the job with a message.
            architecture=str(job.params.get("architecture", "heads")),
            progress=_progress_reporter(job_id),
        )
    except Exception as exc:  # the job row must say why, whatever went wrong
        log.exception("train_nlu job %s failed", job_id)
        job.fail(exc)
        return
    message = outcome.reason if outcome.skipped else f"registered {outcome.version.version}: {outcome.gate_note}"
    job.finish(message, outcome.as_dict())


REPHRASE_JOB_KIND = "detect_rephrases"


def start_rephrase_detection(params: dict | None = None) -> Job:
    """Create a queued rephrase-detection Job and enqueue it once the row is committed."""
    job = Job.objects.create(kind=REPHRASE_JOB_KIND, params=params or {})
    transaction.on_commit(lambda: detect_rephrases_task.apply_async(args=[job.pk], queue=LEARNING_QUEUE))
    return job


def _rephrase_watermark(job: Job) -> int | None:
    """Where to start: params["after_id"] if given (null: everything), else where the last done run stopped."""
    if "after_id" in job.params:
        value = job.params["after_id"]
        return int(value) if value is not None else None
    last = (
        Job.objects.filter(kind=REPHRASE_JOB_KIND, status=Job.Status.DONE)
        .exclude(pk=job.pk)
        .order_by("-finished_at", "-pk")
        .first()
    )
    value = (last.result or {}).get("watermark_id") if last else None
    return int(value) if isinstance(value, int) else None


@shared_task(name="feedback.detect_rephrases", time_limit=1800, soft_time_limit=1700, ignore_result=True)
def detect_rephrases_task(job_id: int) -> None:
    """Detect rephrases among the turns since the last run; the Job row says how it went."""
    from feedback.rephrases import detect_rephrases

    job = Job.claim(job_id)
    if job is None:
        log.warning("detect_rephrases job %s is missing or already running/done; skipped", job_id)
        return
    try:
        after_id = _rephrase_watermark(job)
        result = detect_rephrases(after_id=after_id)
    except Exception as exc:  # the job row must say why, whatever went wrong
        log.exception("detect_rephrases job %s failed", job_id)
        job.fail(exc)
        return
    job.finish(
        f"{result['detected']} rephrases among {result['candidates']} candidate pairs "
        f"({result['created']} new, turns after id {after_id})",
        {**result, "after_id": after_id},
    )
