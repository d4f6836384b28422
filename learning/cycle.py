"""One learning cycle: the learning jobs, in order, each as its real Celery task.

The simulator runs a cycle after every simulated day; an operator (or beat) can
run one the same way (`manage.py learn`). Each step gets a Job row; the task reads its
parameters from the row and writes its outcome back. With sync=True a task runs
eagerly in this process (`.apply()`), else it is queued (`.delay()`) and we wait
for its Job row to finish, so the next step sees what the previous one learned.

LEARNING_STEPS is the one list of steps: every learner adds its task here (written
with learning.jobs.learning_task), in the order the steps must run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from learning.models import Job
from learning.tasks import detect_rephrases_task, train_nlu_task


@dataclass(frozen=True)
class LearningStep:
    name: str
    task: Any  # a learning_task (learning/jobs.py): a Celery task taking the Job id
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def job_kind(self) -> str:
        return self.task.job_kind


LEARNING_STEPS: list[LearningStep] = [
    # Finds rephrases among the turns since its last run (learning/rephrases.py): the implicit
    # failure signal and the pairs later steps learn from, so it runs first.
    LearningStep(name="rephrases", task=detect_rephrases_task),
    # Retrains the NLU when its data changed; skips (cheaply) when it did not.
    LearningStep(name="nlu", task=train_nlu_task),
]

FINISHED = (Job.Status.DONE, Job.Status.FAILED)


class LearningTimeout(RuntimeError):
    pass


def _wait(job_id: int, timeout: float, poll: float = 0.5) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if job.status in FINISHED:
            return job
        if time.monotonic() > deadline:
            raise LearningTimeout(
                f"learning job {job_id} ({job.kind}) still {job.status} after {timeout:.0f}s; is a Celery worker "
                "consuming the `learning` queue? (or run with sync=True / --sync)"
            )
        time.sleep(poll)


def run_learning_cycle(
    *,
    sync: bool = False,
    timeout: float = 3600.0,
    steps: list[LearningStep] | None = None,
    on_step: Callable[[str, dict], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every learning step in order; return {step name: {job, status, message, result}}.

    A failed step is reported and the cycle goes on: later steps must still run on
    what exists (the failed job's row says why).
    """
    report: dict[str, dict[str, Any]] = {}
    for step in steps if steps is not None else LEARNING_STEPS:
        job = Job.objects.create(kind=step.job_kind, params=dict(step.params))
        if sync:
            step.task.apply(args=[job.pk])
            job.refresh_from_db()
        else:
            step.task.delay(job.pk)
            job = _wait(job.pk, timeout)
        report[step.name] = {
            "job": job.pk,
            "status": job.status,
            "message": job.message,
            "result": job.result,
        }
        if on_step is not None:
            on_step(step.name, report[step.name])
    return report
