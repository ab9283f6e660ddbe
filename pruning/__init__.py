"""PruneScope's backend: models, pruning methods, measurement, runs and executors."""
