"""``in2x eval``: scoring and AutoRank."""
