"""loader layer."""
