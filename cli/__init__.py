"""The exq command line."""
