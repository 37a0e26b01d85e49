"""engine/spec."""
