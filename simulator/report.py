"""The simulator's report: per day and arm, and a summary.

Per day and arm (turns of supported goals only; unsupported goals, when included,
are reported apart under `unsupported`):
  turns, defect_rate (turns whose goal was not met by that turn),
  goal_failure_rate (goals, counted on the day they were brought, never met),
  barge_in_rate, rephrase_rate (turns that rephrase or repeat the previous try),
  rewrites_fired, wins, losses, failure_points {point: turns}.

Summary: relative_defect_reduction {arm: 1 - last-day defect rate of the arm /
last-day defect rate of control}, with relative_defect_reduction_ci {arm: [low, high]},
a 95% percentile-bootstrap interval that resamples users (a user's turns stay together,
since one user's failures are not independent); relative_defect_reduction_from_day1 {arm:
1 - (the arm's last-day rate / its day-1 rate) / (the same ratio for control)} with its
interval (_ci, the same bootstrap, a user's two days together): the arms' users differ
before anything is learned (experiments.arm_for hashes usernames; at 200 users per arm
day-1 rates have differed by 17% relative), and this takes each arm's own start out
(no rewrite fires on day 1); relative_defect_reduction_adjusted {arm: the last-day reduction with
each group's rate adjusted for its users' day-1 rates by its own regression on them (the regression
adjustment of A/B testing's CUPED, with a slope per group)} with its interval (_adjusted_ci, the same bootstrap, the
slope fitted again in each sample): the same quantity as relative_defect_reduction, with the day-1
imbalance between arms taken out and, as users' days resemble each other, a narrower interval; win_loss_ratio (wins / losses over the
run), false_fire_rate (losses / turns that would have succeeded without the rewrite),
regression_rate (turns a rewrite turned from success into failure / turns that would
have succeeded without it), rephrase_detection {precision, recall, f1, n_detected,
n_true} of the product's rephrase detector (feedback.Rephrase rows,
learning/rephrases.py) against the true links, null when the detector did not run (also
per day, under days[].all); defect_model {auc, ece, n} of the defect probabilities the
product stored on its turns against the true outcome (null while none are stored);
failure_point {accuracy, accuracy_ci (95% Wilson), recall {point: share}, n, coverage} of the
failure points the product stored (learning/failure_points.py) against the true ones, on the truly failed
turns no reviewer labelled (the truth's "unsupported" is the product's "none"; coverage: the share of truly
failed turns that got a point at all), null when the step did not run; generated_labels {rephrase,
success: {labels, precision, precision_ci}, labels}: the labels the product generated from feedback
for the NLU, scored against the goals' intents (null when the step did not run); teaching (simulator/teaching.py):
the success of underspecified requests before and after users taught their preferences (and for
users who never did), how taught routines work on first and on paraphrased reuse, and the
"Did I answer your question?" prompts per 100 turns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from assistant.nlu.metrics import binary_calibration_error
from simulator.teaching import summarise as summarise_teaching
from simulator.truth import FAILURE_POINTS

BOOTSTRAP_SAMPLES = 2000
ECE_BINS = 10


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def arm_stats(turns: list[dict], episodes: list[dict]) -> dict[str, Any]:
    n = len(turns)
    points = Counter(t["failure_point"] for t in turns)
    return {
        "turns": n,
        "defect_rate": _rate(sum(1 for t in turns if not t["met"]), n),
        "goal_failure_rate": _rate(sum(1 for e in episodes if not e["met"]), len(episodes)),
        "goals": len(episodes),
        "barge_in_rate": _rate(sum(1 for t in turns if t["barge_in"]), n),
        "rephrase_rate": _rate(sum(1 for t in turns if t["move"] in ("rephrase", "repeat")), n),
        "rewrites_fired": sum(1 for t in turns if t["rewrite_fired"]),
        "wins": sum(1 for t in turns if t["rewrite_effect"] == "win"),
        "losses": sum(1 for t in turns if t["rewrite_effect"] == "loss"),
        "failure_points": {p: points[p] for p in FAILURE_POINTS if points[p]},
    }


FIXABLE = ("asr", "nlu", "rewrite")  # failures a rewrite rule or a reviewer's label can fix


def generated_label_precision(
    records: list[dict], goals: list, generated: dict[int, tuple[str, str]] | None
) -> dict[str, Any] | None:
    """How many labels the product generated from feedback (learning/generated_labels.py) for the simulated
    turns, and the share whose intent is the one the user's goal needed (with a 95% Wilson interval), per
    source: a failed turn's successful rephrase, or a turn that went well."""
    if generated is None:
        return None
    from scipy.stats import binomtest

    wanted = {g.goal_id: g.intent for g in goals}
    goal_intent = {r["turn_id"]: wanted.get(r["goal"]) for r in records}
    out: dict[str, Any] = {}
    for source in ("rephrase", "success"):
        rows = [(turn, intent) for turn, (intent, kind) in generated.items() if kind == source and turn in goal_intent]
        right = sum(1 for turn, intent in rows if goal_intent[turn] == intent)
        interval = binomtest(right, len(rows)).proportion_ci(method="wilson") if rows else None
        out[source] = {
            "labels": len(rows),
            "precision": _rate(right, len(rows)),
            "precision_ci": [round(interval.low, 4), round(interval.high, 4)] if interval else None,
        }
    out["labels"] = sum(part["labels"] for part in out.values())
    return out


def inbox_coverage(turns: list[dict], inbox: dict | None) -> dict[str, Any] | None:
    """Share of the truly failed turns that rewrites or labels can fix which the review inbox's first 10
    clusters hold (the issue's target: at least half)."""
    if inbox is None:
        return None
    fixable = {t["turn_id"] for t in turns if not t["met"] and t["failure_point"] in FIXABLE}
    top = set().union(*inbox["top"]) if inbox["top"] else set()
    return {
        "top10_coverage": _rate(len(fixable & top), len(fixable)),
        "fixable_defects": len(fixable),
        "clusters": inbox["clusters"],
    }


# The simulator's true failure points in the product's terms (feedback.Label.FailurePoint).
AS_PRODUCT_POINT = {"unsupported": "none"}


def failure_point_accuracy(turns: list[dict], predicted: dict[int, str] | None) -> dict[str, Any] | None:
    """How often the product's stored failure point is the true one, on the truly failed turns it scored."""
    if predicted is None:
        return None
    failed = [t for t in turns if not t["met"] and t["failure_point"] not in ("correct", "error")]
    scored = [t for t in failed if t["turn_id"] in predicted]
    truth = [AS_PRODUCT_POINT.get(t["failure_point"], t["failure_point"]) for t in scored]
    hits = [predicted[t["turn_id"]] == p for t, p in zip(scored, truth, strict=True)]
    recall = {}
    for point in sorted(set(truth)):
        mine = [h for h, p in zip(hits, truth, strict=True) if p == point]
        recall[point] = {"recall": round(sum(mine) / len(mine), 4), "n": len(mine)}
    from scipy.stats import binomtest

    interval = binomtest(sum(hits), len(hits)).proportion_ci(method="wilson") if hits else None
    return {
        "accuracy": _rate(sum(hits), len(hits)),
        "accuracy_ci": [round(interval.low, 4), round(interval.high, 4)] if interval else None,
        "recall": recall,
        "n": len(hits),
        "coverage": _rate(len(scored), len(failed)),
    }


def score_links(
    true_links: set[tuple[int, int]], predicted: set[tuple[int, int]] | None
) -> dict[str, float | int | None]:
    """Precision/recall/F1 of predicted (earlier turn, rephrase) links; nulls without a detector."""
    if predicted is None:
        return {"precision": None, "recall": None, "f1": None, "n_detected": None, "n_true": len(true_links)}
    hits = len(true_links & predicted)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(true_links) if true_links else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "n_detected": len(predicted),
        "n_true": len(true_links),
    }


def _user_counts(turns: list[dict]) -> np.ndarray:
    """[[defects, turns] per user] of these turns."""
    per_user: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for t in turns:
        per_user[t["user"]][0] += not t["met"]
        per_user[t["user"]][1] += 1
    return np.array([per_user[u] for u in sorted(per_user)], dtype=float).reshape(-1, 2)


def reduction_interval(arm: list[dict], control: list[dict], seed: int) -> list[float] | None:
    """95% bootstrap interval of 1 - defect rate(arm) / defect rate(control), resampling users."""
    a, c = _user_counts(arm), _user_counts(control)
    if len(a) < 2 or len(c) < 2:
        return None
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(BOOTSTRAP_SAMPLES, len(a)))
    ic = rng.integers(0, len(c), size=(BOOTSTRAP_SAMPLES, len(c)))
    rate_a = a[ia, 0].sum(axis=1) / a[ia, 1].sum(axis=1)
    defects_c = c[ic, 0].sum(axis=1)
    keep = defects_c > 0
    if not keep.any():
        return None
    reduction = 1 - rate_a[keep] / (defects_c[keep] / c[ic, 1].sum(axis=1)[keep])
    low, high = np.percentile(reduction, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def _user_days(first: list[dict], last: list[dict]) -> np.ndarray:
    """[[day-1 defects, day-1 turns, last-day defects, last-day turns] per user] of these turns."""
    per_user: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for column, turns in ((0, first), (2, last)):
        for t in turns:
            per_user[t["user"]][column] += not t["met"]
            per_user[t["user"]][column + 1] += 1
    return np.array([per_user[u] for u in sorted(per_user)], dtype=float).reshape(-1, 4)


def _reduction_from_start(arm: np.ndarray, control: np.ndarray) -> np.ndarray:
    """1 - (arm's last / first rate) / (control's last / first rate), from summed counts (…, 4)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        change = lambda x: (x[..., 2] / x[..., 3]) / (x[..., 0] / x[..., 1])  # noqa: E731
        return 1 - change(arm) / change(control)


def _from_start(
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    arm_first: list[dict],
    arm_last: list[dict],
    control_first: list[dict],
    control_last: list[dict],
    seed: int,
) -> tuple[float | None, list[float] | None]:
    """`statistic` of the arm's and control's users' first and last days (arrays (..., users, 4) as _user_days
    gives, leading axes for bootstrap samples), and its 95% bootstrap interval resampling users (each user's
    two days together)."""
    a, c = _user_days(arm_first, arm_last), _user_days(control_first, control_last)
    if len(a) < 2 or len(c) < 2:
        return None, None
    estimate = float(statistic(a, c))
    if not np.isfinite(estimate):
        return None, None
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(BOOTSTRAP_SAMPLES, len(a)))
    ic = rng.integers(0, len(c), size=(BOOTSTRAP_SAMPLES, len(c)))
    samples = statistic(a[ia], c[ic])
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return round(estimate, 4), None
    low, high = np.percentile(samples, [2.5, 97.5])
    return round(estimate, 4), [round(float(low), 4), round(float(high), 4)]


def reduction_from_day1(
    arm_first: list[dict], arm_last: list[dict], control_first: list[dict], control_last: list[dict], seed: int
) -> tuple[float | None, list[float] | None]:
    """The arm's change from day 1 to the last day relative to control's, and its 95% bootstrap interval
    resampling users (each user's two days together)."""

    def statistic(a: np.ndarray, c: np.ndarray) -> np.ndarray:
        return _reduction_from_start(a.sum(axis=-2), c.sum(axis=-2))

    return _from_start(statistic, arm_first, arm_last, control_first, control_last, seed)


def _adjusted_reduction(arm: np.ndarray, control: np.ndarray) -> np.ndarray:
    """1 - the arm's last-day defect rate / control's, each adjusted for its users' day-1 rates.

    `arm`, `control`: (..., users, 4) as _user_days gives, leading axes for bootstrap samples. A user's
    day-1 rate x predicts their last-day rate (the same voice, the same requests); with the slope theta_g of
    last-day rate on x within each group (weighted by last-day turns: a slope of its own, as learning
    changes how much the start matters), each group's last-day rate becomes rate - theta_g * (its users'
    mean x - everyone's mean x): what it would have been with everyone's start (Lin's interacted
    regression adjustment). A user with no day-1 turns takes the mean x of those with some (no adjustment)."""

    def day1_rate(g: np.ndarray) -> np.ndarray:
        return g[..., 0] / np.where(g[..., 1] > 0, g[..., 1], 1)

    with np.errstate(divide="ignore", invalid="ignore"):
        both = np.concatenate([arm, control], axis=-2)
        started = np.where(both[..., 1] > 0, both[..., 3], 0.0)  # weights of the users with day-1 turns
        x_known = (started * day1_rate(both)).sum(-1) / started.sum(-1)

        def moments(g: np.ndarray) -> tuple[np.ndarray, ...]:
            x = np.where(g[..., 1] > 0, day1_rate(g), x_known[..., None])
            n, d = g[..., 3], g[..., 2]
            x_g, y_g = (n * x).sum(-1) / n.sum(-1), d.sum(-1) / n.sum(-1)
            dx = x - x_g[..., None]
            return n.sum(-1), x_g, y_g, (dx * (d - n * y_g[..., None])).sum(-1), (n * dx * dx).sum(-1)

        (n_a, x_a, y_a, sxy_a, sxx_a), (n_c, x_c, y_c, sxy_c, sxx_c) = moments(arm), moments(control)
        x_all = (x_a * n_a + x_c * n_c) / (n_a + n_c)

        def adjusted(y_g, x_g, sxy, sxx):
            return y_g - np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1), 0.0) * (x_g - x_all)

        return 1 - adjusted(y_a, x_a, sxy_a, sxx_a) / adjusted(y_c, x_c, sxy_c, sxx_c)


def adjusted_reduction(
    arm_first: list[dict], arm_last: list[dict], control_first: list[dict], control_last: list[dict], seed: int
) -> tuple[float | None, list[float] | None]:
    """1 - last-day defect rate of the arm / of control, each adjusted for where its users started (their
    day-1 rates, before anything was learned: _adjusted_reduction), and its 95% bootstrap interval resampling
    users (each user's two days together, the slope fitted again in every sample). It estimates the same as
    relative_defect_reduction, without the luck of the draw of who is in which arm, and with a narrower
    interval where users' days resemble each other."""
    return _from_start(_adjusted_reduction, arm_first, arm_last, control_first, control_last, seed)


def score_probabilities(outcomes: list[bool], probabilities: list[float]) -> dict[str, float | int | None]:
    """AUC and expected calibration error (10 equal-width bins) of predicted P(defect) vs true defects."""
    y = np.asarray(outcomes, dtype=bool)
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    if len(y) == 0:
        return {"auc": None, "ece": None, "n": 0}
    auc = roc_auc_score(y, p) if 0 < y.sum() < len(y) else None
    return {
        "auc": None if auc is None else round(float(auc), 4),
        "ece": round(binary_calibration_error(y, p, ECE_BINS), 4),
        "n": len(p),
    }


def build_report(
    config: Any,
    records: list[dict],
    episodes: list[dict],
    all_goals: list,
    goals: list,
    predicted_links: set[tuple[int, int]] | None = None,
    defect_probabilities: dict[int, float] | None = None,
    inbox: dict | None = None,
    generated: dict[int, tuple[str, str]] | None = None,
    failure_points: dict[int, str] | None = None,
) -> dict:
    """`predicted_links`: the product's Rephrase rows (first, second turn ids); None if the detector did not run.
    `defect_probabilities`: {turn id: P(defect)} the product stored; None or empty without a defect model.
    Records of the users' teaching (simulator/teaching.py) are summed up apart, under summary.teaching."""
    teaching = [r for r in records if r.get("teaching")]
    records = [r for r in records if not r.get("teaching")]
    supported_ids = {r["turn_id"] for r in records if r["supported"]}
    if predicted_links is not None:
        # Score on the turns the report covers (links into unsupported goals are left out, like the truth).
        predicted_links = {(a, b) for a, b in predicted_links if a in supported_ids and b in supported_ids}
    arms = list(dict.fromkeys(list(config.arms) + sorted({r["arm"] for r in records} - set(config.arms))))
    supported = [r for r in records if r["supported"]]
    supported_eps = [e for e in episodes if e["supported"]]
    days = []
    for day in range(1, config.days + 1):
        per_arm = {}
        for arm in arms:
            turns = [r for r in supported if r["day"] == day and r["arm"] == arm]
            eps = [e for e in supported_eps if e["day"] == day and e["arm"] == arm]
            if turns or arm in config.arms:
                per_arm[arm] = arm_stats(turns, eps)
        everyone = arm_stats([r for r in supported if r["day"] == day], [e for e in supported_eps if e["day"] == day])
        day_ids = {r["turn_id"] for r in supported if r["day"] == day}
        day_true = {(r["rephrase_of"], r["turn_id"]) for r in supported if r["day"] == day and r["rephrase_of"]}
        day_predicted = None if predicted_links is None else {p for p in predicted_links if p[1] in day_ids}
        everyone["rephrase_detection"] = score_links(day_true, day_predicted)
        days.append({"day": day, "arms": per_arm, "all": everyone})

    last = days[-1]["arms"]
    control = (last.get("control") or {}).get("defect_rate")
    reduction = {
        arm: (round(1 - stats["defect_rate"] / control, 4) if control and stats["defect_rate"] is not None else None)
        for arm, stats in last.items()
        if arm != "control"
    }
    last_day = [r for r in supported if r["day"] == config.days]
    control_turns = [r for r in last_day if r["arm"] == "control"]
    reduction_ci = {
        arm: reduction_interval([r for r in last_day if r["arm"] == arm], control_turns, config.seed)
        for arm in reduction
    }
    first_day = [r for r in supported if r["day"] == 1]

    def from_the_start(estimator: Callable, arm: str) -> tuple[float | None, list[float] | None]:
        """An estimator over the arm's and control's first and last days."""
        return estimator(
            [r for r in first_day if r["arm"] == arm],
            [r for r in last_day if r["arm"] == arm],
            [r for r in first_day if r["arm"] == "control"],
            control_turns,
            config.seed,
        )

    from_day1 = {arm: from_the_start(reduction_from_day1, arm) for arm in reduction}
    adjusted = {arm: from_the_start(adjusted_reduction, arm) for arm in reduction}
    regressed = sum(1 for r in supported if r["rewrite_fired"] and r["would_have_succeeded"] and not r["met"])
    scored = [r for r in supported if defect_probabilities and r["turn_id"] in defect_probabilities]
    defect_model = (
        score_probabilities([not r["met"] for r in scored], [defect_probabilities[r["turn_id"]] for r in scored])
        if scored
        else None
    )
    wins = sum(1 for r in supported if r["rewrite_effect"] == "win")
    losses = sum(1 for r in supported if r["rewrite_effect"] == "loss")
    would_have = sum(1 for r in supported if r["would_have_succeeded"])
    true_links = {(r["rephrase_of"], r["turn_id"]) for r in supported if r["rephrase_of"] is not None}

    unsupported_turns = [r for r in records if not r["supported"]]
    report = {
        "config": config.as_dict(),
        "goals": {
            "loaded": len(all_goals),
            "used": len(goals),
            "unsupported_left_out": len(all_goals) - len(goals),
            "unsupported_in_use": sum(1 for g in goals if not g.supported),
        },
        "days": days,
        "summary": {
            "relative_defect_reduction": reduction,
            "relative_defect_reduction_ci": reduction_ci,
            "relative_defect_reduction_from_day1": {arm: v[0] for arm, v in from_day1.items()},
            "relative_defect_reduction_from_day1_ci": {arm: v[1] for arm, v in from_day1.items()},
            "relative_defect_reduction_adjusted": {arm: v[0] for arm, v in adjusted.items()},
            "relative_defect_reduction_adjusted_ci": {arm: v[1] for arm, v in adjusted.items()},
            "win_loss_ratio": round(wins / losses, 4) if losses else None,
            "wins": wins,
            "losses": losses,
            "false_fire_rate": _rate(losses, would_have),
            "regression_rate": _rate(regressed, would_have),
            "rephrase_detection": score_links(true_links, predicted_links),
            "review_inbox": inbox_coverage(supported, inbox),
            "generated_labels": generated_label_precision(supported, goals, generated),
            "rephrase_links": len(true_links),
            "defect_model": defect_model,
            "failure_point": failure_point_accuracy(records, failure_points),
            "teaching": summarise_teaching(teaching, records),
            "turns": len(supported),
            "defect_rate": _rate(sum(1 for r in supported if not r["met"]), len(supported)),
        },
        "unsupported": {
            "turns": len(unsupported_turns),
            "goals": sum(1 for e in episodes if not e["supported"]),
            "share_of_turns": _rate(len(unsupported_turns), len(records)),
        },
    }
    return report


def strip_run_fields(report: dict) -> dict:
    """The report without what legitimately differs between two runs of the same seed."""
    return {k: v for k, v in report.items() if k != "run"}
