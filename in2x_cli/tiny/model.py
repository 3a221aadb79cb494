"""The tiny model itself: a byte-level BPE tokenizer trained on the bundled corpus, a ChatML chat
template with ``{% generation %}`` markers (so TRL can build assistant-only loss masks), and a
Qwen2-shaped causal LM (hidden 64, 2 layers, 4 heads, 2 KV heads, tied embeddings). Deterministic
given the seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli.errors import UserError
from in2x_cli.tiny.corpus import CORPUS_FILES, corpus_dir, corpus_texts

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    vocab_size: int = 1000
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    max_position_embeddings: int = 2048
    seed: int = 0
    train_steps: int = 0
    train_batch: int = 16
    train_seq_len: int = 128
    learning_rate: float = 3e-3

    def __post_init__(self) -> None:
        if self.train_steps < 0:
            raise UserError(f"--train-steps must be >= 0, got {self.train_steps}")


def build_tokenizer(vocab_size: int = 1000) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus_texts()), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_input_names=["input_ids", "attention_mask"],
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_tiny_model(out_dir: str | Path, config: TinyConfig = TinyConfig()) -> Path:
    """Build and save the tiny model; returns the directory."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(config.vocab_size)
    torch.manual_seed(config.seed)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
    )
    model = Qwen2ForCausalLM(cfg)
    if config.train_steps > 0:
        _warm_up(model, tok, config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tok.pad_token_id,
    )
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    from in2x_cli import provenance
    from in2x_cli.io.checkpoint import write_provenance

    corpus = [corpus_dir() / f"{name}.jsonl" for name in CORPUS_FILES]
    write_provenance(out, provenance.collect(command="tiny-model", config=config, seed=config.seed, inputs=corpus))
    return out


def _warm_up(model: Any, tok: Any, config: TinyConfig) -> None:
    """A few AdamW steps of next-token prediction on packed corpus text (deterministic)."""
    import torch

    rng = random.Random(config.seed)
    texts = list(corpus_texts())
    ids: list[int] = []
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    for t in texts:
        ids.extend(tok(t, add_special_tokens=False)["input_ids"] + [eot])
    data = torch.tensor(ids, dtype=torch.long)
    n_windows = max(1, (len(data) - 1) // config.train_seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    model.train()
    for _ in range(config.train_steps):
        starts = [rng.randrange(n_windows) * config.train_seq_len for _ in range(config.train_batch)]
        batch = torch.stack([data[s : s + config.train_seq_len] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
