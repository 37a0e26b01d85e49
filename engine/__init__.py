"""The pipeline engine: templating, graph, hashing and cache, lock file, runner."""
