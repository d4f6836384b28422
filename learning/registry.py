"""The training side of the model registry: a new version is registered, then promoted
only if its kind's gate says it does not regress against the active version.

A gate is a plain function (candidate manifest, active manifest or None) -> Decision;
each trainer passes its kind's (the NLU's is learning/nlu/gate.py). Serving never
imports this module: it only loads what the registry (assistant/registry.py) says is active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.models import ModelVersion
from assistant.registry import ModelKind, reject_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    promote: bool
    compared: bool  # False when the metrics could not be compared (or nothing is active)
    note: str
    regressions: tuple[str, ...] = ()


Gate = Callable[[dict, dict | None], Decision]


def register_candidate(
    kind: ModelKind,
    path: Path,
    manifest: dict,
    *,
    gate: Gate,
    promote: bool = True,
    force_promote: bool = False,
) -> tuple[ModelVersion, Decision | None]:
    """Register a trained artifact of `kind`; with `promote`, let `gate` decide whether it serves.

    A version the gate refuses is registered as rejected with the gate's note, and the
    active version keeps serving. `force_promote` skips the gate; `promote=False` registers
    a candidate only (the decision is then None).
    """
    if not promote:
        row = kind.register(path, manifest, promote=False, note="registered without promotion (--no-promote)")
        return row, None
    if force_promote:
        decision = Decision(True, False, "promoted by force (--force-promote): the promotion gate was skipped")
    else:
        current = kind.active_version()
        decision = gate(manifest, current.manifest if current is not None else None)
    if decision.promote:
        row = kind.register(path, manifest, promote=True, note=decision.note)
    else:
        row = kind.register(path, manifest, promote=False)
        reject_version(row, decision.note)
        log.warning("%s %s not promoted: %s", kind.label, row.version, decision.note)
    return row, decision
