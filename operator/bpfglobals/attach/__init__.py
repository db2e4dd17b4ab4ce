"""attach layer."""
