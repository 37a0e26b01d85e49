"""engine/plots."""
