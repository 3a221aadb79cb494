"""Training glue around the engines (TRL / transformers Trainer, accelerate): read top to bottom.

The stages: ``cpt.py``, ``sft.py``, ``grpo.py`` (``run_cpt`` / ``run_sft`` / ``run_grpo``), fed by
``data.py`` (mixtures, packing, chat masks, epoch plans) and ``ppl.py`` (cpt's perplexity filter).
What the three share, one concern per module:

- ``options.py``: ``TrainOptions`` (the shared knobs) → ``TrainingArguments`` keywords;
- ``rundir.py``: the run directory (create, check, newest complete checkpoint, metrics.jsonl);
- ``devices.py``: device and precision; ``flops.py``: FLOPs per token and MFU;
- ``callbacks.py``: metrics.jsonl, the progress bar and the graceful stop;
- ``loop.py``: ``run_training`` (SIGTERM/SIGINT → checkpoint at the step boundary, exact resume);
- ``export.py``: the final HF model directory (and a merged LoRA adapter);
- ``launch.py``: re-running a command under ``accelerate launch`` / ``torchrun``.

How a stage uses them::

    check_output_dir(opts.output_dir, resume=opts.resume, overwrite=opts.overwrite)   # fail fast
    ... read and validate the data ...
    resume_from = prepare_output_dir(opts.output_dir, resume=opts.resume, overwrite=opts.overwrite)
    seed_everything(opts.seed)
    args = SFTConfig(**common_training_args(opts), ...)
    trainer = SFTTrainer(...)
    install_callbacks(trainer, opts.output_dir, flops_per_token_value=flops_per_token(model, seq_len))
    run_training(trainer, resume_from)
    save_final_model(trainer, opts.output_dir, tokenizer=tok, provenance=...)

Heavy imports (torch, transformers, trl) happen inside functions (``grpo.py`` excepted: only the
stage imports it); importing the shared modules is cheap.
"""
