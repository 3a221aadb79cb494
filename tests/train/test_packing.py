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
