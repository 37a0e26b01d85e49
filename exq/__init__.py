"""exq: run many ML experiments on your own machines, on DVC-format pipelines."""

__version__ = "0.1.0"
