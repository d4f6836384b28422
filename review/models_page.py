"""What the model and job dashboard shows: each kind's versions with their metrics, and the learning jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.models import ModelVersion
from learning.models import Job

VERSIONS_SHOWN = 15
JOBS_SHOWN = 30


@dataclass(frozen=True)
class KindHistory:
    kind: str
    versions: list[ModelVersion]


def headline_metrics(row: ModelVersion) -> dict[str, Any]:
    """The few numbers worth a glance: the version's top-level numeric metrics (and its held-out ones)."""
    metrics = row.metrics or (row.manifest or {}).get("metrics") or {}
    shown: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            shown[name] = round(value, 4) if isinstance(value, float) else value
        elif name in ("holdout", "validation") and isinstance(value, dict):
            shown.update({f"{name} {k}": v for k, v in value.items() if isinstance(v, int | float)})
        if len(shown) >= 6:
            break
    return shown


def histories() -> list[KindHistory]:
    kinds = sorted(set(ModelVersion.objects.values_list("kind", flat=True)))
    result = []
    for kind in kinds:
        rows = list(ModelVersion.objects.filter(kind=kind).order_by("-created_at", "-id")[:VERSIONS_SHOWN])
        for row in rows:
            row.headline = headline_metrics(row)
        result.append(KindHistory(kind, rows))
    return result


def recent_jobs() -> list[Job]:
    return list(Job.objects.order_by("-created_at", "-id")[:JOBS_SHOWN])
