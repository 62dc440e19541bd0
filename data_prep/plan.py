"""What a rendered dataset holds: its sizes, and every clip's class, split, bank and seed.

The plan is a pure function of the size and the seed, so any machine (or any shard of a
cluster job array) agrees on it. Splits: `train` and `validation` play through three banks in
turn, FluidR3_GM, MuseScore_General and FreePats (those of them with samples of the class), so
that what the models learn of an instrument is not one bank's samples; `test` plays through a
bank the models never hear in training (TimGM6mb).
A `reference` subset of `train` is rendered clean, for the target spectra; every other clip is
coloured.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from data_prep.synth import plays
from jaxeq.classes import CLASSES, class_info

SPLITS = ("train", "validation", "test")
TRAINING_BANKS = ("FluidR3_GM", "MuseScore_General", "FreePats")
# Clip k of a kind plays through the k % n-th of the n banks of its split that play its class.
BANKS = {"train": TRAINING_BANKS, "validation": TRAINING_BANKS, "test": ("TimGM6mb",)}


@dataclasses.dataclass(frozen=True)
class Size:
  """Clip length and clips per class: clean reference (train), coloured train, validation, test."""
  clip_seconds: float
  reference: int
  train: int
  validation: int
  test: int

  @property
  def per_class(self) -> int:
    return self.reference + self.train + self.validation + self.test


SIZES = {
    "smoke": Size(clip_seconds=2.0, reference=1, train=1, validation=1, test=1),
    "default": Size(clip_seconds=6.0, reference=4, train=10, validation=3, test=3),
    # What the shipped classifier and target bank were trained on (about 11 min to render
    # and featurize on 2 cores): the largest that fitted a session without a GPU.
    "medium": Size(clip_seconds=6.0, reference=10, train=150, validation=10, test=20),
    # 35 × 1,286 = 45,010 clips, the size of the paper's classifier set.
    "paper": Size(clip_seconds=6.0, reference=40, train=1000, validation=125, test=121),
}


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  clip_id: str
  class_name: str
  split: str
  bank: str
  reference: bool
  seed: int
  seconds: float

  @property
  def path(self) -> str:
    """Where the clip lives, relative to the dataset folder."""
    return f"audio/{self.split}/{self.class_name}/{self.clip_id}.flac"


def get_size(size: str) -> Size:
  try:
    return SIZES[size]
  except KeyError:
    raise ValueError(f"unknown dataset size {size!r}: expected one of {', '.join(SIZES)}") from None


def plan(size: str, seed: int, classes: Sequence[str] | None = None) -> list[ClipSpec]:
  """Every clip of a dataset, in a fixed order.

  The order cycles through the classes clip by clip, so any prefix of the plan (a render
  stopped early, a shard) is balanced across classes. A clip's seed depends only on `seed`,
  its class, its kind and its number, so rendering a subset of the classes renders the same
  clips as the whole.
  """
  spec = get_size(size)
  classes = CLASSES if classes is None else tuple(class_info(c).name for c in classes)
  kinds = (("reference", "train", spec.reference), ("train", "train", spec.train),
           ("validation", "validation", spec.validation), ("test", "test", spec.test))
  clips = []
  for k in range(max(n for _, _, n in kinds)):
    for name in classes:
      for code, (kind, split, count) in enumerate(kinds):
        if k < count:
          entropy = [seed, class_info(name).index, code, k]
          clip_seed = np.random.SeedSequence(entropy).generate_state(1)[0]
          banks = [bank for bank in BANKS[split] if plays(bank, name)]
          clips.append(ClipSpec(clip_id=f"{name}_{kind}_{k:05d}", class_name=name, split=split,
                                bank=banks[k % len(banks)], reference=kind == "reference",
                                seed=int(clip_seed), seconds=spec.clip_seconds))
  return clips


def shard(clips: Sequence[ClipSpec], num_shards: int, shard_index: int) -> list[ClipSpec]:
  """The clips shard `shard_index` of `num_shards` renders; the shards are disjoint and cover
  the plan."""
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise ValueError(f"shard index {shard_index} of {num_shards} shards: expected "
                     "num_shards >= 1 and 0 <= shard_index < num_shards")
  return list(clips[shard_index::num_shards])
