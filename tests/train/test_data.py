"""Pure data logic of cpt/sft: mixtures, packing, collators, temperature sampling, epoch plans,
schedules and context extension (hand-checked numbers)."""

from __future__ import annotations

import random

import pytest

from in2x_cli.errors import InputError, UserError
from in2x_cli.train.data import (
    IGNORE_INDEX,
    DataSource,
    MixtureStream,
    PackedRowsCollator,
    apply_context_extension,
    epoch_fraction,
    iter_texts,
    pack_documents,
    parse_data_spec,
    plan_epochs,
    shuffle_buffer,
    temperature_quota,
    temperature_sample,
)
from in2x_cli.train.ppl import select_lowest
from tests.util import write_jsonl


def test_parse_data_spec():
    assert parse_data_spec("a.jsonl:0.5") == DataSource("a.jsonl", 0.5)
    assert parse_data_spec("a.jsonl") == DataSource("a.jsonl", 1.0)
    assert parse_data_spec("c:/x/a.jsonl") == DataSource("c:/x/a.jsonl", 1.0)  # colon in the path, no weight
    assert parse_data_spec("dir:v2/a.jsonl:2") == DataSource("dir:v2/a.jsonl", 2.0)
    with pytest.raises(UserError, match="positive"):
        parse_data_spec("a.jsonl:0")


def test_mixture_interleaves_by_token_deficit():
    # A yields 3-token docs, B 1-token docs, equal weights. Hand trace of argmin(tokens_i / w_i),
    # ties to the earlier source: A(0,0)->A, (3,0)->B, (3,1)->B, (3,2)->B, (3,3)->A, then B x3 ...
    mix = MixtureStream([lambda: iter([[1, 1, 1]] * 100), lambda: iter([[2]] * 100)], [0.5, 0.5])
    it = iter(mix)
    picks = [next(it)[0] for _ in range(8)]
    assert picks == [0, 1, 1, 1, 0, 1, 1, 1]


def test_mixture_token_proportions_and_restart():
    rng = random.Random(0)
    docs_a = [[0] * rng.randint(5, 50) for _ in range(37)]
    docs_b = [[1] * rng.randint(5, 50) for _ in range(11)]  # small: must restart many times
    mix = MixtureStream([lambda: iter(docs_a), lambda: iter(docs_b)], [0.7, 0.3])
    it = iter(mix)
    for _ in range(3000):
        next(it)
    total = sum(mix.tokens)
    # the deficit rule keeps every share within one (max 50-token) document of its weight
    assert abs(mix.tokens[0] - 0.7 * total) <= 50
    assert abs(mix.tokens[1] - 0.3 * total) <= 50
    assert mix.passes[1] > mix.passes[0] >= 1


def test_pack_documents_wraps_and_records_segments():
    rows = list(pack_documents([[1, 2, 3], [4, 5], [6, 7, 8, 9]], 4))
    assert rows == [
        {"input_ids": [1, 2, 3, 4], "seq_lengths": [3, 1]},
        {"input_ids": [5, 6, 7, 8], "seq_lengths": [1, 3]},
    ]  # [9] does not fill a row and is not emitted


def test_shuffle_buffer_is_a_seeded_permutation():
    a = list(shuffle_buffer(range(100), 10, random.Random(1)))
    b = list(shuffle_buffer(range(100), 10, random.Random(1)))
    assert a == b and sorted(a) == list(range(100)) and a != list(range(100))
    assert list(shuffle_buffer(range(5), 0, random.Random(1))) == [0, 1, 2, 3, 4]


def test_packed_rows_collator_positions_labels_padding():
    col = PackedRowsCollator(pad_token_id=0)
    batch = col(
        [
            {"input_ids": [11, 12, 13, 14, 15], "labels": [-100, 12, 13, -100, 15], "seq_lengths": [3, 2]},
            {"input_ids": [21, 22, 23], "labels": [21, 22, 23], "seq_lengths": [3]},
        ]
    )
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 0, 1]]
    # first token of each sequence is never a target; padding is ignored
    assert batch["labels"].tolist() == [[-100, 12, 13, -100, 15], [-100, 22, 23, -100, -100]]
    assert batch["input_ids"].tolist() == [[11, 12, 13, 14, 15], [21, 22, 23, 0, 0]]
    assert "attention_mask" not in batch
    cross = PackedRowsCollator(pad_token_id=0, cross_document_attention=True)([{"input_ids": [1, 2, 3], "seq_lengths": [1, 2]}])
    assert cross["position_ids"].tolist() == [[0, 1, 2]] and cross["labels"].tolist() == [[IGNORE_INDEX, 2, 3]]


def test_temperature_quota_hand_checked():
    # p ∝ n^(1/T): T=2 → sqrt(900)=30, sqrt(100)=10 → 3:1 of 1000
    assert temperature_quota({"zh": 900, "en": 100}, 2.0) == {"zh": 750, "en": 250}
    assert temperature_quota({"zh": 900, "en": 100}, 1.0) == {"zh": 900, "en": 100}
    # T→∞: uniform 10/3 each; largest remainder tie → the larger pool gets the extra example
    assert temperature_quota({"a": 5, "b": 3, "c": 2}, 1e9) == {"a": 4, "b": 3, "c": 3}
    with pytest.raises(UserError):
        temperature_quota({"a": 1}, 0.0)


def test_temperature_sample_repeats_and_subsamples():
    pools = {"zh": list(range(900)), "en": list(range(900, 1000))}
    epoch = temperature_sample(pools, 2.0, random.Random(0))
    assert len(epoch) == 1000
    en = [i for i in epoch if i >= 900]
    zh = [i for i in epoch if i < 900]
    assert len(en) == 250 and len(zh) == 750
    assert all(en.count(i) in (2, 3) for i in range(900, 1000))  # 250 = 2 x 100 + 50 drawn once more
    assert len(set(zh)) == 750  # subsampled without replacement


def test_plan_epochs_rounds_and_temperature():
    rounds = [1, 2, 1, 2, 2, 1]
    langs = ["en", "ja", "ja", "en", "en", "en"]
    plan = plan_epochs(rounds, langs, epochs=5, use_rounds=True, temperature=1.0, seed=3)
    assert plan.labels == ["round 1", "round 2"]
    assert sorted(plan.epochs[0]) == [0, 2, 5] and sorted(plan.epochs[1]) == [1, 3, 4]
    again = plan_epochs(rounds, langs, epochs=5, use_rounds=True, temperature=1.0, seed=3)
    assert again.epochs == plan.epochs  # deterministic
    plain = plan_epochs([None] * 6, langs, epochs=2, use_rounds=False, temperature=1.0, seed=0)
    assert plain.labels == ["epoch 1", "epoch 2"] and all(sorted(e) == list(range(6)) for e in plain.epochs)
    with pytest.raises(UserError, match="round"):
        plan_epochs([1, None], ["en", "en"], epochs=1, use_rounds=True, temperature=1.0, seed=0)


def test_epoch_fraction():
    assert epoch_fraction(0, [10, 15]) == 0.0
    assert epoch_fraction(5, [10, 15]) == 0.5
    assert epoch_fraction(10, [10, 15]) == 1.0
    assert epoch_fraction(13, [10, 15]) == pytest.approx(1.6)
    assert epoch_fraction(99, [10, 15]) == 2.0


def test_context_extension_changes_config_as_documented():
    from transformers import Qwen2Config

    cfg = Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1, max_position_embeddings=8192)
    changed = apply_context_extension(cfg, seq_len=32768, rope_theta=1e6)
    assert cfg.rope_parameters["rope_theta"] == 1e6 and cfg.rope_parameters["rope_type"] == "default"
    assert cfg.max_position_embeddings == 32768 and changed["max_position_embeddings"] == {"from": 8192, "to": 32768}
    cfg2 = Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1, max_position_embeddings=8192)
    apply_context_extension(cfg2, seq_len=16384, rope_scaling="yarn:4")
    assert cfg2.rope_parameters == {"rope_theta": 10000.0, "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192}
    assert cfg2.max_position_embeddings == 32768
    with pytest.raises(UserError):
        apply_context_extension(cfg2, seq_len=10, rope_scaling="ntk:2")


def test_select_lowest():
    assert select_lowest([5.0, 1.0, None, 3.0, 1.0], 0.5) == [False, True, False, False, True]
    assert select_lowest([5.0, 1.0, 3.0], 0.1) == [False, True, False]  # ceil keeps at least one
    assert select_lowest([2.0, 1.0], 1.0) == [True, True]


def test_iter_texts_names_file_and_line(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"text": "ok"}, {"text": 3}])
    with pytest.raises(InputError) as exc:
        list(iter_texts(str(f)))
    assert str(exc.value).startswith(f"{f}:2: field 'text' must be a string")
