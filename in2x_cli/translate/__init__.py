"""``in2x translate``: ``run.py`` (``run_translate``, the stage read top to bottom), ``config.py``
(settings, option checks, counters), ``jobs.py`` (inputs → jobs, WMT24 segment lines),
``prompting.py`` (templates, requests sized for the context), ``generate.py`` (backends, seeds,
candidates), ``select.py`` (alignment, MBR, output rows). The algorithms are pure functions in
``in2x_cli/core/translate.py`` and ``core/mbr.py``."""
