"""``in2x translate``: document translation with paragraph fallback, MBR decoding and ensembles."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from in2x_cli import console
from in2x_cli.commands.common import backend_option, seed_option, trust_remote_code_option
from in2x_cli.core.metrics import DEFAULT_COMET_MODEL
from in2x_cli.errors import UserError


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

    Example: in2x translate --wmt24 ../shared/data/wmt24/en-ja -m Qwen/Qwen2.5-7B-Instruct --mbr 8 -o en-ja.jsonl --segments-out en-ja.In2x.txt
    """
    import contextlib

    from in2x_cli import provenance
    from in2x_cli.io import JsonlWriter, check_output_path, write_text
    from in2x_cli.records import row_key
    from in2x_cli.translate.run import (
        GRANULARITIES,
        TranslateConfig,
        TranslateStats,
        load_jobs,
        segment_lines,
        translate_jobs,
        wmt24_jobs,
    )
    from in2x_cli.translate.run import (
        shard as take_shard,
    )

    _check_choice("--granularity", granularity, GRANULARITIES)
    _check_choice("--mbr-output", mbr_output, ("best", "all"))
    _check_choice("--input-format", input_format, ("auto", "jsonl", "text"))
    _check_choice("--text-unit", text_unit, ("line", "document"))
    if mbr < 0 or max_tokens < 0 or chunk_rows < 0 or batch_size < 1:
        raise UserError("--mbr, --max-tokens and --chunk-rows must be >= 0 and --batch-size >= 1")
    if not 0 < top_p <= 1 or temperature <= 0:
        raise UserError("--top-p must be in (0, 1] and --temperature > 0")
    if segments_out is not None and (wmt24 is None or shard):
        raise UserError("--segments-out needs --wmt24 and a complete (unsharded) run")
    if resume and output == "-":
        raise UserError("--resume needs --output FILE")
    models = tuple(model or ())
    if not models and not prepare:
        raise UserError("give a model with --model (repeat it to ensemble)")
    templates = _load_templates(prompt_file)
    utility_name = mbr_utility
    _check_utility(utility_name, comet_model)
    check_output_path(output)
    if segments_out is not None:
        check_output_path(segments_out)

    with contextlib.ExitStack() as stack:  # the stdin spool of a streamed input is removed at the end
        ws = None
        if wmt24 is not None:
            jobs, ws = wmt24_jobs(str(wmt24))
        else:  # validated now, streamed later (a JobSource keeps the rows' keys, not the rows)
            jobs = stack.enter_context(load_jobs(input, src_lang=src_lang, tgt_lang=tgt_lang, input_format=input_format, text_unit=text_unit))
        jobs = take_shard(jobs, shard)
        keys = jobs.keys if hasattr(jobs, "keys") else [j.key for j in jobs]
        cfg = TranslateConfig(
            models=models, backend=backend, granularity=granularity, system=system, templates=templates, mbr=mbr,
            mbr_utility=utility_name, mbr_output=mbr_output, comet_model=comet_model, temperature=temperature, top_p=top_p,
            max_tokens=max_tokens, seed=seed, chunk_rows=chunk_rows,
            backend_options={"batch_size": batch_size, "max_model_len": max_model_len, "tensor_parallel_size": tensor_parallel_size,
                             "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype, "trust_remote_code": trust_remote_code},
        )
        stats = TranslateStats()
        inputs = [str(ws.file(".txt")), str(ws.file(".docs"))] if ws is not None else [input]
        meta = lambda: provenance.collect(command="translate", config=cfg, inputs=inputs, seed=seed, extra={"translate": stats.to_dict()})  # noqa: E731
        with JsonlWriter(output, meta=meta, resume=resume) as writer:
            if prepare:
                writer.write_many(j.row for j in jobs)
                return
            done: set[str] = set()
            kept: list[dict] = []  # only for --segments-out (a WMT24 set)
            known = set(keys)
            for pos, row in enumerate(writer.existing()):
                key = row_key(row, -1)
                if key == "row:-1":  # rows without ids resume by position
                    key = keys[pos] if pos < len(keys) else key
                if key not in known:
                    raise UserError(f"--resume: the partial output has a row ({key}) that is not in this input", f"{output}.partial:{pos + 1}")
                done.add(key)
                if segments_out is not None:
                    kept.append(row)
            todo = (j for j in jobs if j.key not in done)
            if done:
                console.info(f"translate: resuming, {len(done)} rows already written, {len(keys) - len(done)} to go")
            for row in translate_jobs(todo, cfg, stats, total=len(keys) - len(done)):
                writer.write(row)
                if segments_out is not None:
                    kept.append(row)
        summary = {**stats.to_dict(), "rows_resumed": len(done)}
        console.info("translate: " + json.dumps(summary, ensure_ascii=False))
        if segments_out is not None and ws is not None:
            write_text(segments_out, segment_lines(ws, kept))


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def _check_utility(name: str, comet_model: str) -> None:
    from in2x_cli.core.mbr import get_utility

    if name == "comet":
        from in2x_cli.comet import comet_python

        comet_python()  # fail now, not after generating every candidate
        return
    try:
        get_utility(name, comet_model=comet_model)
    except KeyError as exc:
        raise UserError(str(exc.args[0]), "--mbr-utility") from None


def _load_templates(path: Path | None) -> dict[str, str]:
    from in2x_cli.core.translate import TEMPLATES, validate_template
    from in2x_cli.io.text import read_text_lines

    if path is None:
        return dict(TEMPLATES)
    where = str(path)
    if path.suffix == ".json":
        from in2x_cli.io.jsonl import read_json

        data = read_json(path)
        if not isinstance(data, dict) or not data or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise UserError("a .json prompt file must be an object of key → template strings ('en-ja', 'ja' or '*')", where)
        templates = {_template_key(k, where): v for k, v in data.items()}
    else:
        templates = {"*": "\n".join(read_text_lines(path)).strip("\n")}
    for key, tpl in templates.items():
        problem = validate_template(tpl)
        if problem:
            raise UserError(f"{problem} (template {key!r})", where)
    return templates


def _template_key(key: str, where: str) -> str:
    from in2x_cli.langs import normalize_lang

    if key == "*":
        return key
    parts = key.split("-")
    if len(parts) > 2:
        raise UserError(f"prompt key {key!r} must be '*', a target language or 'src-tgt'", where)
    return "-".join(normalize_lang(p, where=where) for p in parts)


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)
