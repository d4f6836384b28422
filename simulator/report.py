"""The simulator's report: per day and arm, and a summary.

Per day and arm (turns of supported goals only; unsupported goals, when included,
are reported apart under `unsupported`):
  turns, defect_rate (turns whose goal was not met by that turn),
  goal_failure_rate (goals, counted on the day they were brought, never met),
  barge_in_rate, rephrase_rate (turns that rephrase or repeat the previous try),
  rewrites_fired, wins, losses, failure_points {point: turns}.

Summary: relative_defect_reduction {arm: 1 - last-day defect rate of the arm /
last-day defect rate of control}, win_loss_ratio (wins / losses over the run),
false_fire_rate (losses / turns that would have succeeded without the rewrite),
rephrase_detection {precision, recall, f1, n_detected, n_true} of the product's
rephrase detector (feedback.Rephrase rows, learning/rephrases.py) against the true
links, null when the detector did not run (also per day, under days[].all);
defect_model and failure_point accuracy, null while the product has no such model.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from simulator.truth import FAILURE_POINTS


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


def build_report(
    config: Any,
    records: list[dict],
    episodes: list[dict],
    all_goals: list,
    goals: list,
    predicted_links: set[tuple[int, int]] | None = None,
) -> dict:
    """`predicted_links`: the product's Rephrase rows (first, second turn ids); None if the detector did not run."""
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
            "win_loss_ratio": round(wins / losses, 4) if losses else None,
            "wins": wins,
            "losses": losses,
            "false_fire_rate": _rate(losses, would_have),
            "rephrase_detection": score_links(true_links, predicted_links),
            "rephrase_links": len(true_links),
            "defect_model": None,  # no defect model exists yet
            "failure_point": None,  # no failure-point model exists yet
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
