"""Exported models: a directory with `config.json`, `params.npz` and `MODEL_CARD.md`.

The one format every shipped network (matchers, classifier) uses; no pickle anywhere. The
parameters are plain arrays, one a leaf, named by their path in the tree ("Dense_0/kernel"):
reading a model needs NumPy alone, not the training checkpoints' orbax.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Mapping

import jax
import numpy as np

from jaxeq.atomic import write_text_atomically

PARAMS = "params.npz"


def save(directory, params, config: dict, card: str | None = None) -> None:
  """Writes a new model directory; `directory` must not exist (nothing is overwritten)."""
  directory = Path(directory)
  if directory.exists():
    raise FileExistsError(f"model directory {directory} already exists")
  directory.mkdir(parents=True)
  save_params(directory / PARAMS, params)
  write_text_atomically(directory / "config.json", json.dumps(config, indent=2) + "\n")
  if card is not None:
    write_text_atomically(directory / "MODEL_CARD.md", card)


def load_config(directory, expected_format: str | tuple[str, ...]) -> dict:
  config_path = Path(directory) / "config.json"
  if not config_path.is_file():
    raise FileNotFoundError(f"{config_path}: no such file (not an exported jaxeq model)")
  try:
    config = json.loads(config_path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise ValueError(f"{config_path}: invalid JSON ({e})") from None
  expected = (expected_format,) if isinstance(expected_format, str) else expected_format
  if config.get("format") not in expected:
    raise ValueError(f"{config_path}: format {config.get('format')!r}, expected "
                     + " or ".join(map(repr, expected)))
  return config


def save_params(path, params) -> None:
  """`params` (a nested dict of arrays) as `.npz`, written atomically. A replicated global
  array (a multi-process job's) is read through this process's own copy."""
  flat = {name: np.asarray(value.addressable_data(0) if isinstance(value, jax.Array) else value)
          for name, value in flatten(params).items()}
  path = Path(path)
  handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
  try:
    with os.fdopen(handle, "wb") as f:
      np.savez(f, **flat)
    os.replace(tmp, path)
  except BaseException:
    Path(tmp).unlink(missing_ok=True)
    raise


def load_params(directory, like):
  """The parameters of `directory`, shaped like `like` (e.g. from `jax.eval_shape`); a
  `ValueError` naming the first array that is missing, extra or misshapen."""
  path = Path(directory) / PARAMS
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such file (not an exported jaxeq model)")
  want = flatten(like)
  with np.load(path, allow_pickle=False) as data:
    got = {key: data[key] for key in data.files}
  wrong = sorted(k for k in set(want) | set(got)
                 if k not in want or k not in got or got[k].shape != tuple(want[k].shape))
  if wrong:
    raise ValueError(f"{path}: does not fit the model (missing, extra or misshapen: "
                     f"{', '.join(wrong[:3])})")
  return unflatten({k: jax.numpy.asarray(v, want[k].dtype) for k, v in got.items()})


def flatten(tree: Mapping, prefix: str = "") -> dict:
  """A nested dict's leaves by their path, "Dense_0/kernel" (as `params.npz` names them)."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    flat.update(flatten(value, name + "/") if isinstance(value, Mapping) else {name: value})
  return flat


def unflatten(flat: Mapping[str, object]) -> dict:
  """`flatten`'s inverse: leaves by path → a nested dict."""
  tree = {}
  for name, value in flat.items():
    *parents, leaf = name.split("/")
    node = tree
    for parent in parents:
      node = node.setdefault(parent, {})
    node[leaf] = value
  return tree


def hashable(model_kwargs: dict) -> dict:
  """Module fields from JSON: lists become tuples (Flax module fields must be hashable)."""
  return {k: tuple(v) if isinstance(v, list) else v for k, v in model_kwargs.items()}
