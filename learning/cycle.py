"""One learning cycle: the learning jobs, in order, each as its real Celery task.

The simulator runs a cycle after every simulated day; an operator (or beat) can
run one the same way (`manage.py learn`). Each step gets a Job row; the task reads its
parameters from the row and writes its outcome back. With sync=True a task runs
eagerly in this process (`.apply()`), else it is queued (`.delay()`) and we wait
for its Job row to finish, so the next step sees what the previous one learned.

LEARNING_STEPS is the one list of steps: every learner adds its task here (written
with learning.jobs.learning_task), in the order the steps must run, saying which
learners it serves: "rewrites" (rules and online rewriting), "nlu" (the understanding
model), "preferences" (the preference models), "review" (what the review inbox shows), or
several (the evidence they share). `learners` chooses which run: all (default), none,
rewrites, nlu, preferences or review (the simulator's --learning compares them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from learning.jobs import JobOutcome, Progress, learning_task
from learning.models import Job
from learning.tasks import (
    build_rewrite_index_task,
    cluster_defects_task,
    detect_rephrases_task,
    failure_points_task,
    generate_labels_task,
    label_defects_task,
    learn_preferences_task,
    mine_rewrites_task,
    train_context_task,
    train_nlu_task,
)

REWRITES, NLU, PREFERENCES, REVIEW = "rewrites", "nlu", "preferences", "review"
LEARNERS = ("all", "none", REWRITES, NLU, PREFERENCES, REVIEW)


@dataclass(frozen=True)
class LearningStep:
    name: str
    task: Any  # a learning_task (learning/jobs.py): a Celery task taking the Job id
    serves: frozenset[str]  # the learners this step is part of (REWRITES, NLU)
    params: dict[str, Any] = field(default_factory=dict)
    # True for a step that labels stored turns (rephrases, defect probabilities): the simulator
    # runs those once more after its last day, so that the last day's turns are scored too.
    labels_turns: bool = False

    @property
    def job_kind(self) -> str:
        return self.task.job_kind


LEARNING_STEPS: list[LearningStep] = [
    # Finds rephrases among the turns since its last run (learning/rephrases.py): the implicit
    # failure signal and the pairs later steps learn from, so it runs first.
    LearningStep(
        name="rephrases", task=detect_rephrases_task, serves=frozenset({REWRITES, NLU, REVIEW}), labels_turns=True
    ),
    # P(defect) on every turn, from its trace, what followed it and the reply (learning/defects.py):
    # the weights the rewrite miner and the NLU's generated labels read, and what the review inbox lists.
    LearningStep(name="defects", task=label_defects_task, serves=frozenset({REWRITES, NLU, REVIEW}), labels_turns=True),
    # What the NLU should have read, from failed turns rephrased successfully and turns that went well
    # (learning/generated_labels.py): after the rephrases and the defect scores it reads. The review inbox
    # groups failures by what they were meant as, which these say.
    LearningStep(
        name="generated_labels", task=generate_labels_task, serves=frozenset({NLU, REVIEW}), labels_turns=True
    ),
    # What each user likes, from what they taught, asked for and let play (learning/preferences.py):
    # after the defect model, whose scores say which served values were not liked.
    LearningStep(name="preferences", task=learn_preferences_task, serves=frozenset({PREFERENCES})),
    # Where each likely defect failed (asr, nlu, rewrite, resolve, execute, none), from its trace, its
    # words and how the user retried (learning/failure_points.py): after the defect scores and before the
    # clusters, which show where most of their turns failed.
    LearningStep(name="failure_points", task=failure_points_task, serves=frozenset({REVIEW}), labels_turns=True),
    # The likely defects grouped by what was asked, for the review inbox (learning/clusters.py).
    LearningStep(name="defect_clusters", task=cluster_defects_task, serves=frozenset({REVIEW}), labels_turns=True),
    # Rewrite rules from rephrase chains by an absorbing Markov chain, after the fired rules'
    # outcomes have been counted (learning/mining.py).
    LearningStep(name="mining", task=mine_rewrites_task, serves=frozenset({REWRITES})),
    # The online rewrite index (global and personal layers of what works) and its ranker
    # (learning/online.py), for risky turns no rule covers.
    LearningStep(name="online_index", task=build_rewrite_index_task, serves=frozenset({REWRITES})),
    # Retrains the NLU when enough labels are new: continues the serving version on them plus a replay
    # sample (a full retrain runs weekly, NLU_FULL_RETRAIN_DAYS, or on demand); skips cheaply otherwise.
    LearningStep(name="nlu", task=train_nlu_task, serves=frozenset({NLU}), params={"mode": "incremental"}),
    # The context re-ranker over the serving NLU's readings, on the context-labelled seed and the labelled
    # turns in their contexts (learning/nlu/context.py); skips when neither they nor the NLU changed.
    LearningStep(name="context", task=train_context_task, serves=frozenset({NLU})),
]


def steps_for(learners: str) -> list[LearningStep]:
    """The steps of LEARNING_STEPS that `learners` (one of LEARNERS) runs, in order."""
    if learners not in LEARNERS:
        raise ValueError(f"learners is one of {', '.join(LEARNERS)}, not {learners!r}")
    if learners == "all":
        return list(LEARNING_STEPS)
    return [step for step in LEARNING_STEPS if learners in step.serves]


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
    learners: str = "all",
    on_step: Callable[[str, dict], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the learning steps in order (`steps`, else those of `learners`); return
    {step name: {job, status, message, result}}.

    A failed step is reported and the cycle goes on: later steps must still run on
    what exists (the failed job's row says why).
    """
    report: dict[str, dict[str, Any]] = {}
    for step in steps if steps is not None else steps_for(learners):
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


@learning_task("learning_cycle", exclusive=True, time_limit=4 * 3600)
def learning_cycle_task(job: Job, progress: Progress) -> JobOutcome:
    """One whole learning cycle in this worker (beat starts one every LEARNING_CYCLE_MINUTES, the
    admin's "Run a learning cycle now" on demand); a cycle started while one runs is skipped.

    params: learners (all, rewrites, nlu)."""
    learners = str(job.params.get("learners", "all"))
    steps = steps_for(learners)
    done: list[str] = []

    def on_step(name: str, step: dict) -> None:
        done.append(f"{name} {step['status']}")
        progress(len(done) / max(1, len(steps)), ", ".join(done))

    report = run_learning_cycle(sync=True, steps=steps, on_step=on_step)
    return JobOutcome("; ".join(f"{k}: {v['status']} ({v['message'][:120]})" for k, v in report.items()), report)
