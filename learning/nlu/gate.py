"""The NLU's promotion gate: a newly trained NLU version replaces the active one only if it
does not regress on the metrics of its manifest beyond settings.NLU_PROMOTION_TOLERANCE and
beyond the sampling error of the held-out examples they were measured on.

Both manifests carry metrics measured on the validation split and the hash of that
split's examples (`validation_hash`), and on its fixed part, the held-out seed and public
templates (`fixed_validation_hash`, unchanged by new feedback labels). The figures are
compared on the whole split when its hashes match, else on the fixed part when those
match: on different examples a drop or a rise says nothing about the models. A version
continued from the active one on new labels (the learning cycle's retrain) carries both
versions' figures on the validation split, measured in its run.

A candidate trained on no example of an intent the active version was trained on is
rejected whatever its metrics: it would stop understanding that intent. So is one that reads
requests that recently went well (the generated "success" labels) worse than the active version
does: what works must keep working, whatever new labels taught it.

When both differ (new seed or public data moved the split, or the active version
predates validation hashes) the gate cannot compare, and it PROMOTES, saying so in
the version's note. Why promote: new data is how the assistant is taught, and the
only other choice, refusing every model trained on changed data, would stop the
assistant from ever learning; the replaced version stays registered (retired), so
`manage.py nlu_rollback` undoes the promotion. With no active version there is
nothing to protect and the candidate is promoted.

Nothing here imports torch.
"""

from __future__ import annotations

import math

from django.conf import settings

from learning.registry import Decision

# (label, path into the validation metrics, path to how many items it was measured on): higher is better.
GATED_METRICS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("intent_accuracy", ("intent_accuracy",), ("examples",)),
    ("slot_f1", ("slots", "f1"), ("slots", "gold_spans")),
    ("oos_recall", ("oos_recall",), ("oos_examples",)),
)
# A drop counts as a regression only beyond NLU_PROMOTION_TOLERANCE and beyond what measuring on a sample
# of held-out examples explains: this many standard errors of the difference (one-sided 95%). Two trainings
# on nearly the same data differ by a point or two of slot F1 on ~1,500 examples by chance alone; a gate
# that refused those would refuse every retrain on new labels.
Z_ONE_SIDED_95 = 1.645


def _metric(metrics: dict, path: tuple[str, ...]) -> float | None:
    value: object = metrics
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def decide(candidate: dict, active: dict | None, *, tolerance: float | None = None) -> Decision:
    """Whether `candidate` (a manifest) may replace the `active` version's manifest."""
    tol = float(settings.NLU_PROMOTION_TOLERANCE if tolerance is None else tolerance)
    if active is None:
        return Decision(True, False, "promoted: no active version to compare with")
    name = active.get("version", "?")
    # A model that never saw an intent the active one answers would silently drop it
    # (e.g. one trained on public data only, without the seed utterances of our skills).
    forgotten = sorted(set(active.get("intent_counts") or {}) - set(candidate.get("intent_counts") or {}))
    if forgotten:
        shown = ", ".join(forgotten[:8]) + (f" and {len(forgotten) - 8} more" if len(forgotten) > 8 else "")
        return Decision(
            False, False, f"rejected: no training example of {shown}, which {name} understands", tuple(forgotten)
        )
    # What works must keep working: requests that recently went well (learning/generated_labels.py), read
    # by both versions when the candidate was trained (learning/nlu/service.still_works).
    works = (candidate.get("metrics") or {}).get("works") or {}
    if works.get("n") and works["accuracy"] < works["active_accuracy"] - tol:
        return Decision(
            False,
            True,
            f"rejected: it reads {works['accuracy']:.4f} of {works['n']} requests that recently went well as they "
            f"were understood, {name} {works['active_accuracy']:.4f} (tolerance {tol:g})",
            ("works",),
        )
    kept = (
        f"; it reads {works['n']} requests that recently went well {works['accuracy']:.4f} vs {works['active_accuracy']:.4f}"
        if works.get("n")
        else ""
    )
    comparison = _comparison(candidate, active)
    if comparison is None:
        why = (
            "the active version records no validation hash"
            if not active.get("validation_hash")
            else "the validation splits differ, and so do the fixed validation sets"
        )
        return Decision(True, False, f"promoted without comparison with {name}: {why} (metrics not comparable){kept}")
    ours, theirs, on = comparison
    regressions: list[str] = []
    compared: list[str] = []
    for label, path, count in GATED_METRICS:
        new, old = _metric(ours, path), _metric(theirs, path)
        if new is None or old is None:
            continue  # a metric one of them lacks (e.g. no OOS examples) cannot regress
        compared.append(f"{label} {new:.4f} vs {old:.4f}")
        allowed = max(tol, Z_ONE_SIDED_95 * _standard_error(new, _metric(ours, count), old, _metric(theirs, count)))
        if new < old - allowed:
            regressions.append(f"{label} {new:.4f} < {old:.4f} - {allowed:.4f}")
    if regressions:
        return Decision(
            False, True, f"rejected: regressed against {name}{on} on " + "; ".join(regressions), tuple(regressions)
        )
    return Decision(
        True, True, f"promoted: no regression beyond {tol:g} against {name}{on} (" + ", ".join(compared) + ")" + kept
    )


def _standard_error(new: float, n_new: float | None, old: float, n_old: float | None) -> float:
    """The standard error of the difference of two proportions measured on n_new and n_old items (0 when
    a manifest does not say how many)."""
    if not n_new or not n_old:
        return 0.0
    return math.sqrt(new * (1 - new) / n_new + old * (1 - old) / n_old)


def _comparison(candidate: dict, active: dict) -> tuple[dict, dict, str] | None:
    """(the candidate's metrics, the active version's, on what) measured on the same examples: both
    measured in the candidate's run (a version continued from the active one, learning/nlu/heads.py
    continue_training), else the whole validation split, else its fixed part (the held-out seed and public
    templates, the same across retrains on new labels, learning/nlu/run.split_examples), else None."""
    metrics, theirs = candidate.get("metrics") or {}, active.get("metrics") or {}
    if metrics.get("seen_validation") and metrics.get("active_on_seen_validation"):
        both = metrics["seen_validation"], metrics["active_on_seen_validation"]
        return *both, " on the validation split (both measured in this run)"
    for split, key, on in (
        ("validation", "validation_hash", ""),
        ("fixed_validation", "fixed_validation_hash", " on the fixed validation set"),
    ):
        if candidate.get(key) and candidate.get(key) == active.get(key) and metrics.get(split) and theirs.get(split):
            return metrics[split], theirs[split], on
    return None
