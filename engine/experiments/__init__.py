"""engine/experiments."""
