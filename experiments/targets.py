"""The target bank (DESIGN.md §2): every class's target spectrum, from a dataset's clean
reference clips — its real recordings where a class has them, its renders where not.

    python -m experiments.targets --workdir=workdirs/targets --export=workdirs/export
    python -m experiments.targets --workdir=workdirs/targets_medium \
        --config.data_dir=data/medium4 --config.data_size=medium

`experiments.classifier` builds the same bank after training; this rebuilds it alone. Writes
`targets.npz` and `targets.png` (blue: from real recordings) to the workdir; `--export=DIR`
copies them to `DIR/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jax
import ml_collections

from data_prep import dataset
from jaxeq import plots
from jaxeq.classes import CLASSES
from jaxeq.targets import TargetBank, bank_from_spectra


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.data_dir = "data/default"
  config.data_size = "default"  # what to render into data_dir when it holds no dataset
  config.data_seed = 0
  if variant == "smoke":
    config.data_dir, config.data_size = "data/smoke", "smoke"
  elif variant:
    raise ValueError(f"unknown config variant {variant!r}; expected '' or 'smoke'")
  return config


def reference_bank(train: dataset.Split, data_dir) -> TargetBank:
  """The bank of a dataset's clean reference clips (`train` is its training split)."""
  reference = train.reference
  return bank_from_spectra(
      CLASSES, train.labels[reference], train.spectra[reference],
      {"source": f"reference clips of {data_dir}",
       "dataset": dataset.dataset_info(data_dir).get("command", str(data_dir))},
      recorded=train.recorded[reference])


def write_bank(bank: TargetBank, directory) -> None:
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  bank.save(directory / "targets.npz")
  plots.plot_targets(bank, directory / "targets.png")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> TargetBank:
  data_dir = dataset.ensure(config.data_dir, config.data_size, config.data_seed)
  bank = reference_bank(dataset.load_split(data_dir, "train"), data_dir)
  if jax.process_index() == 0:
    write_bank(bank, workdir)
  for name, count in zip(bank.classes, bank.counts):
    print(f"{name:<28} {count:>4} clips, {bank.origin(name)}")
  return bank


def export(config, workdir, destination, command: str) -> None:
  del config, command  # the bank's provenance already names its data
  Path(destination).mkdir(parents=True, exist_ok=True)
  for name in ("targets.npz", "targets.png"):
    shutil.copyfile(Path(workdir) / name, Path(destination) / name)


if __name__ == "__main__":
  from experiments import launch
  launch.run(__file__, train_and_evaluate, export)
