"""Every learning task, each a `learning_task` (learning/jobs.py): thin, the work is in plain modules.

The learning cycle (learning/cycle.py) runs them in order; `manage.py learn`, beat
and the simulator run the cycle.
"""

from __future__ import annotations

from celery import shared_task

from learning.jobs import JobOutcome, Progress, learning_task, previous_result
from learning.models import Job
from learning.nlu.service import train_from_params
from learning.rephrases import detect_rephrases


@learning_task("train_nlu")
def train_nlu_task(job: Job, progress: Progress) -> JobOutcome:
    """Train the NLU, register it and let the gate promote it.

    params: force, force_promote, architecture ("heads"/"joint"), and for training on
    labelled files: data (paths), format, split, seed (false: the files only)."""
    outcome = train_from_params(job.params, progress)
    message = outcome.reason if outcome.skipped else f"registered {outcome.version.version}: {outcome.gate_note}"
    return JobOutcome(message, outcome.as_dict())


@learning_task("detect_rephrases")
def detect_rephrases_task(job: Job, progress: Progress) -> JobOutcome:
    """Detect rephrases among the turns since the last run (params.after_id overrides; null: all turns)."""
    if "after_id" in job.params:
        value = job.params["after_id"]
        after_id = int(value) if value is not None else None  # a bad value fails the job, saying so
    else:
        value = previous_result(job, "watermark_id")
        after_id = value if isinstance(value, int) else None
    result = detect_rephrases(after_id=after_id)
    return JobOutcome(
        f"{result['detected']} rephrases among {result['candidates']} candidate pairs "
        f"({result['created']} new, turns after id {after_id})",
        {**result, "after_id": after_id},
    )


@shared_task(name="learning.reap_stale_jobs", time_limit=60, soft_time_limit=50, ignore_result=True)
def reap_stale_jobs_task() -> list[int]:
    """Fail the running jobs whose worker stopped beating (beat runs this every minute)."""
    return Job.reap_stale()
