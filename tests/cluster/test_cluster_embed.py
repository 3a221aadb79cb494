"""Embedders (hashing LSA, HF encoders with sentence-transformers layouts), the memmap builder,
the reservoir sample."""

import json
from pathlib import Path

import numpy as np
import pytest

from in2x_cli.core.embed import (
    HashingConfig,
    HashingEmbedder,
    Reservoir,
    embed_stream,
    pool,
)
from in2x_cli.embedders import (
    EncoderConfig,
    EncoderEmbedder,
    make_embedder,
    read_sentence_transformers_layout,
)
from in2x_cli.errors import InputError, UserError
from in2x_cli.io.arrays import NpyBuilder, open_npy
from in2x_cli.records import row_text

LINES = [
    "The weather is sunny today.", "It will rain tomorrow in Tokyo.", "Solve x^2 - 5x + 6 = 0.",
    "今日は天気がいいです。", "明日は東京で雨が降ります。", "今天天气很好。", "明天东京会下雨。",
    "Write a poem about the sea.", "海についての詩を書いてください。", "写一首关于大海的诗。",
]


def build_tiny_encoder(out: Path, *, sentence_transformers: bool = False) -> Path:
    """A tiny random BERT encoder with a WordPiece tokenizer trained in code (about 1 s)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(LINES * 3, trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.model_max_length = 64
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    model.save_pretrained(str(out))
    fast.save_pretrained(str(out))
    if sentence_transformers:
        from safetensors.torch import save_file

        (out / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
            {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]))
        (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16, "do_lower_case": False}))
        (out / "1_Pooling").mkdir()
        (out / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
        (out / "2_Dense").mkdir()
        (out / "2_Dense" / "config.json").write_text(json.dumps({"in_features": 32, "out_features": 8, "bias": True, "activation_function": "torch.nn.modules.activation.Tanh"}))
        save_file({"linear.weight": torch.randn(8, 32), "linear.bias": torch.randn(8)}, str(out / "2_Dense" / "model.safetensors"))
        (out / "3_Normalize").mkdir()
    return out


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_tiny_encoder(tmp_path_factory.mktemp("enc") / "bert")


def test_hashing_embedder_unit_rows_deterministic_and_meaningful():
    e = HashingEmbedder(HashingConfig(dim=8, seed=0))
    e.fit(LINES)
    x = e.embed(LINES)
    assert x.shape == (10, 8) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    e2 = HashingEmbedder(HashingConfig(dim=8, seed=0))
    e2.fit(LINES)
    assert np.array_equal(x, e2.embed(LINES))
    # a near-copy is closer to its source than to a text in another script
    near = e.embed(["The weather is sunny today!"])[0]
    assert near @ x[0] > near @ x[5] + 0.3
    assert e.identity()["embedder"] == "hashing" and e.identity()["dim"] == 8


def test_hashing_embedder_dim_capped_by_sample():
    e = HashingEmbedder(HashingConfig(dim=128))
    e.fit(LINES[:4])
    assert e.embed(LINES).shape == (10, 3)


def test_encoder_mean_pooling_ignores_padding(encoder_dir):
    import torch
    from transformers import AutoModel, AutoTokenizer

    e = EncoderEmbedder(EncoderConfig(model=str(encoder_dir), batch_size=4, device="cpu"))
    assert e.layout["pooling"] == ["mean"]
    x = e.embed(LINES)
    # padding-free reference, one text at a time
    tok, model = AutoTokenizer.from_pretrained(str(encoder_dir)), AutoModel.from_pretrained(str(encoder_dir))
    for i in (0, 3, 9):
        enc = tok(LINES[i], return_tensors="pt")
        with torch.no_grad():
            ref = model(**enc).last_hidden_state[0].mean(dim=0).numpy()
        assert np.allclose(x[i], ref / np.linalg.norm(ref), atol=1e-5)
    # batch composition does not change a text's vector
    assert np.allclose(e.embed([LINES[0]])[0], x[0], atol=1e-5)


def test_sentence_transformers_layout(tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    d = build_tiny_encoder(tmp_path / "st", sentence_transformers=True)
    layout = read_sentence_transformers_layout(d)
    assert layout["pooling"] == ["cls"] and layout["max_length"] == 16 and layout["normalize"] and len(layout["dense"]) == 1
    e = EncoderEmbedder(EncoderConfig(model=str(d), device="cpu"))
    x = e.embed(LINES[:2])
    assert x.shape == (2, 8)
    tok, model = AutoTokenizer.from_pretrained(str(d)), AutoModel.from_pretrained(str(d))
    dense = load_file(str(d / "2_Dense" / "model.safetensors"))
    with torch.no_grad():
        cls = model(**tok(LINES[1], return_tensors="pt")).last_hidden_state[0, 0]
        ref = torch.tanh(dense["linear.weight"] @ cls + dense["linear.bias"]).numpy()
    assert np.allclose(x[1], ref / np.linalg.norm(ref), atol=1e-5)


def test_pool_modes_by_hand():
    import torch

    hidden = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, ["mean"]).tolist() == [[2.0, 2.0]]
    assert pool(hidden, mask, ["max"]).tolist() == [[3.0, 4.0]]
    assert pool(hidden, mask, ["cls", "lasttoken"]).tolist() == [[1.0, 0.0, 3.0, 4.0]]
    assert torch.allclose(pool(hidden, mask, ["mean_sqrt_len"]), torch.tensor([[4.0, 4.0]]) / 2**0.5)


def test_unsupported_layouts_are_user_errors(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([{"path": "x", "type": "sentence_transformers.models.LSTM"}]))
    with pytest.raises(UserError, match="unsupported sentence-transformers module"):
        read_sentence_transformers_layout(tmp_path)
    with pytest.raises(UserError, match="needs --embed-model"):
        make_embedder("hf")
    with pytest.raises(UserError, match="unknown embedder"):
        make_embedder("nope")
    with pytest.raises(UserError, match="directory not found"):
        make_embedder("hashing", model=str(tmp_path / "missing"))


def fake_embed(texts):
    """A dotted-path embedder for tests: (length, vowel count, 1)."""
    return [[len(t), sum(c in "aeiou" for c in t), 1.0] for t in texts]


def test_function_embedder():
    e = make_embedder("tests.cluster.test_cluster_embed:fake_embed")
    x = e.embed(["ab", "aei"])
    assert np.allclose(x[1], np.array([3, 3, 1]) / np.sqrt(19))


def test_npy_builder_resumes_after_a_kill(tmp_path):
    path = tmp_path / "e.npy"
    data = np.arange(20, dtype=np.float32).reshape(10, 2)
    b = NpyBuilder(path, (10, 2), info={"k": 1})
    b.write(data[:4])
    del b  # killed: no finish
    assert not path.exists() and (tmp_path / "e.npy.partial").exists()
    b = NpyBuilder(path, (10, 2), info={"k": 1})
    assert b.rows_done == 4
    embed_stream((str(i) for i in range(10)), _RowEmbedder(data), b, chunk_size=3)
    out = b.finish()
    assert np.array_equal(out, data) and not (tmp_path / "e.npy.progress.json").exists()
    assert np.array_equal(open_npy(path), data)
    # a partial written for other settings is not resumed
    b = NpyBuilder(tmp_path / "f.npy", (10, 2), info={"k": 1})
    b.write(data[:4])
    del b
    assert NpyBuilder(tmp_path / "f.npy", (10, 2), info={"k": 2}).rows_done == 0


class _RowEmbedder:
    needs_fit = False

    def __init__(self, data):
        self.data = data

    def embed(self, texts):
        return self.data[[int(t) for t in texts]]


def test_reservoir_is_uniform_and_deterministic():
    a, b = Reservoir(5, seed=1), Reservoir(5, seed=1)
    for i in range(1000):
        a.add(i)
        b.add(i)
    assert a.items == b.items and len(set(a.items)) == 5
    counts = np.zeros(50)
    for s in range(400):
        r = Reservoir(5, seed=s)
        for i in range(50):
            r.add(i)
        counts[r.items] += 1
    assert counts.min() > 15 and counts.max() < 70  # expectation 40 per item
    small = Reservoir(5, seed=0)
    for i in range(3):
        small.add(i)
    assert small.items == [0, 1, 2]


def test_row_text_sources():
    assert row_text({"instruction": "a", "text": "b"}, None, "f:1") == "a"
    assert row_text({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}, None, "f:1") == "u"
    assert row_text({"text": "t"}, None, "f:1") == "t"
    assert row_text({"body": "x"}, "body", "f:1") == "x"
    with pytest.raises(InputError, match="f:2: field 'body' must be a string, got int"):
        row_text({"body": 3}, "body", "f:2")
    with pytest.raises(InputError, match="f:3: no text to use"):
        row_text({"id": 1}, None, "f:3")


class _ListSink:
    def __init__(self) -> None:
        self.rows_done, self.blocks = 0, []

    def write(self, block):
        self.blocks.append(np.asarray(block))
        self.rows_done += len(block)


def test_embed_stream_in_two_processes_gives_the_same_rows_in_order():
    texts = [f"{LINES[i % len(LINES)]} #{i}" for i in range(50)]
    e = HashingEmbedder(HashingConfig(dim=8, fit_rows=50))
    e.fit(texts)
    one, two = _ListSink(), _ListSink()
    seen = []
    embed_stream(iter(texts), e, one, chunk_size=7)
    embed_stream(iter(texts), e, two, chunk_size=7, workers=2, progress=seen.append)
    assert [len(b) for b in two.blocks] == [7] * 7 + [1] and seen == [7] * 7 + [1]
    assert np.array_equal(np.concatenate(one.blocks), np.concatenate(two.blocks))
    assert np.array_equal(np.concatenate(two.blocks), e.embed(texts))
