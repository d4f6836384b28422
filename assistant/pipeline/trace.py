"""The per-turn trace: every stage records input, output, confidence, ms, model version."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class StageRecord:
    stage: str
    input: Any = None
    output: Any = None
    confidence: float | None = None
    model_version: str = ""
    ms: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {
            "stage": self.stage,
            "input": self.input,
            "output": self.output,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "ms": round(self.ms, 3),
            "model_version": self.model_version,
        }
        if self.error is not None:
            data["error"] = self.error
        return data


class StageFailed(Exception):
    """Raised out of a stage block after the failure has been recorded."""

    def __init__(self, stage: str, error: str) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


@dataclass
class Trace:
    records: list[StageRecord] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, input: Any = None, model_version: str = "") -> Iterator[StageRecord]:
        """Time a stage; an exception inside is recorded and re-raised as StageFailed."""
        record = StageRecord(stage=name, input=input, model_version=model_version)
        self.records.append(record)
        start = time.perf_counter()
        try:
            yield record
        except StageFailed:
            raise
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            log.exception("stage %s failed", name)
            raise StageFailed(name, record.error) from exc
        finally:
            record.ms = (time.perf_counter() - start) * 1000.0

    def as_list(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.records]

    @property
    def total_ms(self) -> float:
        return sum(r.ms for r in self.records)
