"""``in2x translate``: the stage."""
