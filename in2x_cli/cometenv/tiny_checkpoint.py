"""Build a tiny, randomly initialised COMET regression checkpoint offline (tests, demo).

Runs inside the COMET environment (``.venv-comet/bin/python -m`` is not possible there, so call
it as a script: ``.venv-comet/bin/python in2x_cli/cometenv/tiny_checkpoint.py OUT_DIR``). Imports only the
standard library, ``tokenizers``, ``transformers`` (4.x) and ``comet``.

Layout written (what ``comet.load_from_checkpoint`` and ``comet-score --model`` expect):
  OUT/encoder/            tiny XLM-R-style encoder (Unigram tokenizer, hidden 32, 2 layers)
  OUT/checkpoints/model.ckpt   {state_dict, hyper_parameters, pytorch-lightning_version}
  OUT/hparams.yaml
The scores it produces are meaningless numbers; the point is the real scoring code path.
"""

from __future__ import annotations

import json
import os
import sys

WORDS = (
    "the cat sat on a mat and the dog ran to the park in the morning . "
    "猫 が マット の 上 に 座った 。 犬 は 朝 公園 へ 走った 。 "
    "猫 坐 在 垫子 上 。 狗 早上 跑 到 公园 。 translation quality good bad"
).split()


def build(out_dir: str, seed: int = 0, referenceless: bool = False) -> str:
    """The checkpoint path; ``referenceless`` builds a reference-free (QE, CometKiwi-shaped) model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    torch.manual_seed(seed)
    out_dir = os.path.abspath(out_dir)
    enc_dir = os.path.join(out_dir, "encoder")
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    os.makedirs(enc_dir, exist_ok=True)

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>", show_progress=False
    )
    lines = [" ".join(WORDS[i : i + 8]) for i in range(0, len(WORDS), 3)] * 4
    tok.train_from_iterator(lines, trainer=trainer)
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    fast.save_pretrained(enc_dir)
    cfg = XLMRobertaConfig(
        vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=514, pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
    )
    XLMRobertaModel(cfg).save_pretrained(enc_dir)

    from comet.models import ReferencelessRegression, RegressionMetric

    model = (ReferencelessRegression if referenceless else RegressionMetric)(
        encoder_model="XLM-RoBERTa", pretrained_model=enc_dir, hidden_sizes=[32], layer="mix",
        layer_transformation="sparsemax", pool="avg", load_pretrained_weights=True, local_files_only=True,
    )
    hparams = dict(model.hparams)
    identifier = "referenceless_regression_metric" if referenceless else "regression_metric"
    hparams.update({"class_identifier": identifier, "load_pretrained_weights": False})
    import pytorch_lightning

    torch.save(
        {"state_dict": model.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": pytorch_lightning.__version__},
        os.path.join(out_dir, "checkpoints", "model.ckpt"),
    )
    with open(os.path.join(out_dir, "hparams.yaml"), "w", encoding="utf-8") as fh:
        for key, value in hparams.items():
            fh.write(f"{key}: {json.dumps(value)}\n")
    return os.path.join(out_dir, "checkpoints", "model.ckpt")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--referenceless"]
    if len(args) != 1:
        print("usage: tiny_checkpoint.py OUT_DIR [--referenceless]", file=sys.stderr)
        sys.exit(2)
    print(build(args[0], referenceless="--referenceless" in sys.argv[1:]))
