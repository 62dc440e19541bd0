"""The command line every experiment shares: `--config` (with overrides), `--workdir`, `--export`.

    python -m experiments.NAME --workdir=DIR [--config=experiments/NAME.py:VARIANT]
        [--config.KEY=VALUE ...] [--export=DIR]
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Callable


def run(experiment_file: str, train_and_evaluate: Callable, export: Callable | None = None,
        default_workdir: str | None = None) -> None:
  """Parses the flags and runs `train_and_evaluate(config, workdir)`, then `export` if asked.

  `export(config, workdir, destination, command)` gets the command line that ran, for the
  model card.
  """
  from absl import app, flags, logging
  from ml_collections import config_flags

  name = Path(experiment_file).stem
  config_flags.DEFINE_config_file("config", experiment_file, f"the {name} config")
  flags.DEFINE_string("workdir", default_workdir, "checkpoints, metrics and results go here",
                      required=default_workdir is None)
  if export is not None:
    flags.DEFINE_string("export", None, "write the trained model(s) here")

  def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config, workdir = flags.FLAGS.config, flags.FLAGS.workdir
    train_and_evaluate(config, workdir)
    if export is not None and flags.FLAGS.export:
      export(config, workdir, flags.FLAGS.export,
             f"python -m experiments.{name} " + shlex.join(sys.argv[1:]))
      print(f"exported to {flags.FLAGS.export}")

  app.run(main)
