"""in2x: the In2x WMT25 recipe (arXiv 2508.14472) as composable Unix-style commands."""

__version__ = "0.1.0"
