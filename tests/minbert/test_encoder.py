"""SentenceEncoder: reproduces sentence-transformers all-MiniLM-L6-v2, cosine of pairs."""

import numpy as np
import pytest
import torch

from minbert.backbone import resolve_backbone
from minbert.encoder import SentenceEncoder
from minbert.heads import pool

TEXTS = ["How do I learn Python quickly?", "What is the fastest way to learn Python?",
         "The film is a lovely, warm comedy.", "a",
         "Two black dogs are playing on the grass in the park near the river bank today."]


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder("minilm", max_length=128, batch_size=2)


def test_reproduces_sentence_transformers(encoder):
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(resolve_backbone("minilm")), device="cpu")
    want = reference.encode(TEXTS, convert_to_tensor=True, normalize_embeddings=True)
    got = encoder.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    torch.testing.assert_close(got, want.cpu(), atol=1e-5, rtol=0)


def test_unit_norm_and_input_order(encoder):
    got = encoder.encode(TEXTS)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(len(TEXTS)))
    torch.testing.assert_close(encoder.encode(TEXTS[::-1]), got.flip(0), atol=1e-6, rtol=0)


def test_cosine_paraphrase_high_unrelated_low(encoder):
    scores = encoder.cosine([TEXTS[0], TEXTS[0]], [TEXTS[1], TEXTS[2]])
    assert scores.dtype == np.float32 and scores.shape == (2,)
    assert scores[0] > 0.8 and scores[1] < 0.2


def test_cosine_rejects_unequal_lists(encoder):
    with pytest.raises(ValueError, match="2 first texts but 1 second"):
        encoder.cosine(["a", "b"], ["c"])


def test_empty_input(encoder):
    assert encoder.encode([]).shape == (0, 384)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    pooled = pool(hidden, torch.tensor([[1, 1, 0]]), "mean")
    torch.testing.assert_close(pooled, torch.tensor([[2.0, 3.0]]))
