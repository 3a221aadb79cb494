"""Which GRPO advantage rewards truncation? An ablation of core.grpo_loss on a synthetic policy.

Why synthetic: the question is about the training signal (advantage × ratio × clip), not the
network. A policy small enough to train 40+ GRPO rounds for every variant in about a minute on one
CPU core makes the effect visible with a fixed seed; the loss, advantages and clip bounds are the
exact functions ``in2x grpo`` uses (``core.grpo_loss``).

The policy "translates" a reference sentence (two sentences of the bundled parallel corpus, 15–30
words) word by word. At position t it decides to stop (p = σ(θ_t)) and whether the word is wrong
(p = σ(φ_t), a random corpus word instead). θ and φ are shared by all prompts, so held-out prompts
measure what the policy learned. Rewards:

  chrf      sentence chrF(hypothesis, reference) / 100 (sacrebleu): dense, grows with length;
  judge     the fraction of 5 principles met (complete ≥ 90 % of the reference, no wrong word,
            at most one wrong word, covers the first half, not empty): dense, like
            generative_judge's fraction;
  math      1 iff the completion reaches the last word and it is right: verifiable 0/1.

Each round samples 4 prompts × G=8 completions from π_old, computes advantages, then takes two
optimizer steps of 2 prompts each (the second off-policy, so ratios and clipping matter).
Variants: advantage ∈ {group, length-corrected, auto, reference-length} × ratio ∈ {trajectory,
sequence-mean, token}; plus the trajectory clip scale ∈ {sqrt-length, length, none} with auto/chrF.

It also prints the issue's one-group example (perfect translation vs a 4-word truncation) under
each advantage. Output: JSON on stdout (per variant: held-out reward first/last, length ratio,
truncation rate, clip fractions, and ``truncation_rewarded``), a PNG (default
docs/img/grpo_ablation.png).

    MPLBACKEND=Agg python bench/grpo_ablation.py [--rounds 60] [--png docs/img/grpo_ablation.png] [--tiny-model 40]

``--tiny-model STEPS`` adds the real thing at toy scale: ``in2x grpo`` on the tiny model (warmed up,
then the demo's 40 SFT steps on en→ja chats) for STEPS updates with translation_chrf and with
math_exact, advantage length-corrected vs auto, held-out reward and completion length every STEPS/4
updates (``--eval-prompts``). Minutes on a CPU; the tiny model is too weak for the curves to say
much beyond "nothing breaks and the length does not collapse".
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

from common import REPO, emit

ADVANTAGES = ("group", "length-corrected", "auto", "reference-length")
RATIOS = ("trajectory", "sequence-mean", "token")
REWARDS = ("chrf", "judge", "math")
CLIP_SCALES = ("sqrt-length", "length", "none")
G = 8
PROMPTS_PER_ROUND = 4
MINIBATCH = 2


def references() -> tuple[list[list[str]], list[list[str]], list[str]]:
    from in2x_cli.tiny import load_corpus

    rows = load_corpus("parallel")
    refs = [(rows[i]["en"] + " " + rows[i + 1]["en"]).split() for i in range(0, 48, 2)]
    vocab = sorted({w for r in rows for w in r["en"].split()})
    return refs[:16], refs[16:], vocab


class Task:
    """Reward functions over (reference words, hypothesis words)."""

    def __init__(self) -> None:
        from sacrebleu.metrics import CHRF

        self.chrf_metric = CHRF()

    def reward(self, kind: str, ref: list[str], hyp: list[str], wrong: list[bool]) -> float:
        n, length, errors = len(ref), len(hyp), sum(wrong)
        if kind == "chrf":
            return self.chrf_metric.sentence_score(" ".join(hyp), [" ".join(ref)]).score / 100.0
        if kind == "judge":
            met = [length >= 0.9 * n, errors == 0, errors <= 1, length >= n / 2, length > 0]
            return sum(met) / len(met)
        if kind == "math":
            return 1.0 if length == n and not wrong[-1] else 0.0
        raise ValueError(kind)


class Policy:
    """Per-position stop logits θ and wrong-word logits φ (positions 0..max_len-1)."""

    def __init__(self, max_len: int) -> None:
        import torch

        self.theta = torch.full((max_len,), math.log(0.04 / 0.96), requires_grad=True)
        self.phi = torch.full((max_len,), math.log(0.12 / 0.88), requires_grad=True)

    def parameters(self) -> list[Any]:
        return [self.theta, self.phi]

    def sample(self, n_words: list[int], gen: Any) -> tuple[Any, Any, Any]:
        """Stops (B,) lengths, wrong (B, T) bool, and the decision mask (B, T)."""
        import torch

        b, t = len(n_words), max(n_words)
        with torch.no_grad():
            stop = torch.rand(b, t, generator=gen) < torch.sigmoid(self.theta[:t])
            wrong = torch.rand(b, t, generator=gen) < torch.sigmoid(self.phi[:t])
        limit = torch.tensor(n_words)
        pos = torch.arange(t).expand(b, t)
        stop = stop & (pos < (limit - 1).unsqueeze(1))  # the last word of the reference always ends it
        first_stop = torch.where(stop, pos, torch.full_like(pos, t)).min(dim=1).values
        lengths = torch.minimum(first_stop + 1, limit)
        mask = pos < lengths.unsqueeze(1)
        return lengths, wrong & mask, mask

    def token_logps(self, lengths: Any, wrong: Any, mask: Any, n_words: list[int]) -> Any:
        """log π of each word's two decisions (continue/stop, right/wrong), (B, T)."""
        import torch
        import torch.nn.functional as F

        b, t = mask.shape
        pos = torch.arange(t).expand(b, t)
        theta, phi = self.theta[:t].expand(b, t), self.phi[:t].expand(b, t)
        is_last = pos == (lengths - 1).unsqueeze(1)
        forced_end = lengths.unsqueeze(1) == torch.tensor(n_words).unsqueeze(1)
        stop_lp = torch.where(is_last & ~forced_end, F.logsigmoid(theta), F.logsigmoid(-theta))
        stop_lp = torch.where(is_last & forced_end, torch.zeros_like(stop_lp), stop_lp)
        wrong_lp = torch.where(wrong, F.logsigmoid(phi), F.logsigmoid(-phi))
        return torch.where(mask, stop_lp + wrong_lp, torch.zeros_like(stop_lp))


def words(ref: list[str], length: int, wrong_row: list[bool], vocab: list[str], rng: random.Random) -> list[str]:
    return [rng.choice(vocab) if wrong_row[i] else ref[i] for i in range(length)]


def evaluate(policy: Policy, refs: list[list[str]], kind: str, task: Task, vocab: list[str], gen: Any, rng: random.Random) -> dict[str, float]:
    n_words = [len(r) for r in refs for _ in range(G)]
    lengths, wrong, _ = policy.sample(n_words, gen)
    rewards, ratios = [], []
    for i, n in enumerate(n_words):
        ref = refs[i // G]
        hyp = words(ref, int(lengths[i]), wrong[i].tolist(), vocab, rng)
        rewards.append(task.reward(kind, ref, hyp, wrong[i, : int(lengths[i])].tolist()))
        ratios.append(int(lengths[i]) / n)
    return {
        "reward": sum(rewards) / len(rewards),
        "length_ratio": sum(ratios) / len(ratios),
        "truncation_rate": sum(r < 0.5 for r in ratios) / len(ratios),
    }


def run(
    kind: str, advantage: str, ratio: str, clip_scale: str, rounds: int, seed: int, data: Any, *, lr: float = 0.05, minibatch: int = MINIBATCH, symmetric: bool = False
) -> dict[str, Any]:
    import torch

    from in2x_cli.core import grpo_loss

    train_refs, held_out, vocab = data
    task = Task()
    gen = torch.Generator().manual_seed(seed)
    eval_gen = torch.Generator().manual_seed(seed + 1)
    rng = random.Random(seed)
    policy = Policy(max(len(r) for r in train_refs + held_out))
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    curve = [evaluate(policy, held_out, kind, task, vocab, eval_gen, rng)]
    clip: dict[str, list[float]] = {"high": [], "dual": [], "low": [], "any": []}
    for r in range(rounds):
        picked = [train_refs[(r * PROMPTS_PER_ROUND + i) % len(train_refs)] for i in range(PROMPTS_PER_ROUND)]
        n_words = [len(ref) for ref in picked for _ in range(G)]
        lengths, wrong, mask = policy.sample(n_words, gen)
        rewards = []
        for i in range(len(n_words)):
            ref = picked[i // G]
            hyp = words(ref, int(lengths[i]), wrong[i].tolist(), vocab, rng)
            rewards.append(task.reward(kind, ref, hyp, wrong[i, : int(lengths[i])].tolist()))
        ref_lengths = torch.tensor([float(n) for n in n_words])
        adv = grpo_loss.advantages_for(advantage, torch.tensor(rewards), lengths.float(), G, reference_lengths=ref_lengths)
        with torch.no_grad():
            old = policy.token_logps(lengths, wrong, mask, n_words)
        per = minibatch * G
        for start in range(0, len(n_words), per):
            sl = slice(start, start + per)
            logps = policy.token_logps(lengths[sl], wrong[sl], mask[sl], n_words[sl])
            out = grpo_loss.tic_grpo_loss(logps, old[sl], adv[sl], mask[sl], ratio_level=ratio, epsilon_high=0.28, dual_clip=3.0, clip_scale=clip_scale,
                                          symmetric_clip=symmetric)  # fmt: skip
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            if start:  # the off-policy updates: where clipping can act
                for k in clip:
                    clip[k].append(out.stats.get(f"clip/{k}_fraction", 0.0))
        curve.append(evaluate(policy, held_out, kind, task, vocab, eval_gen, rng))
    tail = curve[-10:]
    last = {k: sum(c[k] for c in tail) / len(tail) for k in curve[0]}
    return {
        "reward": kind,
        "advantage": advantage,
        "ratio": ratio,
        "clip_scale": clip_scale + ("+symmetric" if symmetric else ""),
        "lr": lr,
        "updates_per_round": PROMPTS_PER_ROUND // minibatch,
        "held_out_reward_first": round(curve[0]["reward"], 4),
        "held_out_reward_last10": round(last["reward"], 4),
        "length_ratio_first": round(curve[0]["length_ratio"], 4),
        "length_ratio_last10": round(last["length_ratio"], 4),
        "truncation_rate_last10": round(last["truncation_rate"], 4),
        "clip_fraction": {k: round(sum(v) / max(1, len(v)), 4) for k, v in clip.items()},
        # the verdict: the policy learned to cut its answers short (length fell by 15 % or more)
        "truncation_rewarded": last["length_ratio"] < 0.85 * curve[0]["length_ratio"],
        "curve": [{k: round(v, 4) for k, v in c.items()} for c in curve],
    }


def one_group_example() -> dict[str, Any]:
    """The issue's case: one group, the perfect translation vs a 4-word truncation (chrF)."""
    import torch
    from sacrebleu.metrics import CHRF

    from in2x_cli.core import grpo_loss

    ref = "The committee approved the new budget for public schools after a long debate on Tuesday evening."
    hyps = {
        "perfect": ref,
        "truncated_4_words": "The committee approved the",
        "close": "The committee approved a new budget for schools after a long debate on Tuesday.",
        "paraphrase": "After a long debate, the committee passed the budget for public schools on Tuesday night.",
    }
    chrf = CHRF()
    rewards = torch.tensor([chrf.sentence_score(h, [ref]).score / 100 for h in hyps.values()], dtype=torch.float64)
    lengths = torch.tensor([float(len(h.split())) for h in hyps.values()], dtype=torch.float64)
    out: dict[str, Any] = {"reward": "chrf", "rewards": dict(zip(hyps, [round(float(x), 4) for x in rewards], strict=True)),
                           "lengths_words": dict(zip(hyps, [int(x) for x in lengths], strict=True)), "advantages": {}}  # fmt: skip
    for kind in ADVANTAGES:
        adv = grpo_loss.advantages_for(kind, rewards, lengths, len(hyps), reference_lengths=torch.full_like(lengths, lengths[0]))
        out["advantages"][kind] = dict(zip(hyps, [round(float(a), 3) for a in adv], strict=True))
    out["truncation_beats_perfect"] = {k: v["truncated_4_words"] > v["perfect"] for k, v in out["advantages"].items()}
    return out


def plot(results: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(REWARDS), figsize=(4.2 * len(REWARDS), 6.4), sharex=True)
    styles = dict(zip(ADVANTAGES, [("-", 3.0), ("-", 1.6), ("--", 1.6), (":", 1.6)], strict=True))
    for col, kind in enumerate(REWARDS):
        for res in results:
            if res["reward"] != kind or res["ratio"] != "trajectory" or res["clip_scale"] != "sqrt-length" or res["lr"] != 0.05:
                continue
            x = range(len(res["curve"]))
            ls, lw = styles[res["advantage"]]
            axes[0, col].plot(x, [c["reward"] for c in res["curve"]], label=res["advantage"], linestyle=ls, linewidth=lw)
            axes[1, col].plot(x, [c["length_ratio"] for c in res["curve"]], label=res["advantage"], linestyle=ls, linewidth=lw)
        axes[0, col].set_title(f"{kind}: held-out reward")
        axes[1, col].set_title(f"{kind}: completion length / reference")
        axes[1, col].set_xlabel("GRPO round")
        axes[1, col].set_ylim(0, 1.05)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("GRPO advantages on a synthetic translation policy (trajectory ratio, sqrt-length clip; overlapping lines are identical runs)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)


def tiny_model_runs(steps: int, seed: int) -> list[dict[str, Any]]:
    """``in2x grpo`` itself on the warmed-up tiny model (en→ja, translation_chrf; and math_exact):
    held-out reward and completion length before and after ``steps`` updates, per advantage kind."""
    import subprocess
    import sys
    import tempfile

    from in2x_cli.rewards import RewardSpec
    from in2x_cli.tiny import TinyConfig, build_tiny_model, load_corpus
    from in2x_cli.train.grpo import GRPORunConfig, run_grpo
    from in2x_cli.train.options import TrainOptions

    work = Path(tempfile.mkdtemp(prefix="in2x-grpo-ablation-"))
    warm = build_tiny_model(work / "warm", TinyConfig(seed=0, train_steps=300))
    par = load_corpus("parallel")
    # the demo's SFT step: 40 steps on en→ja translation chats, so the policy translates a little
    chats = [{"messages": [{"role": "user", "content": f"次の英語を日本語に翻訳してください。\n\n{r['en']}"}, {"role": "assistant", "content": r["ja"]}]}
             for r in par[:120]]  # fmt: skip
    (work / "chats.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chats), encoding="utf-8")
    model = work / "sft"
    subprocess.run([sys.executable, "-m", "in2x_cli", "-q", "sft", str(work / "chats.jsonl"), "-m", str(warm), "--max-steps", "40", "--lr", "1e-3",
                    "--max-length", "256", "--batch-size", "8", "--report-to", "none", "-o", str(model)], check=True)  # fmt: skip
    maths = [r for r in load_corpus("instructions") if r.get("answer")]
    sets = {
        "translation_chrf": ([{"src": r["en"], "ref": r["ja"], "src_lang": "en", "tgt_lang": "ja"} for r in par[120:184]],
                             [{"src": r["en"], "ref": r["ja"], "src_lang": "en", "tgt_lang": "ja"} for r in par[200:216]]),
        "math_exact": ([{"instruction": r["instruction"], "answer": r["answer"]} for r in maths[:-8]],
                       [{"instruction": r["instruction"], "answer": r["answer"]} for r in maths[-8:]]),
    }  # fmt: skip
    out = []
    for reward, (train_rows, held_rows) in sets.items():
        paths = []
        for name, rows in (("train", train_rows), ("held", held_rows)):
            path = work / f"{reward}-{name}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            paths.append(str(path))
        for advantage in ("length-corrected", "auto"):
            run_dir = work / f"{reward}-{advantage}"
            train = TrainOptions(output_dir=run_dir, max_steps=steps, learning_rate=1e-4, per_device_batch_size=4, seed=seed, report_to=("none",),
                                 logging_steps=1, save_steps=10**6)
            cfg = GRPORunConfig(model=str(model), prompts=paths[0], train=train, rewards=(RewardSpec(reward),), num_generations=4, rollout_batch=4,
                                minibatch=2, max_completion_tokens=24, advantage=advantage, eval_prompts=paths[1], eval_steps=max(1, steps // 4))  # fmt: skip
            run_grpo(cfg, provenance_command="bench/grpo_ablation.py --tiny-model")
            rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
            ev = [r for r in rows if "eval_reward" in r]
            out.append({"reward": reward, "advantage": advantage, "steps": steps,
                        "held_out": [{"step": r["step"], "reward": round(r["eval_reward"], 4), "length": round(r["eval_completions/mean_length"], 2)} for r in ev]})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=60, help="GRPO rounds per variant (each: 1 rollout batch, 2 updates)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default=str(REPO / "docs" / "img" / "grpo_ablation.png"))
    ap.add_argument("--json", help="also write the JSON to this file")
    ap.add_argument("--quick", action="store_true", help="trajectory ratio only, no clip-scale sweep (for tests)")
    ap.add_argument("--tiny-model", type=int, default=0, metavar="STEPS",
                    help="also run in2x grpo on the warmed-up tiny model for STEPS updates per variant (slow: minutes)")  # fmt: skip
    args = ap.parse_args()
    import torch

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    data = references()
    ratios = ("trajectory",) if args.quick else RATIOS
    results = [run(kind, adv, ratio, "sqrt-length", args.rounds, args.seed, data) for kind in REWARDS for adv in ADVANTAGES for ratio in ratios]
    if not args.quick:  # the clip scale matters off-policy: 4 updates per rollout batch, a larger step
        results += [run("chrf", "auto", "trajectory", scale, args.rounds, args.seed, data, lr=0.3, minibatch=1) for scale in CLIP_SCALES]
        results += [run("chrf", "auto", "trajectory", "sqrt-length", args.rounds, args.seed, data, lr=0.3, minibatch=1, symmetric=True)]
    plot(results, Path(args.png))
    tiny = tiny_model_runs(args.tiny_model, args.seed) if args.tiny_model else None
    summary = {f"{r['reward']}/{r['advantage']}/{r['ratio']}/{r['clip_scale']}/lr{r['lr']}": {k: v for k, v in r.items() if k != "curve"} for r in results}
    result = {
            "bench": "grpo_ablation",
            "what": "advantage x ratio x clip-scale on a synthetic word-by-word translation policy (core.grpo_loss)",
            "baseline": "group (GRPO) advantage",
            "rounds": args.rounds,
            "example": one_group_example(),
            "truncation_rewarded": sorted(k for k, r in summary.items() if r["truncation_rewarded"]),
            # per variant: held-out reward after / before, and length after / before (the ratios to read)
            "ratios": {k: {"reward_gain": round(r["held_out_reward_last10"] / max(r["held_out_reward_first"], 1e-9), 3),
                           "length_kept": round(r["length_ratio_last10"] / max(r["length_ratio_first"], 1e-9), 3)} for k, r in summary.items()},  # fmt: skip
            "variants": summary,
            **({"tiny_model": tiny} if tiny else {}),
            "png": args.png,
            "seconds": round(time.perf_counter() - t0, 1),
        }  # fmt: skip
    emit(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
