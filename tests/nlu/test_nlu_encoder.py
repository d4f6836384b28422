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
