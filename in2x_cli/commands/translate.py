"""``in2x translate``: document translation with paragraph fallback, MBR decoding and ensembles."""

from __future__ import annotations

from pathlib import Path

import typer

from in2x_cli.commands.common import backend_option, seed_option, trust_remote_code_option
from in2x_cli.core.metrics import DEFAULT_COMET_MODEL


def translate(
    input: str = typer.Argument("-", help="JSONL rows (src or src_text, src_lang, tgt_lang; other fields pass through) or plain text; '-' = stdin."),
    model: list[str] | None = typer.Option(None, "--model", "-m", metavar="MODEL", help="Model directory or hub id; repeat to ensemble (candidates are pooled for MBR, one model loaded at a time)."),
    output: str = typer.Option("-", "--output", "-o", help="Output JSONL ('-' = stdout): input fields + hyp (+ hyp_paragraphs for documents)."),
    src_lang: str | None = typer.Option(None, "--src-lang", help="Source language (en, ja, ja_JP, zh_CN…) for plain text, or for rows without src_lang."),
    tgt_lang: str | None = typer.Option(None, "--tgt-lang", help="Target language, likewise."),
    input_format: str = typer.Option("auto", "--input-format", help="auto (JSONL if the first line is an object), jsonl or text."),
    text_unit: str = typer.Option("line", "--text-unit", help="Plain text: 'line' (one row per line) or 'document' (the whole text is one document, paragraphs split by blank lines)."),
    wmt24: Path | None = typer.Option(None, "--wmt24", help="Translate a WMT24 pair directory (e.g. ../shared/data/wmt24/en-ja) as documents, canary line excluded, instead of INPUT."),
    segments_out: Path | None = typer.Option(None, "--segments-out", help="With --wmt24: also write one line per WMT24 source line (canary copied), aligned with system-outputs/*.txt for scoring."),
    prepare: bool = typer.Option(False, "--prepare", help="Write the rows that would be translated (e.g. WMT24 documents with segment_ids) and stop; no model is loaded."),
    granularity: str = typer.Option("document", "--granularity", help="document (whole documents; paragraph-by-paragraph fallback when the paragraph count does not match), paragraph, or sentence."),
    prompt_file: Path | None = typer.Option(None, "--prompt-file", help="Replace the built-in prompts: a template with {src} (and {src_name}, {tgt_name}, {paragraphs}, {structure}…), or a .json object of templates keyed 'en-ja', 'ja' or '*' (docs/translate.md)."),
    system: str | None = typer.Option(None, "--system", help="A system message for every request (none by default)."),
    mbr: int = typer.Option(0, "--mbr", help="Sample N candidates per request besides the greedy one and pick by Minimum Bayes Risk (0 = greedy only)."),
    mbr_utility: str = typer.Option("chrf", "--mbr-utility", help="MBR utility: chrf (sacreBLEU sentence chrF), bleu, comet (COMET environment), or module:function."),
    mbr_output: str = typer.Option("best", "--mbr-output", help="best (hyp only) or all (also an 'mbr' field with every candidate and its expected utility)."),
    comet_model: str = typer.Option(DEFAULT_COMET_MODEL, "--comet-model", help="COMET checkpoint for --mbr-utility comet (hub id or local directory)."),
    mbr_method: str = typer.Option("mbr", "--mbr-method", help="How --mbr picks: mbr (plain MBR), pruned (confidence-based pruning, Cheng & Vlachos 2023), qe (rerank by --qe-model, CometKiwi), model (model-based MBR: pseudo-references weighted by the model's probability, Jinnai et al. 2024). docs/translate.md."),
    mbr_alpha: float = typer.Option(0.99, "--mbr-alpha", help="pruned: confidence threshold α (hypotheses whose bootstrap win rate is <= 1-α are pruned; 0.99 as the paper)."),
    mbr_first_refs: int = typer.Option(8, "--mbr-first-refs", help="pruned: pseudo-references of the first step, doubled at each step (8 as mbrs)."),
    qe_model: str = typer.Option("Unbabel/wmt22-cometkiwi-da", "--qe-model", help="qe: a reference-free COMET checkpoint (hub id or local directory) run by the COMET worker."),
    fuse: str | None = typer.Option(None, "--fuse", metavar="MODEL", help="Candidate fusion: a model that reads the source and the numbered candidates (greedy + --mbr samples of every --model) and writes one refined translation; logged per row in 'fusion'. docs/translate.md."),
    fuse_prompt_file: Path | None = typer.Option(None, "--fuse-prompt-file", help="Replace the fusion prompt: a template with {src} and {candidates} (and {n}, {src_name}, {tgt_name}, {structure}…). Default: 'Below is a {src_name} source text and {n} candidate translations of it into {tgt_name}. Write one refined {tgt_name} translation that keeps the best of the candidates and corrects their errors (meaning, terminology, fluency). {structure}Only output the refined translation.' + source + candidates (ours)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature for MBR samples (the paper is silent; 1.0 with top-p 0.9 is the MBR literature's nucleus setting)."),
    top_p: float = typer.Option(0.9, "--top-p", help="Nucleus mass for MBR samples."),
    max_tokens: int = typer.Option(0, "--max-tokens", help="Output tokens per request; 0 = auto (2 × source tokens + 64, within the context)."),
    backend: str = backend_option("auto"),
    batch_size: int = typer.Option(16, "--batch-size", help="Sequences per forward pass (transformers backend; vLLM schedules itself)."),
    max_model_len: int | None = typer.Option(None, "--max-model-len", help="Context length to assume (default: the model's); longer documents are split at paragraph boundaries."),
    tensor_parallel_size: int = typer.Option(1, "--tensor-parallel-size", help="vLLM: GPUs per model replica."),
    gpu_memory_utilization: float = typer.Option(0.9, "--gpu-memory-utilization", help="vLLM: fraction of GPU memory to use."),
    dtype: str = typer.Option("auto", "--dtype", help="Model dtype: auto (bf16 on GPU, fp32 on CPU), bfloat16, float16, float32."),
    trust_remote_code: bool = trust_remote_code_option(),
    chunk_rows: int = typer.Option(256, "--chunk-rows", help="Rows per generation round (all prompts of a round go to the backend at once); output is written after each round. 0 = one round."),
    shard: str | None = typer.Option(None, "--shard", help="i/n: process every n-th row starting at row i (0-based), for data-parallel processes on several GPUs."),
    resume: bool = typer.Option(False, "--resume", help="Resumable run: keeps OUTPUT.partial when interrupted and continues it when rerun with the same arguments (rows already written are skipped, never duplicated; the result equals an uninterrupted run)."),
    seed: int = seed_option(),
) -> None:
    """Translate documents zero-shot, WMT25-style: whole documents first, paragraph-by-paragraph
    where the output's paragraphs do not align with the source, optional MBR over sampled
    candidates from one or several models. A JSON summary (fallback rate, tokens/s) goes to
    stderr and into OUTPUT.meta.json. The prompt templates per direction, the --prompt-file
    format, the output-cleaning rules (with examples), the alignment rule and MBR are
    documented in docs/translate.md.

    Example: echo '{"id":"d1","src_text":"Hello.\\n\\nHow are you?","src_lang":"en","tgt_lang":"ja_JP"}' | in2x translate -m runs/tiny - | jq -r .hyp

    Example: in2x translate docs.jsonl -m runs/sft -m runs/grpo --mbr 4 --fuse runs/fuser -o fused.jsonl

    Example: in2x translate --wmt24 ../shared/data/wmt24/en-ja -m Qwen/Qwen2.5-7B-Instruct --mbr 8 -o en-ja.jsonl --segments-out en-ja.In2x.txt
    """
    from in2x_cli.translate.config import TranslateConfig, TranslateRun
    from in2x_cli.translate.run import run_translate

    backend_options = {"batch_size": batch_size, "max_model_len": max_model_len, "tensor_parallel_size": tensor_parallel_size,
                       "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype, "trust_remote_code": trust_remote_code}
    config = TranslateConfig(
        models=tuple(model or ()), backend=backend, granularity=granularity, system=system, mbr=mbr, mbr_utility=mbr_utility,
        mbr_output=mbr_output, comet_model=comet_model, mbr_method=mbr_method, mbr_alpha=mbr_alpha, mbr_first_refs=mbr_first_refs,
        qe_model=qe_model, fuse=fuse, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
        chunk_rows=chunk_rows, backend_options=backend_options,
    )
    run_translate(TranslateRun(
        config=config, input=input, output=output, src_lang=src_lang, tgt_lang=tgt_lang, input_format=input_format,
        text_unit=text_unit, wmt24=wmt24, segments_out=segments_out, prepare=prepare, prompt_file=prompt_file, fuse_prompt_file=fuse_prompt_file, shard=shard,
        resume=resume,
    ))


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)
