"""``in2x synthesize`` glue: ``schedule`` (which candidates, blocks, resume), ``pipeline`` (the
stages around the backend), ``run`` (files, backends, reporting)."""
