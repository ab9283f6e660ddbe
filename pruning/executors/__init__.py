"""Executors run specs wherever TensorFlow lives: base (the protocol, make_executor), inline, worker, ray_actors.

Shared by them: jobs (Job, labels), errors (and their codec), operations (the table), wire; sweeps are assembled by pruning.sweep_rows.SweepRows.
"""
