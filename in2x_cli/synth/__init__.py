"""``in2x synthesize``: ``run.py`` is the stage (``run_synth``: files, backends, reporting);
``config.py`` the options resolved into a checked ``SynthConfig``; ``schedule.py`` which
candidates run in which blocks, and resume; ``pipeline.py`` the steps around the backend for one
block; ``ids.py`` the row ids. Imports go one way: run → schedule → pipeline → ids/config."""
