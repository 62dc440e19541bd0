"""Experiments: one file each, `get_config()` + `main()`, run as `python -m experiments.NAME`."""
