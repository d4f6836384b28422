"""Sanity check on public SLURP sentences (read from ../shared/data, never copied; not tuned on)."""

from __future__ import annotations

import pytest

from assistant.nlu.evaluate import evaluate_slurp, slurp_path


@pytest.mark.django_db
def test_seed_model_generalises_to_slurp(nlu_model):
    if not slurp_path().exists():
        pytest.skip("SLURP data is not available")
    report = evaluate_slurp("devel", limit=500)
    # Measured on the full test split: ~0.87 shared-intent accuracy, ~0.92 of foreign requests out of scope.
    assert report["shared_examples"] > 100
    assert report["shared_accuracy"] >= 0.7, report
    assert report["foreign_oos_rate"] >= 0.7, report
