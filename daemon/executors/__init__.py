"""daemon/executors."""
