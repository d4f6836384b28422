"""Errors of the NLU package (importable without Django models or torch)."""

from __future__ import annotations


class NluUnavailable(RuntimeError):
    """No NLU model is registered, or none can be loaded."""
