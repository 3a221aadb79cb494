"""``in2x plot``: pictures of a run directory."""
