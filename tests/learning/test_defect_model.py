"""The defect model's two stages on turns made up here, where whether each turn failed is known: the
self-labels leave out the turns whose reactions are unclear, which are mostly failures, and the survey
answers, few but unbiased, put the probabilities back on the true scale."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss

from assistant.nlu.metrics import binary_calibration_error
from learning import defects
from learning.defects import CONTENT_FEATURES, DEFECT, FINE, REACTION_FEATURES, TurnRows


def _turns(n: int = 3000, answers: int = 0, seed: int = 0) -> tuple[TurnRows, np.ndarray]:
    """Turns of which 40% failed. A failure is rephrased and then goes well (a self-labelled defect), or is
    followed at once by another turn that is no rephrase (no self-label), or passes in silence (self-labelled
    fine, wrongly). `answers` random turns carry the truthful survey answer."""
    rng = np.random.default_rng(seed)
    failed = rng.random(n) < 0.4
    how = np.where(failed, rng.choice(3, n, p=[0.5, 0.1, 0.4]), rng.choice([1, 2], n, p=[0.05, 0.95]))
    content = np.zeros((n, len(CONTENT_FEATURES)), dtype=np.float32)
    content[:, CONTENT_FEATURES.index("nlu_confidence")] = np.clip(rng.normal(np.where(failed, 0.55, 0.8), 0.15), 0, 1)
    content[:, CONTENT_FEATURES.index("asr_confidence")] = 1.0
    content[:, CONTENT_FEATURES.index("coherence")] = rng.normal(np.where(failed, 0.2, 0.4), 0.1)
    reactions = np.zeros((n, len(REACTION_FEATURES)), dtype=np.float32)
    column = {name: REACTION_FEATURES.index(name) for name in REACTION_FEATURES}
    rephrased = how == 0
    reactions[:, column["heard_share"]] = 1.0
    reactions[rephrased, column["rephrased"]] = 1.0
    reactions[rephrased, column["rephrase_score"]] = 0.8
    reactions[rephrased, column["rephrase_went_well"]] = 1.0
    reactions[:, column["next_soon"]] = how <= 1
    reactions[:, column["log_next_gap"]] = np.where(how <= 1, np.log1p(10.0), np.log1p(600.0))
    self_label = np.select([how == 0, how == 2], [DEFECT, FINE], -1).astype(np.int8)
    answer = np.full(n, -1, dtype=np.int8)
    asked = rng.choice(n, answers, replace=False)
    answer[asked] = failed[asked].astype(np.int8)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = TurnRows(
        ids=np.arange(1, n + 1, dtype=np.int64),
        content=content,
        reactions=reactions,
        self_label=self_label,
        answer=answer,
        request_vectors=vectors,
        reply_vectors=vectors,
        intents=[f"intent_{i % 5}" for i in range(n)],
    )
    return rows, failed


def test_the_survey_answers_recalibrate_what_the_self_labels_alone_get_wrong():
    rows, failed = _turns(answers=0)
    alone, metrics = defects.fit(rows)
    assert metrics["calibrated_on"].startswith("nothing")
    p_alone = alone.probability(rows.content, rows.reactions)

    rows.answer[:] = _turns(answers=400)[0].answer  # the same turns, 400 of them answered
    calibrated, metrics = defects.fit(rows)
    assert metrics["calibrated_on"].endswith("survey answers") and calibrated.calibration is not None
    p = calibrated.probability(rows.content, rows.reactions)

    assert p_alone.mean() < failed.mean() - 0.1  # the unclear turns, mostly failures, were never learned from
    assert abs(p.mean() - failed.mean()) < 0.05
    assert log_loss(failed, p) < log_loss(failed, p_alone)
    assert binary_calibration_error(failed, p) < binary_calibration_error(failed, p_alone)
    assert metrics["holdout"]["n"] == int(((rows.answer >= 0) & defects.held_out(rows.ids)).sum())


def test_a_version_from_before_recalibration_still_answers():
    rows, _failed = _turns(answers=400)
    model, _metrics = defects.fit(rows)
    older = defects.DefectModel(version="old", content=model.content, reactions=model.reactions)
    p = older.probability(rows.content[:10], rows.reactions[:10])
    assert p.shape == (10,) and ((p >= 0) & (p <= 1)).all()
