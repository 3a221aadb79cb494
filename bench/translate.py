"""``in2x translate`` throughput: batched vs one request at a time, and the cost of --mbr 8.

Same inputs (segments of the bundled en→ja corpus, mixed lengths), same tiny model, same
translate stage (``translate_jobs``, paragraph granularity, fixed --max-tokens so both runs
generate the same number of tokens per request):

- baseline: the transformers backend with batch_size=1 (a loop over requests);
- batched: batch_size=32, length-sorted by the backend, all prompts of the round in one call;
- MBR: --mbr 8 (greedy + 8 samples per request, chrF selection) vs greedy, both batched.

Rates use generation time inside the backend; the MBR cost ratio is given both for generation
and for the whole stage (planning, cleaning, chrF selection; model loading excluded).

The MBR wall ratio splits into (generated tokens ratio) × (cost per token ratio), both in
``mbr_breakdown``: --max-tokens is only a cap, so greedy decoding could stop at EOS early while
samples run on (tokens per completion show it), and a sampled token may cost more than a greedy
one (softmax, top-p sort and one multinomial draw per row, against one batched argmax). With equal
tokens and per-token cost, greedy + N samples costs (1 + N)x.

MBR family (``mbr_methods``; ``--family-only`` runs just this part): the same pools (same seeds,
so every method sees the same candidates) selected by each ``--mbr-method`` — mbr, pruned, model,
and qe when the COMET environment exists (a tiny random reference-free checkpoint built offline:
its QE "quality" is noise, only the cost is meaningful) — with selection time, utility evaluations
and corpus chrF / BLEU of the selected translations against the corpus references, each as a
ratio to plain MBR measured in the same run. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import emit, tiny_model

from in2x_cli.tiny import load_corpus
from in2x_cli.translate.config import TranslateConfig, TranslateStats
from in2x_cli.translate.jobs import load_jobs
from in2x_cli.translate.run import translate_jobs


def run(model: Path, inp: Path, *, batch_size: int, mbr: int, max_tokens: int, **options: object) -> dict:
    cfg = TranslateConfig(
        models=(str(model),),
        backend="transformers",
        granularity="paragraph",
        mbr=mbr,
        max_tokens=max_tokens,
        seed=0,
        chunk_rows=0,
        backend_options={"batch_size": batch_size},
        **options,  # type: ignore[arg-type]
    )
    jobs = load_jobs(str(inp), src_lang=None, tgt_lang=None)
    stats = TranslateStats()
    rows = list(translate_jobs(jobs, cfg, stats))
    return {"rows": len(rows), "stats": stats, "stage_seconds": stats.seconds - stats.load_seconds, "hyps": [r["hyp"] for r in rows]}


def mbr_family(model: Path, inp: Path, refs: list[str], *, batch_size: int, mbr: int, max_tokens: int, utility: str) -> dict:
    """Each --mbr-method on the same candidate pools: selection cost and quality, ratios to plain MBR."""
    from sacrebleu.metrics import BLEU, CHRF

    from in2x_cli.comet import build_tiny_checkpoint, comet_available

    methods: dict[str, dict] = {"mbr": {}, "pruned": {"mbr_first_refs": max(2, (mbr + 1) // 4)}, "model": {}}
    skipped = {}
    utility_options: dict[str, str] = {}
    if utility == "comet":  # offline: the tiny random checkpoint (cost only; its scores are noise)
        if not comet_available():
            return {"utility": utility, "skipped": "no COMET environment"}
        tiny = Path(tempfile.mkdtemp(prefix="in2x-bench-comet-"))
        build_tiny_checkpoint(tiny)
        utility_options["comet_model"] = str(tiny)
    if comet_available():
        kiwi = Path(tempfile.mkdtemp(prefix="in2x-bench-kiwi-"))
        build_tiny_checkpoint(kiwi, referenceless=True)
        methods["qe"] = {"qe_model": str(kiwi)}
    else:
        skipped["qe"] = "no COMET environment"
    # Start the COMET workers before timing (get_client keeps them): start-up is not selection cost.
    from in2x_cli.comet import get_client

    for ckpt in [utility_options.get("comet_model"), methods.get("qe", {}).get("qe_model")]:
        if ckpt:
            get_client(ckpt).score([{"src": "a", "mt": "b", "ref": "c"}])
    if utility in ("chrf", "bleu"):  # build the sacreBLEU metric (MeCab for ja BLEU) before timing, too
        from in2x_cli.core.mbr import get_utility

        get_utility(utility)(["a"], ["b"], ["c"], "ja")
    out: dict[str, dict] = {}
    for name, extra in methods.items():
        r = run(model, inp, batch_size=batch_size, mbr=mbr, max_tokens=max_tokens, mbr_method=name, mbr_utility=utility, **utility_options, **extra)
        s = r["stats"]
        out[name] = {
            "select_seconds": round(s.select_seconds, 3),
            "utility_evaluations": s.utility_evaluations,
            "chrf": round(CHRF().corpus_score(r["hyps"], [refs]).score, 2),
            "bleu": round(BLEU(tokenize="ja-mecab").corpus_score(r["hyps"], [refs]).score, 2),
            **({"options": extra} if extra and name != "qe" else {}),
        }
    base = out["mbr"]
    for m in out.values():
        m["select_time_ratio_vs_mbr"] = round(m["select_seconds"] / base["select_seconds"], 3) if base["select_seconds"] else None
        m["evaluations_ratio_vs_mbr"] = round(m["utility_evaluations"] / base["utility_evaluations"], 3) if base["utility_evaluations"] else None
        m["chrf_minus_mbr"] = round(m["chrf"] - base["chrf"], 2)
    return {"utility": utility, "candidates_per_segment": mbr + 1, "methods": out, "skipped": skipped,
            "note": "tiny model: translations are poor and differences small; the point is cost per method on identical pools"}


def main() -> None:
    ap = argparse.ArgumentParser()
    # 128 segments x 48 tokens: a 1-3 sentence segment's translation is that long, and the batched run
    # then takes tenths of a second, not the few milliseconds that made the ratio swing 3-16x between runs
    ap.add_argument("--segments", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--mbr", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--utility", default="chrf", help="MBR utility for the family comparison: chrf, bleu or comet (a tiny offline checkpoint)")
    ap.add_argument("--family-only", action="store_true", help="only the MBR-family comparison")
    args = ap.parse_args()

    model = tiny_model()
    corpus = load_corpus("parallel")
    tmp = Path(tempfile.mkdtemp(prefix="in2x-bench-translate-"))
    inp = tmp / "in.jsonl"
    with open(inp, "w", encoding="utf-8") as fh:
        for i in range(args.segments):
            src = " ".join(corpus[(i + k) % len(corpus)]["en"] for k in range(1 + i % 3))  # 1–3 sentences
            fh.write(json.dumps({"id": i, "src": src, "src_lang": "en", "tgt_lang": "ja"}, ensure_ascii=False) + "\n")
    refs = ["".join(corpus[(i + k) % len(corpus)]["ja"] for k in range(1 + i % 3)) for i in range(args.segments)]

    family = mbr_family(model, inp, refs, batch_size=args.batch_size, mbr=args.mbr, max_tokens=args.max_tokens, utility=args.utility)
    if args.family_only:
        emit({"bench": "translate", "what": "MBR family on identical candidate pools (tiny model, en→ja)", "baseline": "plain MBR, same run",
              "segments": args.segments, "max_tokens": args.max_tokens, "mbr_family": family})
        return

    run(model, inp, batch_size=args.batch_size, mbr=0, max_tokens=4)  # warm-up (imports, allocator)
    # Interleaved repeats, best of each: the machine is shared, so take the least-disturbed run.
    greedy_runs, mbr_runs, single_runs = [], [], []
    for _ in range(args.repeats):
        single_runs.append(run(model, inp, batch_size=1, mbr=0, max_tokens=args.max_tokens))
        greedy_runs.append(run(model, inp, batch_size=args.batch_size, mbr=0, max_tokens=args.max_tokens))
        mbr_runs.append(run(model, inp, batch_size=args.batch_size, mbr=args.mbr, max_tokens=args.max_tokens))
    single = min(single_runs, key=lambda r: r["stats"].generate_seconds)
    batched = min(greedy_runs, key=lambda r: r["stats"].generate_seconds)
    mbr = min(mbr_runs, key=lambda r: r["stats"].generate_seconds)

    def rates(r: dict) -> dict:
        s = r["stats"]
        return {
            "generate_seconds": round(s.generate_seconds, 3),
            "segments_per_s": round(r["rows"] / s.generate_seconds, 2),
            "tokens_per_s": round(s.generated_tokens / s.generate_seconds, 1),
            "generated_tokens": s.generated_tokens,
            "completions": s.candidates,
            "tokens_per_completion": round(s.generated_tokens / s.candidates, 2),
        }

    g, m = batched["stats"], mbr["stats"]
    greedy_cost = g.generate_seconds / g.generated_tokens  # seconds per generated token
    sampled_tokens = m.generated_tokens - g.generated_tokens  # the MBR run's greedy pass equals the greedy run
    sampled_seconds = m.generate_seconds - g.generate_seconds
    mbr_breakdown = {
        "wall_ratio": round(m.generate_seconds / g.generate_seconds, 2),
        "token_ratio": round(m.generated_tokens / g.generated_tokens, 2),
        "per_token_cost_ratio": round((m.generate_seconds / m.generated_tokens) / greedy_cost, 2),
        "sampled_per_token_cost_ratio": round((sampled_seconds / sampled_tokens) / greedy_cost, 2) if sampled_tokens > 0 else None,
        "greedy_tokens_per_completion": round(g.generated_tokens / g.candidates, 2),
        "sample_tokens_per_completion": round(sampled_tokens / (m.candidates - g.candidates), 2) if m.candidates > g.candidates else None,
        "max_tokens": args.max_tokens,
        "note": "wall_ratio = token_ratio × per_token_cost_ratio; 1 + N candidates would cost (1 + N)x at equal tokens and per-token cost",
    }

    emit(
        {
            "bench": "translate",
            "what": "in2x translate stage (paragraph granularity) on the tiny Qwen2 model, en→ja segments",
            "baseline": "same stage, transformers backend with batch_size=1 (one request at a time)",
            "segments": args.segments,
            "max_tokens": args.max_tokens,
            "batched": {"batch_size": args.batch_size, **rates(batched)},
            "one_at_a_time": {"batch_size": 1, **rates(single)},
            "batching_speedup": round(single["stats"].generate_seconds / batched["stats"].generate_seconds, 2),
            "mbr": {
                "n_samples": args.mbr,
                "candidates_per_segment": args.mbr + 1,
                **rates(mbr),
                "stage_seconds": round(mbr["stage_seconds"], 3),
            },
            "greedy_stage_seconds": round(batched["stage_seconds"], 3),
            "mbr_generation_cost_ratio": round(mbr["stats"].generate_seconds / batched["stats"].generate_seconds, 2),
            "mbr_stage_cost_ratio": round(mbr["stage_seconds"] / batched["stage_seconds"], 2),
            "mbr_breakdown": mbr_breakdown,
            "mbr_family": family,
            "goal": "batching_speedup >= 4; MBR costs (1 + N)x greedy at equal tokens and per-token cost (every sample is decoded; vLLM "
                    "shares the prompt prefill across the n samples); mbr_breakdown says how far each factor is from that",
        }
    )


if __name__ == "__main__":
    main()
