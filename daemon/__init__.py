"""The queue daemon."""
