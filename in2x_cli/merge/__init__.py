"""``in2x merge`` glue: recipe (config.py), streaming executor (executor.py), calibration
statistics (stats.py) and the stage runner (run.py). The methods themselves are pure functions
in ``in2x_cli/core/merge.py``."""
