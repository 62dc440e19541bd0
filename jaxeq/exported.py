"""Exported models: a directory with `config.json`, `params/` (orbax) and `MODEL_CARD.md`.

The one format every shipped network (matchers, classifier) uses; no pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from jaxeq import trainer
from jaxeq.atomic import write_text_atomically


def save(directory, params, config: dict, card: str | None = None) -> None:
  """Writes a new model directory; `directory` must not exist (nothing is overwritten)."""
  directory = Path(directory)
  if directory.exists():
    raise FileExistsError(f"model directory {directory} already exists")
  directory.mkdir(parents=True)
  trainer.save_params(directory / "params", params)
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


def load_params(directory, like):
  """The parameters of `directory`, shaped like `like` (e.g. from `jax.eval_shape`)."""
  return trainer.load_params(Path(directory) / "params", like)


def hashable(model_kwargs: dict) -> dict:
  """Module fields from JSON: lists become tuples (Flax module fields must be hashable)."""
  return {k: tuple(v) if isinstance(v, list) else v for k, v in model_kwargs.items()}
