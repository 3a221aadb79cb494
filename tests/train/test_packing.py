"""Packing without cross-contamination: a packed row gives the same logits and the same loss as the
sequences run one by one (sdpa and eager attention on CPU); plain concatenation does not."""

from __future__ import annotations

import pytest

from in2x_cli.train.data import IGNORE_INDEX, PackedRowsCollator, PaddedCollator

LENGTHS = (5, 9, 6)


def _sequences():
    import torch

    g = torch.Generator().manual_seed(0)
    seqs = []
    for n in LENGTHS:
        ids = torch.randint(5, 900, (n,), generator=g).tolist()
        labels = [IGNORE_INDEX, IGNORE_INDEX] + ids[2:]  # like a masked prompt
        seqs.append({"input_ids": ids, "labels": labels})
    return seqs


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_row_equals_separate_sequences(tiny_model, attn):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32, attn_implementation=attn).eval()
    seqs = _sequences()
    packed = PackedRowsCollator(pad_token_id=3)(
        [{"input_ids": sum((s["input_ids"] for s in seqs), []), "labels": sum((s["labels"] for s in seqs), []), "seq_lengths": list(LENGTHS)}]
    )
    with torch.no_grad():
        out = model(**packed, use_cache=False)
        sep_logits, sep_loss_sum, sep_tokens = [], 0.0, 0
        for s in seqs:
            b = PaddedCollator(pad_token_id=3)([s])
            o = model(**b, use_cache=False)
            n = sum(1 for x in s["labels"][1:] if x != IGNORE_INDEX)
            sep_logits.append(o.logits[0])
            sep_loss_sum += o.loss.item() * n
            sep_tokens += n
    assert torch.allclose(out.logits[0], torch.cat(sep_logits), atol=1e-5)
    assert out.loss.item() == pytest.approx(sep_loss_sum / sep_tokens, abs=1e-6)

    # negative control: without restarting positions the later sequences see the earlier ones
    cross = PackedRowsCollator(pad_token_id=3, cross_document_attention=True)(
        [{"input_ids": sum((s["input_ids"] for s in seqs), []), "labels": sum((s["labels"] for s in seqs), [])}]
    )
    with torch.no_grad():
        leaky = model(**cross, use_cache=False).logits[0]
    assert torch.allclose(leaky[: LENGTHS[0]], sep_logits[0], atol=1e-5)
    assert not torch.allclose(leaky[LENGTHS[0] :], torch.cat(sep_logits[1:]), atol=1e-3)


def test_packed_padding_rows_do_not_leak(tiny_model):
    """Two packed rows of different widths in one batch: the padded row's sequences are unaffected."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    seqs = _sequences()
    rows = [
        {"input_ids": seqs[0]["input_ids"] + seqs[1]["input_ids"], "labels": seqs[0]["labels"] + seqs[1]["labels"], "seq_lengths": [5, 9]},
        {"input_ids": seqs[2]["input_ids"], "labels": seqs[2]["labels"], "seq_lengths": [6]},
    ]
    batch = PackedRowsCollator(pad_token_id=3)(rows)
    with torch.no_grad():
        logits = model(**batch, use_cache=False).logits
        alone = model(**PaddedCollator(pad_token_id=3)([seqs[2]]), use_cache=False).logits[0]
    assert torch.allclose(logits[1, :6], alone, atol=1e-5)


def test_flash_attention_selects_trl_padding_free_collator_with_assistant_labels(tiny_model):
    """The GPU branch of ``make_collator``, on CPU: a model whose config says flash_attention_2 gets
    TRL's flattened padding-free batches (no flash kernel runs here). Built from real chat rows
    packed like ``sft`` packs them: the labels are the assistant-only labels of each conversation
    (first token of each conversation masked: nothing predicts across a boundary), positions restart
    per conversation, and ``cu_seq_lens`` marks every conversation boundary. Same tokens, labels and
    positions as the sdpa collator, minus its padding."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoConfig, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from in2x_cli.tiny import load_corpus
    from in2x_cli.train.data import make_chat_formatter, make_collator, plan_epochs
    from in2x_cli.train.sft import Example, build_epochs

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    formatter = make_chat_formatter(tok)
    convs = [[{"role": "user", "content": r["instruction"][:40]}, {"role": "assistant", "content": r["response"][:30]}] for r in load_corpus("instructions")[:6]]
    encoded = [formatter.tokenize(m) for m in convs]
    examples = [Example(e["input_ids"], e["labels"], "en", None) for e in encoded]
    plan = plan_epochs([None] * 6, ["en"] * 6, epochs=1, use_rounds=False, temperature=1.0, seed=0)
    rows, _ = build_epochs(examples, plan, packing=True, max_length=96, seed=0)
    batch_rows = rows[:2]
    assert all(len(r["seq_lengths"]) >= 2 for r in batch_rows)  # really packed

    config = AutoConfig.from_pretrained(str(tiny_model))
    config._attn_implementation = "flash_attention_2"
    collate = make_collator(SimpleNamespace(config=config), tok.pad_token_id, packed=True)
    assert isinstance(collate, DataCollatorForLanguageModeling) and collate.padding_free
    batch = collate(batch_rows)
    assert "attention_mask" not in batch  # an all-ones mask would make flash-attn ignore the boundaries

    # expected, conversation by conversation, from the formatter's own token-level labels
    index_of = {tuple(e["input_ids"]): i for i, e in enumerate(encoded)}
    ids, labels, positions, bounds = [], [], [], [0]
    for r in batch_rows:
        start = 0
        for n in r["seq_lengths"]:
            i = index_of[tuple(r["input_ids"][start : start + n])]  # each segment is one whole conversation
            conv_labels = [IGNORE_INDEX, *encoded[i]["labels"][1:]]
            # assistant-only: the labelled tokens are the assistant reply (and its end of turn)
            trained = tok.decode([t for t in conv_labels if t != IGNORE_INDEX])
            assert convs[i][1]["content"] in trained and convs[i][0]["content"] not in trained
            ids += encoded[i]["input_ids"]
            labels += conv_labels
            positions += list(range(n))
            bounds.append(bounds[-1] + n)
            start += n
    assert batch["input_ids"].tolist() == [ids]
    assert batch["labels"].tolist() == [labels]
    assert batch["position_ids"].tolist() == [positions]
    assert batch["cu_seq_lens_q"].tolist() == bounds and batch["cu_seq_lens_k"].tolist() == bounds
    assert batch["max_length_q"] == max(n for r in batch_rows for n in r["seq_lengths"])

    # the sdpa path (PackedRowsCollator) trains on the same tokens, labels and positions, padded
    config._attn_implementation = "sdpa"
    sdpa_collate = make_collator(SimpleNamespace(config=config), tok.pad_token_id, packed=True)
    assert isinstance(sdpa_collate, PackedRowsCollator)
    padded = sdpa_collate(batch_rows)
    widths = [len(r["input_ids"]) for r in batch_rows]

    def unpad(t: torch.Tensor) -> list[int]:
        return torch.cat([t[i, :w] for i, w in enumerate(widths)]).tolist()

    assert unpad(padded["input_ids"]) == ids and unpad(padded["labels"]) == labels and unpad(padded["position_ids"]) == positions
