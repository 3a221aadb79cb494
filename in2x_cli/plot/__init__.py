"""``in2x plot``: ``run.py`` (``run_plot``), ``artefacts.py`` (what a run directory holds to draw),
``render.py`` (matplotlib figures). The documents it reads are checked in ``io/documents.py``."""
