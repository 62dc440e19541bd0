"""A prepared dataset as experiments read it, and preparing one when it is missing.

    data_dir = dataset.ensure("data/default", size="default")   # render + featurize if absent
    train = dataset.load_split(data_dir, "train")

The arrays are the ones `data_prep.features` writes, memory-mapped where large.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from data_prep import features, manifest, render

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class Split:
  spectra: np.ndarray  # (clips, 256) float32 long-term spectra, dB
  noise_floors: np.ndarray  # (clips, 256) float32 their noise floors, dB
  labels: np.ndarray  # (clips,) class index in jaxeq.CLASSES
  windows: np.ndarray  # (windows, 256, 256) float16 dB spectrograms, memory-mapped
  window_clip: np.ndarray  # (windows,) the clip of each window
  rows: list[dict]  # per clip: its manifest row (path, class, reference, colouration, ...)

  @property
  def reference(self) -> np.ndarray:
    """(clips,) True for the clean reference clips."""
    return np.array([r.get("reference", "").lower() in ("1", "true") for r in self.rows])

  @property
  def recorded(self) -> np.ndarray:
    """(clips,) True for the clips played from real recordings."""
    return np.array([r.get("recorded", "") == "1" for r in self.rows])


def is_prepared(data_dir) -> bool:
  """Whether every split has features in the current format."""
  return all(features.read_info(Path(data_dir) / "features" / s).get("format")
             == features.FEATURES_FORMAT for s in SPLITS)


def ensure(data_dir, size: str = "default", seed: int = 0, workers: int | None = None) -> Path:
  """`data_dir`, rendering and featurizing the `size` dataset there first if it lacks features.

  An ingested dataset (a manifest but no rendered audio) is only featurized.
  """
  data_dir = Path(data_dir)
  if is_prepared(data_dir):
    return data_dir
  jobs = [] if (data_dir / manifest.FILENAME).is_file() and not (data_dir / "dataset.json").is_file() \
      else [("render", render.main, ["--size", size, "--seed", str(seed), "--out", str(data_dir)])]
  jobs.append(("features", features.main, [str(data_dir)]))
  for name, main, argv in jobs:
    if workers:
      argv += ["--workers", str(workers)]
    if main(argv) != 0:
      raise RuntimeError(f"{data_dir}: preparing the dataset failed in data_prep.{name} "
                         "(see the messages above)")
  return data_dir


def load_split(data_dir, split: str) -> Split:
  out = Path(data_dir) / "features" / split
  found = features.read_info(out).get("format")
  if found != features.FEATURES_FORMAT:
    raise FileNotFoundError(
        f"{out}: " + (f"features in format {found}, expected {features.FEATURES_FORMAT}" if found
                      else "no features") + f"; run `python -m data_prep.features {data_dir}`")
  with open(out / "index.csv", newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  load = lambda name, **kw: np.load(out / f"{name}.npy", allow_pickle=False, **kw)  # noqa: E731
  return Split(load("spectra"), load("noise_floors"), load("labels").astype(np.int32),
               load("windows", mmap_mode="r"), load("window_clip"), rows)


def dataset_info(data_dir) -> dict:
  """`dataset.json` of a rendered dataset ({} for an ingested one)."""
  path = Path(data_dir) / "dataset.json"
  return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
