"""`--plot OUT.png`: defect rate per simulated day, one line per arm (Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_report(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: never try to open a window
    import matplotlib.pyplot as plt

    days = [d["day"] for d in report["days"]]
    arms = list(dict.fromkeys(arm for d in report["days"] for arm in d["arms"]))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for arm in arms:
        rates = [d["arms"].get(arm, {}).get("defect_rate") for d in report["days"]]
        points = [(day, rate) for day, rate in zip(days, rates, strict=True) if rate is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=arm)
    ax.set_xlabel("simulated day")
    ax.set_ylabel("defect rate (share of turns whose goal was not met)")
    ax.set_xticks(days)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    cfg = report.get("config", {})
    ax.set_title(
        f"Defect rate per day and arm — {cfg.get('users')} users, "
        f"{cfg.get('turns_per_user_day')} turns/user/day, seed {cfg.get('seed')}",
        fontsize=9,
    )
    ax.legend(title="arm")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
