"""Live metrics logger for training scripts; standard library only."""
