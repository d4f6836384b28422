"""The plain-torch MiniLM must compute what sentence-transformers computes from the same folder."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.nlu.encoder import MiniLM, encoder_path

TEXTS = ["switch off the kitchen lights", "what's the weather in paris tomorrow", "hi", "add milk to my to-do list"]


@pytest.fixture(scope="module")
def encoder():
    return MiniLM()


def test_matches_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(encoder_path()), device="cpu", local_files_only=True)
    sentences = reference.encode(TEXTS)
    tokens = reference.encode(TEXTS, output_value="token_embeddings")
    batch = encoder.encode_batch(TEXTS)
    for i, text in enumerate(TEXTS):
        single = encoder.encode(text)
        np.testing.assert_allclose(single.sentence, sentences[i], atol=1e-5)
        np.testing.assert_allclose(batch[i].sentence, sentences[i], atol=1e-5)  # padding changes nothing
        np.testing.assert_allclose(single.tokens, tokens[i][1:-1].numpy(), atol=1e-4)
        assert len(single.offsets) == len(single.tokens)


def test_offsets_point_into_the_text(encoder):
    text = "play don't stop me now by queen"
    enc = encoder.encode(text)
    pieces = [text[s:e] for s, e in enc.offsets]
    assert pieces[0] == "play" and "queen" in pieces


def test_long_input_is_truncated(encoder):
    enc = encoder.encode("lights " * 500)
    assert 0 < len(enc.offsets) <= 128


def test_a_vector_started_beside_the_nlu_is_the_sentence_vector(monkeypatch):
    """The joint model computes no MiniLM vector on the way: online rewriting's is started in a background
    thread (nlu.sentence_vector_soon) and is the same vector. With the heads model nothing is started."""
    import threading

    from assistant import nlu

    computed_on = []
    original = nlu.sentence_vector

    def recording(text):
        computed_on.append(threading.current_thread().name)
        return original(text)

    monkeypatch.setattr(nlu, "sentence_vector", recording)

    class JointLike:  # no shared encoder
        pass

    monkeypatch.setattr(nlu.NLU_MODELS, "model", lambda: JointLike())
    text = "turn of the kitchn lights"
    np.testing.assert_allclose(nlu.sentence_vector_soon(text)(), original(text))
    assert computed_on and computed_on[0].startswith("sentence-vector")

    class HeadsLike:
        shares_encoder = True

    computed_on.clear()
    monkeypatch.setattr(nlu.NLU_MODELS, "model", lambda: HeadsLike())
    soon = nlu.sentence_vector_soon(text)
    assert computed_on == []  # nothing started: the NLU's own encoding fills the cache
    np.testing.assert_allclose(soon(), original(text))
    assert computed_on == [threading.current_thread().name]
