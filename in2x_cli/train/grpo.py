"""``in2x grpo``: Trajectory-Corrected GRPO on TRL's ``GRPOTrainer`` (TRL 1.16.x).

Reading order: the batch plan (paper batch sizes → TRL's knobs), the prompt file, the reward
adapter, the trainer subclass, and ``run_grpo`` which ties them to the shared training glue
(``train/``: run directory, callbacks, resume, signals, final export).

What the subclass changes in TRL (everything else, including generation, reward calling,
gathering across processes, checkpointing and vLLM weight sync, is TRL's own code):

- ``_generate_and_score_completions``: sets the sampling temperature of this rollout round
  (linear decay, ``core.grpo_loss.temperature_at``) on the generation path actually used
  (transformers ``generate`` or TRL's colocated vLLM), then replaces TRL's advantages with ours:
  weighted reward sum → soft length penalty → high clip → advantages (``core.grpo_loss.advantages_for``:
  by default length-corrected in pass/fail groups (0 or one positive value), plain group advantages elsewhere). The round's temperature travels with the batch.
- ``_compute_loss``: the TIC-GRPO loss of ``core.grpo_loss.tic_grpo_loss`` (trajectory /
  sequence-mean / token ratio, upper-only clip, dual clip, entropy bonus, optional k3 KL),
  with log-probabilities recomputed at the temperature the batch was sampled with.
- checkpoints taken in the middle of a rollout batch (SIGTERM) also store the buffered rollouts,
  so ``--resume`` continues with the same rollouts instead of sampling new ones: on CPU a resumed
  run is bit-identical to an uninterrupted one.

Batch sizes (paper: batch 128, minibatch 32, 16 rollouts per prompt, one epoch). One *rollout
batch* is ``rollout_batch`` prompts × G completions, sampled at once; it is consumed in
``rollout_batch / minibatch`` optimizer steps of ``minibatch`` × G completions each (steps after the
first are off-policy: that is where the trajectory correction matters), ``num_iterations`` times.
In TRL's terms, with P processes and ``batch_size`` completions per device per micro-step::

    generation_batch_size       = rollout_batch × G                     (2048 in the paper)
    gradient_accumulation_steps = minibatch × G / (batch_size × P)      (512 / (batch_size × P))
    steps_per_generation        = rollout_batch × G / (batch_size × P)  (micro-steps per rollout batch)
    optimizer steps per rollout = rollout_batch / minibatch × num_iterations   (4)
"""

from __future__ import annotations

import functools
import json
import math
import os
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer

from in2x_cli import console
from in2x_cli.core import grpo_loss
from in2x_cli.errors import InputError, UserError
from in2x_cli.rewards import Reward, RewardContext, RewardSpec, resolve_rewards
from in2x_cli.train.options import TrainOptions

ROLLOUT_BUFFER_FILE = "in2x_rollout_buffer.pt"
ROLLOUT_ENGINES = ("auto", "vllm", "transformers")

# --------------------------------------------------------------------------- batch plan


@dataclass(frozen=True)
class BatchPlan:
    """Paper batch sizes mapped onto TRL's (see the module docstring)."""

    per_device_batch: int
    gradient_accumulation_steps: int
    steps_per_generation: int
    generation_batch_size: int
    updates_per_rollout: int


def plan_batches(
    *, rollout_batch: int, minibatch: int, num_generations: int, per_device_batch: int, world_size: int, num_iterations: int = 1
) -> BatchPlan:
    """Check divisibility and derive TRL's batch knobs; every failure says which flag to change."""
    if num_generations < 2:
        raise UserError("--num-generations must be >= 2 (group advantages need at least two samples)")
    if min(rollout_batch, minibatch, per_device_batch, world_size, num_iterations) < 1:
        raise UserError("--rollout-batch, --minibatch, --batch-size and --num-iterations must be >= 1")
    if rollout_batch % minibatch:
        raise UserError(f"--rollout-batch {rollout_batch} must be a multiple of --minibatch {minibatch}")
    per_step = per_device_batch * world_size
    update_completions = minibatch * num_generations
    if update_completions % per_step:
        raise UserError(
            f"--minibatch {minibatch} × --num-generations {num_generations} = {update_completions} completions per update "
            f"must be a multiple of --batch-size {per_device_batch} × {world_size} process(es)"
        )
    accum = update_completions // per_step
    generation = rollout_batch * num_generations
    return BatchPlan(
        per_device_batch=per_device_batch,
        gradient_accumulation_steps=accum,
        steps_per_generation=generation // per_step,
        generation_batch_size=generation,
        updates_per_rollout=(rollout_batch // minibatch) * num_iterations,
    )


# --------------------------------------------------------------------------- prompts


def prompt_messages(data: dict[str, Any], where: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The chat prompt of one row and the canonical fields rewards see.

    Accepted rows (first match wins):
      - ``messages``: a conversation; a trailing assistant turn (a reference answer) is dropped and
        the rest must end with a user turn;
      - ``instruction`` / ``prompt`` / ``query``: one user turn (with ``system`` as a system turn);
      - ``src`` (or ``src_text``) with ``tgt_lang``: a translation request, rendered with the same
        target-language prompt templates as ``in2x translate``; ``src``, ``ref``, ``src_lang`` and
        ``tgt_lang`` reach the rewards under these names whatever the input spelled;
      - ``src`` with ``candidates`` (a list of translations) and ``tgt_lang``: a *fusion* request,
        rendered with ``core.fusion``'s prompt (the one ``in2x translate --fuse`` sends); rewards see
        ``src``, ``ref``, ``candidates``, ``src_lang`` and ``tgt_lang`` (``train.fusion_rows``).
    """
    from in2x_cli.core.translate import build_messages
    from in2x_cli.records import InstructionRow, TranslationRow, has_prompt, row_conversation

    fields = dict(data)
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise InputError("field 'system' must be a string", where)
    if "messages" in data and not has_prompt(data):
        msgs = row_conversation(data, where) or []
        if msgs[-1]["role"] == "assistant":
            msgs = msgs[:-1]
        if not msgs or msgs[-1]["role"] != "user":
            raise InputError("'messages' must end with a user turn (optionally followed by one assistant turn)", where)
        return msgs, fields
    if has_prompt(data):
        rec = InstructionRow.from_dict(data, where)
        text = rec.instruction or ""
        if not text.strip():
            raise InputError("the instruction is empty", where)
        return build_messages(text, system), fields
    if "candidates" in data:  # a fusion row: source + candidate translations → one refined translation
        from in2x_cli.train.fusion_rows import fusion_prompt

        text, canonical = fusion_prompt(data, where)
        fields.update(canonical)
        return build_messages(text, system), fields
    if any(k in data for k in ("src", *TranslationRow.ALIASES["src"])):
        from in2x_cli.core.translate import TEMPLATES, render_prompt, select_template
        from in2x_cli.langs import normalize_lang

        tr = TranslationRow.from_dict(data, where)
        if not tr.tgt_lang:
            raise InputError("a translation row needs 'tgt_lang'", where)
        tgt = normalize_lang(tr.tgt_lang, where=where)
        src_lang = normalize_lang(tr.src_lang, where=where) if tr.src_lang else "en"
        if not (tr.src or "").strip():
            raise InputError("the source text is empty", where)
        text = render_prompt(select_template(TEMPLATES, src_lang, tgt), tr.src or "", src_lang, tgt)
        fields.update({"src": tr.src, "ref": tr.ref, "src_lang": src_lang, "tgt_lang": tgt})
        return build_messages(text, system), fields
    raise InputError("row has no prompt: expected 'messages', 'instruction' (or 'prompt'/'query'), or 'src' with 'tgt_lang'", where)


def load_prompt_rows(path: str) -> list[dict[str, Any]]:
    """Read the prompt JSONL into TRL dataset rows ``{"prompt": messages, "row": json}``.

    Every row must have a prompt (errors name file:line); the whole input row rides along as JSON
    (``row``) so reward functions see its fields with their original types.
    """
    from in2x_cli.io import iter_jsonl

    rows = []
    for line in iter_jsonl(path):
        messages, fields = prompt_messages(line.data, line.where)
        rows.append({"prompt": messages, "row": json.dumps(fields, ensure_ascii=False)})
    return rows


# --------------------------------------------------------------------------- rewards


RESERVED_FIELDS = ("prompts", "completions")


class TRLRewardAdapter:
    """Presents one in2x reward to TRL: chat messages → text, the row's JSON → keyword columns,
    ``None`` → not applicable (TRL's NaN), anything non-finite → a user-visible error."""

    def __init__(self, reward: Reward) -> None:
        self.reward = reward
        self.__name__ = reward.name

    def __call__(self, prompts: list[Any], completions: list[Any], row: Sequence[str] | None = None, log_metric: Any = None, **_: Any) -> list[float | None]:
        texts = [_message_text(c) for c in completions]
        prompt_texts = [_last_user_text(p) for p in prompts]
        rows = [json.loads(r) for r in row] if row is not None else [{} for _ in completions]
        keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in RESERVED_FIELDS]
        columns = {k: [r.get(k) for r in rows] for k in keys}
        scores = self.reward.fn(prompt_texts, texts, **columns)
        if not isinstance(scores, (list, tuple)) or len(scores) != len(texts):
            raise UserError(f"reward {self.reward.name!r} returned {len(scores) if isinstance(scores, (list, tuple)) else type(scores).__name__} values for {len(texts)} completions")
        out: list[float | None] = []
        for s in scores:
            if s is None:
                out.append(None)
                continue
            value = float(s)
            if not math.isfinite(value):
                raise UserError(f"reward {self.reward.name!r} returned a non-finite value ({value}); rewards must be finite or None")
            out.append(value)
        if log_metric is not None:
            for key, value in self.reward.metrics().items():
                log_metric(f"rewards/{self.reward.name}/{key}", float(value))
        return out


def _message_text(message: Any) -> str:
    if isinstance(message, str):
        return message
    if isinstance(message, list) and message:
        return str(message[-1].get("content") or "")
    return ""


def _last_user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    for m in reversed(prompt or []):
        if m.get("role") == "user":
            return str(m.get("content") or "")
    return ""


# --------------------------------------------------------------------------- config and trainer


@dataclass
class TICGRPOConfig(GRPOConfig):
    """``GRPOConfig`` plus the Trajectory-Corrected GRPO knobs (``temperature`` is the start value)."""

    ratio_level: str = field(default="trajectory", metadata={"help": "trajectory (TIC), sequence-mean (GSPO) or token (GRPO)."})
    advantage_type: str = field(default="auto", metadata={"help": "auto (length-corrected in pass/fail groups, else group), group (GRPO), length-corrected (TIC-GRPO) or reference-length."})
    clip_scale: str = field(default="sqrt-length", metadata={"help": "Scale of the clip bounds for trajectory ratios: sqrt-length, length or none (core.grpo_loss.clip_log_bounds)."})
    symmetric_clip: bool = field(default=False, metadata={"help": "Also clip negative samples below exp(-b) (symmetric in log-space)."})
    dual_clip: float | None = field(default=3.0, metadata={"help": "c of the dual clip for A < 0 (None = off)."})
    temperature_end: float | None = field(default=None, metadata={"help": "Sampling temperature of the last rollout round (None = constant)."})
    length_penalty_target: int | None = field(default=None, metadata={"help": "Soft length penalty: zero up to this many tokens."})
    length_penalty_cap: int | None = field(default=None, metadata={"help": "Soft length penalty: reaches -weight at this many tokens."})
    length_penalty_weight: float = field(default=1.0, metadata={"help": "Soft length penalty at and beyond the cap."})
    reward_clip_high: float | None = field(default=None, metadata={"help": "Clip the total reward from above (None = off)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_tic_choices(self.ratio_level, self.advantage_type, self.dual_clip, self.clip_scale)
        if (self.length_penalty_target is None) != (self.length_penalty_cap is None):
            raise UserError("the length penalty needs both a target and a cap")


def check_tic_choices(ratio_level: str, advantage: str, dual_clip: float | None, clip_scale: str = "sqrt-length") -> None:
    """The Trajectory-Corrected GRPO choices, checked here for both configs (``GRPORunConfig`` when
    the command builds it, ``TICGRPOConfig`` for direct use of the trainer)."""
    if ratio_level not in grpo_loss.RATIO_LEVELS:
        raise UserError(f"unknown --ratio-level {ratio_level!r} (expected {', '.join(grpo_loss.RATIO_LEVELS)})")
    if advantage not in grpo_loss.ADVANTAGE_KINDS:
        raise UserError(f"unknown --advantage {advantage!r} (expected {', '.join(grpo_loss.ADVANTAGE_KINDS)})")
    if dual_clip is not None and dual_clip <= 1.0:
        raise UserError(f"--dual-clip must be > 1 (or 0 to turn it off), got {dual_clip}")
    if clip_scale not in grpo_loss.CLIP_SCALES:
        raise UserError(f"unknown --clip-scale {clip_scale!r} (expected {', '.join(grpo_loss.CLIP_SCALES)})")


class TICGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with the Trajectory-Corrected GRPO loss (see the module docstring)."""

    _tag_names = ["trl", "grpo", "in2x", "tic-grpo"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: TICGRPOConfig = self.args
        self._temperature_start = float(cfg.temperature)
        self._temperature_end = float(cfg.temperature_end if cfg.temperature_end is not None else cfg.temperature)
        self._scoring_temperature = self._temperature_start
        self._captured_rewards: torch.Tensor | None = None
        if self._temperature_end != self._temperature_start:
            self._install_temperature_heads()

    # ----------------------------------------------------------------- temperature schedule

    @property
    def updates_per_rollout(self) -> int:
        micro_steps = self.args.steps_per_generation * self.num_iterations
        return max(1, micro_steps // self.args.gradient_accumulation_steps)

    def rollout_temperature(self) -> float:
        """τ for the rollout round starting at the current optimizer step."""
        rounds = max(1, math.ceil(max(self.state.max_steps, 1) / self.updates_per_rollout))
        round_index = self.state.global_step // self.updates_per_rollout
        return grpo_loss.temperature_at(round_index, rounds, self._temperature_start, self._temperature_end)

    def _set_sampling_temperature(self, tau: float) -> None:
        if self.use_vllm:
            self.vllm_generation.temperature = tau
        else:
            self.generation_config.temperature = tau
            self.generation_kwargs["temperature"] = tau
        self._scoring_temperature = tau

    def _install_temperature_heads(self) -> None:
        """Make TRL's fused log-prob head read the temperature of the batch being scored.

        TRL bakes ``args.temperature`` into the fused LM head at init; with a decaying temperature
        the log-probabilities (π_old at sampling time, π_θ in the loss, π_ref for the KL) must use the
        temperature the rollouts were sampled at. Each model gets a dispatcher: fused calls go to a
        head built for the current temperature (TRL's ``add_fused_lm_head``), plain calls
        (generation) to the original forward.
        """
        from accelerate.utils import is_peft_model
        from trl.trainer.utils import add_fused_lm_head

        policy = self.model.get_base_model() if is_peft_model(self.model) else self.model  # as TRL patches it
        targets = [(policy, ("log_probs", "entropy"))]
        if self.ref_model is not None:
            targets.append((self.accelerator.unwrap_model(self.ref_model), ("log_probs",)))
        trainer = self
        for model, outputs in targets:
            fused_at_init = model.forward
            heads: dict[float, Any] = {}

            def head_for(tau: float, model: Any = model, outputs: tuple[str, ...] = outputs, heads: dict[float, Any] = heads) -> Any:
                if tau not in heads:
                    current = model.forward
                    add_fused_lm_head(model, temperature=tau, cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32, outputs=outputs)
                    if len(heads) > 8:
                        heads.clear()
                    heads[tau] = model.forward
                    model.forward = current
                return heads[tau]

            @functools.wraps(type(model).forward)
            def forward(self_: Any, *args: Any, fused_lm_head: bool = False, _head_for: Any = head_for, _plain: Any = fused_at_init, **kwargs: Any) -> Any:
                if fused_lm_head:
                    return _head_for(trainer._scoring_temperature)(*args, fused_lm_head=True, **kwargs)
                return _plain(*args, **kwargs)

            model.forward = types.MethodType(forward, model)

    # ----------------------------------------------------------------- rollouts and advantages

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> torch.Tensor:
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._captured_rewards = rewards
        return rewards

    def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
        mode = "train" if self.model.training else "eval"
        tau = self.rollout_temperature() if mode == "train" else self._temperature_end
        self._set_sampling_temperature(tau)
        output = super()._generate_and_score_completions(inputs)
        rewards_per_func = self._captured_rewards
        assert rewards_per_func is not None
        self._captured_rewards = None
        mask = output["completion_mask"] if "tool_mask" not in output else output["completion_mask"] * output["tool_mask"]
        lengths = self.accelerator.gather(mask.sum(dim=1)).float()
        reference_lengths = None
        if self.args.advantage_type == "reference-length":
            reference_lengths = self.accelerator.gather(self.reference_lengths(inputs).to(lengths.device))
        advantages, stats = self.shaped_advantages(rewards_per_func, lengths, reference_lengths)
        local = len(output["completion_ids"])
        start = self.accelerator.process_index * local
        output["advantages"] = advantages[start : start + local].to(output["completion_ids"].device)
        output["sampling_temperature"] = torch.tensor(tau, device=output["completion_ids"].device)
        stats["sampling/temperature"] = tau
        for key, value in stats.items():
            self._metrics[mode][key].append(value)
        return output

    def reference_lengths(self, inputs: Any) -> torch.Tensor:
        """Token length of each row's reference (``ref``, else ``answer``), NaN where it has none
        (``--advantage reference-length``)."""
        out = []
        for item in inputs:
            row = json.loads(item.get("row") or "{}") if isinstance(item, dict) else {}
            text = row.get("ref") if isinstance(row.get("ref"), str) else row.get("answer")
            if isinstance(text, str) and text.strip():
                out.append(float(len(self.processing_class(text, add_special_tokens=False)["input_ids"])))
            else:
                out.append(float("nan"))
        return torch.tensor(out, dtype=torch.float32)

    def shaped_advantages(
        self, rewards_per_func: torch.Tensor, lengths: torch.Tensor, reference_lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum (NaN = not applicable) → length penalty → high clip → advantages."""
        cfg: TICGRPOConfig = self.args
        weights = self.reward_weights.to(rewards_per_func.device)
        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        total = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        total[unscorable] = float("nan")
        stats: dict[str, float] = {}
        if cfg.length_penalty_target is not None and cfg.length_penalty_cap is not None:
            penalty = grpo_loss.soft_length_penalty(lengths, cfg.length_penalty_target, cfg.length_penalty_cap, weight=cfg.length_penalty_weight)
            total = total + penalty.to(total.device)
            stats["length_penalty/mean"] = float(penalty.mean())
        if cfg.reward_clip_high is not None:
            valid = ~torch.isnan(total)
            stats["reward_clip/fraction"] = float(((total > cfg.reward_clip_high) & valid).float().mean())
            total = grpo_loss.clip_rewards_high(total, cfg.reward_clip_high)
        refs = reference_lengths.to(total.device) if reference_lengths is not None else None
        adv = grpo_loss.advantages_for(cfg.advantage_type, total, lengths.to(total.device), self.num_generations, reference_lengths=refs)
        if cfg.advantage_type == "auto":
            stats["advantages/length_corrected_groups"] = float(grpo_loss.verifiable_groups(total, self.num_generations).float().mean())
        valid = total[~torch.isnan(total)]
        if valid.numel():
            stats["reward_shaped/mean"] = float(valid.mean())
            stats["reward_shaped/std"] = float(valid.std()) if valid.numel() > 1 else 0.0
        stats["advantages/abs_mean"] = float(adv.abs().mean())
        return adv, stats

    # ----------------------------------------------------------------- loss

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        cfg: TICGRPOConfig = self.args
        if "sampling_temperature" in inputs:
            self._scoring_temperature = float(inputs["sampling_temperature"])
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        per_token_logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True, compute_aux_loss=self.aux_loss_enabled
        )
        old = inputs.get("old_per_token_logps")
        old = per_token_logps.detach() if old is None else old

        mode = "train" if self.model.training else "eval"
        accum = self.current_gradient_accumulation_steps if mode == "train" else 1
        batch = completion_ids.size(0)
        tokens_in_window = inputs["num_items_in_batch"].float().clamp(min=1.0) / self.accelerator.num_processes
        if mode == "train":
            tokens_in_window = tokens_in_window * accum / self.args.steps_per_generation
        weights = inputs.get("importance_sampling_ratio") if self.use_vllm and self.vllm_importance_sampling_correction else None
        if weights is not None and cfg.ratio_level != "token" and weights.dim() == 2 and weights.size(1) > 1:
            # token-mode sampler weights with a sequence-level ratio: one weight per completion (masked mean)
            weights = (weights * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1)
        out = grpo_loss.tic_grpo_loss(
            per_token_logps,
            old,
            inputs["advantages"],
            mask,
            ratio_level=cfg.ratio_level,
            epsilon_high=self.epsilon_high,
            dual_clip=cfg.dual_clip,
            entropies=entropies,
            entropy_coef=cfg.entropy_coef / accum,
            ref_per_token_logps=inputs.get("ref_per_token_logps"),
            kl_coef=self.beta / accum,
            sequence_weights=weights,
            sequence_normalizer=float(batch * accum),
            token_normalizer=float(tokens_in_window),
            clip_scale=cfg.clip_scale,
            symmetric_clip=cfg.symmetric_clip,
        )
        loss = out.loss
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * aux_loss / accum
        stats = {"policy_loss": out.policy_loss, "entropy": out.entropy, **out.stats}
        if inputs.get("ref_per_token_logps") is not None:
            stats["kl"] = out.kl
        self._log_stats(mode, stats)
        return loss

    def _log_stats(self, mode: str, stats: dict[str, float]) -> None:
        """Average over processes (min/max for extremes) and queue for the next log line."""
        keys = sorted(stats)
        values = torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            gathered = self.accelerator.gather(values.unsqueeze(0))
            reduced = {k: (gathered[:, i].min() if k.endswith("/min") else gathered[:, i].max() if k.endswith("/max") else gathered[:, i].mean()) for i, k in enumerate(keys)}
            values_out = {k: float(v) for k, v in reduced.items()}
        else:
            values_out = dict(zip(keys, values.tolist(), strict=True))
        for k, v in values_out.items():
            self._metrics[mode][k].append(v)

    # ----------------------------------------------------------------- exact resume

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Mid-rollout checkpoints keep the buffered rollouts (written before the trainer state, so a
        checkpoint that looks complete always has them)."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        if self._buffered_inputs is not None and self._step % generate_every != 0:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            buffer = [{k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in b.items()} for b in self._buffered_inputs]
            name = f"{ROLLOUT_BUFFER_FILE}.rank{self.accelerator.process_index}"
            torch.save({"step": self._step, "buffered_inputs": buffer}, folder / name)
        super()._save_checkpoint(model, trial)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = Path(checkpoint) / f"{ROLLOUT_BUFFER_FILE}.rank{self.accelerator.process_index}"
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            device = self.accelerator.device
            self._buffered_inputs = [{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in b.items()} for b in state["buffered_inputs"]]
            self._step = int(state["step"])
        elif self.state.global_step % self.updates_per_rollout:
            console.warn(f"{checkpoint} was saved mid-rollout without its rollouts; resuming samples a new rollout batch")


# --------------------------------------------------------------------------- the run


def parse_length_penalty(text: str | None) -> tuple[int, int] | None:
    """``--length-penalty TARGET:CAP`` in tokens (e.g. ``768:1024``) → (target, cap); None = off."""
    if not text:
        return None
    try:
        target, cap = (int(x) for x in text.split(":"))
    except ValueError:
        raise UserError(f"invalid --length-penalty {text!r} (expected TARGET:CAP in tokens, e.g. 768:1024)") from None
    if not 0 <= target < cap:
        raise UserError(f"invalid --length-penalty {text!r}: need 0 <= TARGET < CAP")
    return target, cap


@dataclass(frozen=True)
class GRPORunConfig:
    """Everything ``in2x grpo`` needs, resolved from the command line (the optimizer, schedule
    and step budget live in ``train``; its batch size is completions per device per micro-step)."""

    model: str
    prompts: str
    train: TrainOptions
    rewards: tuple[RewardSpec, ...]
    reward_context: RewardContext = RewardContext()
    num_generations: int = 16
    rollout_batch: int = 128
    minibatch: int = 32
    num_iterations: int = 1
    epochs: float = 1.0
    max_completion_tokens: int = 1024
    temperature_start: float = 1.0
    temperature_end: float = 0.7
    top_p: float = 1.0
    ratio_level: str = "trajectory"
    advantage: str = "auto"
    clip_scale: str = "sqrt-length"
    symmetric_clip: bool = False
    epsilon_high: float = 0.28
    dual_clip: float | None = 3.0
    entropy_coef: float = 0.01
    kl_coef: float = 0.0
    length_penalty: tuple[int, int] | None = None
    length_penalty_weight: float = 1.0
    reward_clip_high: float | None = None
    eval_prompts: str | None = None
    eval_steps: int = 0
    rollout_engine: str = "auto"
    vllm_gpu_memory_utilization: float = 0.3

    def __post_init__(self) -> None:
        if self.rollout_engine not in ROLLOUT_ENGINES:
            raise UserError(f"unknown --rollout-engine {self.rollout_engine!r} (expected {', '.join(ROLLOUT_ENGINES)})")
        check_tic_choices(self.ratio_level, self.advantage, self.dual_clip, self.clip_scale)
        if self.temperature_start <= 0 or self.temperature_end <= 0:
            raise UserError("--temperature-start and --temperature-end must be > 0")
        if not 0 < self.top_p <= 1:
            raise UserError("--top-p must be in (0, 1]")
        if self.epsilon_high <= 0:
            raise UserError("--epsilon-high must be > 0")
        if self.entropy_coef < 0 or self.kl_coef < 0:
            raise UserError("--entropy-coef and --kl-coef must be >= 0")
        if self.epochs <= 0:
            raise UserError("--epochs must be > 0")
        if self.eval_steps and not self.eval_prompts:
            raise UserError("--eval-steps evaluates held-out prompts: give --eval-prompts FILE, or drop it")
        names = {r.name for r in self.rewards}
        ctx = self.reward_context
        for value, option, reward in ((ctx.glossary, "--glossary", "terminology"), (ctx.round_trip_model, "--round-trip-model", "round_trip")):
            if value is not None and reward not in names:
                raise UserError(f"{option} is read only by the {reward} reward, which is not among the rewards (-r {reward})")


def dense_length_corrected_warning(cfg: GRPORunConfig, rewards: Sequence[Reward]) -> str | None:
    """One line when ``--advantage length-corrected`` meets a reward that is not 0/1 (or a length
    penalty / several weighted rewards, which make the total dense): r/L then rewards truncation."""
    from in2x_cli.rewards import is_verifiable

    if cfg.advantage != "length-corrected":
        return None
    dense = [r.name for r in rewards if not is_verifiable(r)]
    if cfg.length_penalty is not None:
        dense.append("--length-penalty")
    if len(rewards) > 1 and not dense:
        dense.append("a weighted sum of rewards")
    if not dense:
        return None
    return (
        f"--advantage length-corrected with a dense reward ({', '.join(dense)}): r/L ranks short, truncated completions above "
        "full ones (bench/grpo_ablation.py); use --advantage auto (default) or group"
    )


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def check_vllm_budget(cfg: GRPORunConfig, use_vllm: bool) -> None:
    """TRL's colocated rollout engine and a vLLM judge share each rank's GPU: their
    ``gpu_memory_utilization`` shares must add up (``backends.vllm.check_gpu_memory_budget``)."""
    from in2x_cli.backends import resolve_backend_class
    from in2x_cli.backends.vllm import VLLMBackend, check_gpu_memory_budget

    ctx = cfg.reward_context
    judged = any(r.name == "generative_judge" for r in cfg.rewards) and ctx.judge_model
    judge_on_vllm = bool(judged) and ctx.judge_backend in ("vllm", "auto") and issubclass(resolve_backend_class(ctx.judge_backend), VLLMBackend)
    check_gpu_memory_budget({
        "--vllm-gpu-memory (rollouts)": cfg.vllm_gpu_memory_utilization if use_vllm else 0.0,
        "--judge-gpu-memory (judge)": ctx.judge_gpu_memory_utilization if judge_on_vllm else 0.0,
    })


def build_config(cfg: GRPORunConfig, plan: BatchPlan, use_vllm: bool) -> TICGRPOConfig:
    from in2x_cli.train.options import common_training_args

    base = common_training_args(cfg.train)
    base.update(per_device_train_batch_size=plan.per_device_batch, gradient_accumulation_steps=plan.gradient_accumulation_steps)
    extra: dict[str, Any] = {}
    if use_vllm:
        # TRL's sampler-mismatch correction stays on with its default "sequence_mask" mode: one weight
        # per completion (B, 1), which multiplies our objective at every ratio level
        extra.update(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization)
    lp = cfg.length_penalty
    if cfg.eval_prompts:
        # one prompt group per process per eval micro-step (TRL: global eval batch divisible by G); scored at
        # the start (baseline) and every --eval-steps updates (or only at the end, via run_grpo)
        extra.update(per_device_eval_batch_size=cfg.num_generations, eval_on_start=True, eval_strategy="steps", eval_steps=cfg.eval_steps or 10**9)
    return TICGRPOConfig(
        **base,
        **extra,
        num_generations=cfg.num_generations,
        steps_per_generation=plan.steps_per_generation,
        num_iterations=cfg.num_iterations,
        num_train_epochs=cfg.epochs,
        max_completion_length=cfg.max_completion_tokens,
        temperature=cfg.temperature_start,
        temperature_end=cfg.temperature_end,
        top_p=cfg.top_p,
        epsilon_high=cfg.epsilon_high,
        beta=cfg.kl_coef,
        entropy_coef=cfg.entropy_coef,
        reward_weights=None,  # set from the reward specs in run_grpo
        ratio_level=cfg.ratio_level,
        advantage_type=cfg.advantage,
        clip_scale=cfg.clip_scale,
        symmetric_clip=cfg.symmetric_clip,
        dual_clip=cfg.dual_clip,
        length_penalty_target=lp[0] if lp else None,
        length_penalty_cap=lp[1] if lp else None,
        length_penalty_weight=cfg.length_penalty_weight,
        reward_clip_high=cfg.reward_clip_high,
        shuffle_dataset=True,
        log_completions=False,
        trust_remote_code=cfg.train.trust_remote_code,
    )


def run_grpo(cfg: GRPORunConfig, *, provenance_command: str = "grpo") -> Path:
    """Train and export; returns the output directory (the final HF model lives in it)."""
    from datasets import Dataset

    from in2x_cli.io.checkpoint import load_causal_lm, load_tokenizer, resolve_model
    from in2x_cli.train.callbacks import install_callbacks
    from in2x_cli.train.export import finish_run
    from in2x_cli.train.loop import run_training
    from in2x_cli.train.options import seed_everything
    from in2x_cli.train.rundir import prepare_output_dir

    world = int(os.environ.get("WORLD_SIZE", "1"))
    plan = plan_batches(
        rollout_batch=cfg.rollout_batch,
        minibatch=cfg.minibatch,
        num_generations=cfg.num_generations,
        per_device_batch=cfg.train.per_device_batch_size,
        world_size=world,
        num_iterations=cfg.num_iterations,
    )
    rows = load_prompt_rows(cfg.prompts)
    if len(rows) < cfg.rollout_batch:
        raise UserError(f"{len(rows)} prompts is fewer than one rollout batch (--rollout-batch {cfg.rollout_batch})", cfg.prompts)
    eval_rows = load_prompt_rows(cfg.eval_prompts) if cfg.eval_prompts else None
    use_vllm = cfg.rollout_engine == "vllm" or (cfg.rollout_engine == "auto" and vllm_available())
    if cfg.rollout_engine == "vllm" and not vllm_available():
        raise UserError("--rollout-engine vllm needs vLLM and a GPU: pip install 'in2x[gpu]'")
    check_vllm_budget(cfg, use_vllm)
    # a judge and the COMET worker load here, each on this rank's GPU (in2x_cli.devices reads LOCAL_RANK)
    rewards = resolve_rewards(cfg.rewards, cfg.reward_context)
    warning = dense_length_corrected_warning(cfg, rewards)
    if warning:
        console.warn(warning)
    model_dir = resolve_model(cfg.model, trust_remote_code=cfg.train.trust_remote_code)
    # the config creates the distributed state (process group, FSDP / ZeRO-3 plugins) before the policy
    # loads, so FSDP's cpu-RAM-efficient loading and ZeRO-3's partitioned init take effect
    args = build_config(cfg, plan, use_vllm)
    args.reward_weights = [r.weight for r in rewards]

    resume_from = prepare_output_dir(cfg.train.output_dir, resume=cfg.train.resume, overwrite=cfg.train.overwrite)
    seed_everything(cfg.train.seed)
    tokenizer = load_tokenizer(model_dir, trust_remote_code=cfg.train.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    from transformers import AutoConfig

    from in2x_cli.io.checkpoint import loading_errors

    with loading_errors(model_dir):  # the checkpoint's own dtype (bf16, say): the export casts back to it
        base_dtype = getattr(AutoConfig.from_pretrained(str(model_dir), trust_remote_code=cfg.train.trust_remote_code), "dtype", None)
    model = load_causal_lm(model_dir, trust_remote_code=cfg.train.trust_remote_code)
    trainer = TICGRPOTrainer(
        model=model,
        reward_funcs=[TRLRewardAdapter(r) for r in rewards],
        args=args,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
    )
    from in2x_cli.train.flops import flops_per_token

    install_callbacks(
        trainer,
        cfg.train.output_dir,
        description="grpo",
        flops_per_token_value=flops_per_token(model, cfg.max_completion_tokens),
    )
    console.info(
        f"grpo: {len(rows)} prompts, {cfg.num_generations} rollouts each; rollout batch {cfg.rollout_batch} prompts → "
        f"{plan.updates_per_rollout} updates of {cfg.minibatch} prompts (grad-accum {plan.gradient_accumulation_steps}); "
        f"ratio {cfg.ratio_level}, advantages {cfg.advantage}, rollouts by {'vLLM (colocate)' if use_vllm else 'transformers'}"
    )
    run_training(trainer, resume_from)
    if eval_rows and (not cfg.eval_steps or trainer.state.global_step % cfg.eval_steps):
        trainer.evaluate()  # the held-out score after the last update
    extra = {
        "batch_plan": plan,
        "rollout_engine": "vllm" if use_vllm else "transformers",
        "rewards": [{"name": r.name, "weight": r.weight} for r in rewards],
        "steps": trainer.state.global_step,
    }
    finish_run(
        trainer, cfg.train, command=provenance_command, config=cfg, base_model=model_dir, inputs=[str(model_dir), cfg.prompts],
        extra=extra, tokenizer=tokenizer, base_dtype=base_dtype,
    )  # fmt: skip
    return Path(cfg.train.output_dir)
