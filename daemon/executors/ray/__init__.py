"""daemon/executors/ray."""
