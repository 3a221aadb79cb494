"""``in2x sample-difficulty``: grade missing difficulty levels, then draw a difficulty- and
language-balanced sample. ``run.py`` is the stage; ``pool.py`` reads the rows, ``grade.py`` drives
the judge / pass@k backends, ``report.py`` says what happened. The algorithms are
``core/sampling.py`` (quotas, shortfall, draw order) and ``core/difficulty.py`` (judge prompt,
verdict check, pass@k cut-offs)."""
