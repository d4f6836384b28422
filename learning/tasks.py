"""Every learning task, each a `learning_task` (learning/jobs.py): thin, the work is in plain modules.

The learning cycle (learning/cycle.py) runs them in order; `manage.py learn`, beat
and the simulator run the cycle.
"""

from __future__ import annotations

from celery import shared_task

from assistant.registry import ModelUnavailable
from learning import failure_points, rephrases
from learning.clusters import build_clusters
from learning.defects import NotEnoughEvidence, score_turns, train_and_register
from learning.generated_labels import generate_labels
from learning.jobs import JobOutcome, Progress, learning_task, previous_result
from learning.mining import layer_outcomes, mine_and_store, mine_shard
from learning.models import Job
from learning.nlu.context import train_and_register as train_context
from learning.nlu.service import train_from_params
from learning.online import build_and_register
from learning.preferences import train_and_register as train_preferences


@learning_task("train_nlu", time_limit=4 * 3600)  # the best recipe: tens of minutes on a busy two-core machine
def train_nlu_task(job: Job, progress: Progress) -> JobOutcome:
    """Train the NLU, register it and let the gate promote it.

    params: recipe, mode ("full"/"incremental"), force, force_promote, architecture ("heads"/"joint"), and for training on
    labelled files: data (paths), format, split, seed (false: the files only)."""
    outcome = train_from_params(job.params, progress)
    message = outcome.reason if outcome.skipped else f"registered {outcome.version.version}: {outcome.gate_note}"
    return JobOutcome(message, outcome.as_dict())


@learning_task("train_context", exclusive=True)
def train_context_task(job: Job, progress: Progress) -> JobOutcome:
    """Train the context re-ranker for the serving NLU version (learning/nlu/context.py) when its
    examples or the NLU changed; params.force retrains anyway."""
    try:
        result = train_context(force=bool(job.params.get("force")), progress=progress)
    except ModelUnavailable as exc:  # no NLU yet: nothing to re-rank
        result = {"skipped": str(exc)}
    message = result.get("skipped") or f"re-ranker {result['version']} ({result['status']}): {result['note']}"
    return JobOutcome(message, result)


@learning_task("detect_rephrases")
def detect_rephrases_task(job: Job, progress: Progress) -> JobOutcome:
    """Train a rephrase detector on reviewers' verdicts (the gate promotes it only if it beats the fixed
    formula), then detect rephrases among the turns since the last run (params.after_id overrides; null: all
    turns) with whichever detects."""
    if "after_id" in job.params:
        value = job.params["after_id"]
        after_id = int(value) if value is not None else None  # a bad value fails the job, saying so
    else:
        value = previous_result(job, "watermark_id")
        after_id = value if isinstance(value, int) else None
    try:
        trained = rephrases.train_and_register(progress)
    except rephrases.NotEnoughEvidence as exc:
        trained = {"skipped": str(exc)}
    result = rephrases.detect_rephrases(after_id=after_id)
    return JobOutcome(
        f"{result['detected']} rephrases among {result['candidates']} candidate pairs "
        f"({result['created']} new, turns after id {after_id}) by {result['detector_version']}; "
        f"trained detector: {trained.get('decision') or trained.get('skipped')}",
        {**result, "after_id": after_id, "training": trained},
    )


@learning_task("label_defects")
def label_defects_task(job: Job, progress: Progress) -> JobOutcome:
    """Train the defect model, let its gate decide, and store P(defect) on the turns since the last
    run but one (the last run's turns again: their reactions may have come since)."""
    try:
        trained = train_and_register(progress)
    except NotEnoughEvidence as exc:
        trained = {"skipped": str(exc)}
    after_id = previous_result(job, "previous_watermark_id")
    try:
        scored = score_turns(after_id if isinstance(after_id, int) else None, progress)
    except ModelUnavailable as exc:  # no version yet: nothing to score with, say so
        scored = {"scored": 0, "watermark_id": None, "skipped": str(exc)}
    last = previous_result(job, "watermark_id")
    message = (
        f"model {trained.get('version', '-')} ({trained.get('status') or trained.get('skipped')}); "
        f"scored {scored['scored']} turns"
    )
    return JobOutcome(
        message,
        {
            "training": trained,
            "scoring": scored,
            "watermark_id": scored.get("watermark_id") or last,
            "previous_watermark_id": last if isinstance(last, int) else None,
        },
    )


@learning_task("generate_labels", exclusive=True)
def generate_labels_task(job: Job, progress: Progress) -> JobOutcome:
    """Recompute the labels generated from feedback (failed turns rephrased successfully, turns that went
    well) for the NLU's next training."""
    result = generate_labels()
    return JobOutcome(
        f"{result['labels']} labels ({result['from_rephrases']} from rephrases, "
        f"{result['from_successes']} from turns that went well)",
        result,
    )


@learning_task("learn_preferences", exclusive=True)
def learn_preferences_task(job: Job, progress: Progress) -> JobOutcome:
    """Fit every user's preference distributions (learning/preferences.py) and let the gate decide."""
    result = train_preferences(progress)
    holdout = result["holdout"]
    return JobOutcome(
        f"preference model {result['version']} ({result['status']}): {result['rows']} inferred preferences; "
        f"held-out accuracy {holdout['accuracy']} on {holdout['n']} requests",
        result,
    )


@learning_task("failure_points", exclusive=True)
def failure_points_task(job: Job, progress: Progress) -> JobOutcome:
    """Train the failure-point model, let its gate decide, and store the active version's point on the
    likely defects (learning/failure_points.py)."""
    try:
        trained = failure_points.train_and_register(progress)
    except failure_points.NotEnoughEvidence as exc:
        trained = {"skipped": str(exc)}
    try:
        stored = failure_points.store_points(progress)
    except ModelUnavailable as exc:  # no version yet: nothing to conclude with, say so
        stored = {"stored": 0, "skipped": str(exc)}
    return JobOutcome(
        f"model {trained.get('version', '-')} ({trained.get('status') or trained.get('skipped')}); "
        f"points stored on {stored['stored']} likely defects",
        {"training": trained, "storing": stored},
    )


@learning_task("cluster_defects", exclusive=True)
def cluster_defects_task(job: Job, progress: Progress) -> JobOutcome:
    """Group the likely defects by what was asked, for the review inbox (learning/clusters.py)."""
    result = build_clusters(progress)
    return JobOutcome(
        f"{result['clusters']} clusters of {result['turns']} likely defects ({result['wordings']} wordings)", result
    )


@learning_task("mine_rewrites", exclusive=True)
def mine_rewrites_task(job: Job, progress: Progress) -> JobOutcome:
    """Update fired rules' outcomes, then mine rewrite rules from all rephrase chains (learning/mining.py)."""
    result = mine_and_store(progress)
    changes = ", ".join(f"{k} {v}" for k, v in sorted(result["changes"].items())) or "no change"
    return JobOutcome(
        f"{result['candidates']['global']} global and {result['candidates']['personal']} personal rules mined "
        f"from {result['occurrences']} turns in {result['shards']} shard(s): {changes}",
        result,
    )


@learning_task("mine_shard")
def mine_shard_task(job: Job, progress: Progress) -> JobOutcome:
    """Mine one shard of the rephrase graph for a mining job that split it (learning.mining.mine_in_shards)."""
    return mine_shard(job, progress)


@learning_task("build_rewrite_index", exclusive=True)
def build_rewrite_index_task(job: Job, progress: Progress) -> JobOutcome:
    """Rebuild the online rewrite index from the turns that went well and retrain its ranker."""
    result = build_and_register(progress, layer_outcomes=layer_outcomes())
    m = result["metrics"]
    return JobOutcome(
        f"index {result['version']} ({result['status']}): {m['global_entries']} global and "
        f"{m['personal_entries']} personal entries, ranker from {m['training_queries']} rephrases, "
        f"threshold {result['threshold']}",
        result,
    )


@shared_task(name="learning.start_learning_cycle", time_limit=60, soft_time_limit=50, ignore_result=True)
def start_learning_cycle_task(learners: str = "all") -> int:
    """Beat's entry: queue a learning cycle job (learning/cycle.py runs it)."""
    return Job.enqueue("learning_cycle", {"learners": learners}).pk


@shared_task(name="learning.start_full_nlu_retrain", time_limit=60, soft_time_limit=50, ignore_result=True)
def start_full_nlu_retrain_task() -> int:
    """Beat's weekly entry: queue a full NLU retrain (the learning cycle's retrains continue the serving
    version on new labels; this one trains from scratch on everything, with the serving recipe)."""
    return Job.enqueue("train_nlu", {"mode": "full"}).pk


@shared_task(name="learning.reap_stale_jobs", time_limit=60, soft_time_limit=50, ignore_result=True)
def reap_stale_jobs_task() -> list[int]:
    """Fail the running jobs whose worker stopped beating (beat runs this every minute)."""
    return Job.reap_stale()
