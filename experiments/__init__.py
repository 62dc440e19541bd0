"""Experiments: one module per experiment, `python -m experiments.NAME`."""
