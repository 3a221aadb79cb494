"""The embedder registry: one name per embedder, and what ``hashing`` means in each command."""

from __future__ import annotations

import numpy as np
import pytest

from in2x_cli.core.embed import HashingEmbedder, ngram_hash_embed
from in2x_cli.embedders import embed_function, make_embedder
from in2x_cli.errors import UserError

TEXTS = ["The weather is sunny today.", "今日は天気がいいです。", "Write a poem about the sea."]


def three_dims(texts):
    """A dotted-path embedder for tests: (length, 1, 0)."""
    return [[len(t), 1.0, 0.0] for t in texts]


def test_hashing_is_lsa_for_cluster_and_ngram_hash_for_synthesize():
    assert isinstance(make_embedder("hashing"), HashingEmbedder) and isinstance(make_embedder("lsa"), HashingEmbedder)
    assert embed_function("hashing") is ngram_hash_embed and embed_function("ngram-hash") is ngram_hash_embed
    x = make_embedder("ngram-hash").embed(TEXTS)
    assert x.shape == (3, 4096) and np.allclose(x, ngram_hash_embed(TEXTS), atol=1e-6)
    assert make_embedder("ngram-hash").identity() == {"embedder": "ngram-hash"}


def test_embed_function_returns_a_user_function_as_written_and_refuses_fitted_embedders():
    assert embed_function("tests.test_embedders:three_dims") is three_dims
    with pytest.raises(UserError, match="fitted on a sample"):
        embed_function("lsa")
    with pytest.raises(UserError, match="needs --embed-model"):
        embed_function("hf")
    with pytest.raises(UserError, match="unknown embedder 'nope'"):
        embed_function("nope")
    with pytest.raises(UserError, match="has no 'missing'"):
        make_embedder("tests.test_embedders:missing")
