"""``in2x eval``: ``run.py`` (``run_eval``, the scoring stage read top to bottom), ``config.py``,
``inputs.py`` (test sets from JSONL rows, text files or WMT24), ``scoring.py``, ``tables.py``
(stderr tables), and ``autorank.py`` (``run_autorank``: ``in2x eval autorank``). The metrics,
significance tests and AutoRank are pure functions in ``in2x_cli/core/{metrics,significance,
autorank}.py``; the documents read back are checked in ``io/documents.py``."""
