"""What a rendered dataset holds: its sizes, and every clip's class, split, bank and seed.

The plan is a pure function of the size and the seed, so any machine (or any shard of a
cluster job array) agrees on it. Splits: `train` and `validation` play through three banks in
turn, FluidR3_GM, MuseScore_General and FreePats (those of them with samples of the class), so
that what the models learn of an instrument is not one bank's samples; `test` plays through a
bank the models never hear in training (TimGM6mb).
A `reference` subset of `train` is rendered clean, for the target spectra; so is a
`recorded_reference` subset of the recorded training clips, played from the training
recordings (targets come from real recordings where a class has them). Every other clip is
coloured.

Beside the rendered clips, every class with real recordings (`data_prep.recordings`) has
recorded clips in every split: real notes through a sampler, real drum kits, played as tracks,
short phrases and bare one-shots; the test split's recordings are held out from training.
Rendered clips, too, are now and then short phrases or one-shots: real tracks come in every
length.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from data_prep import recordings
from data_prep.synth import plays
from jaxeq.classes import CLASSES, class_info

SPLITS = ("train", "validation", "test")
TRAINING_BANKS = ("FluidR3_GM", "MuseScore_General", "FreePats")
# Clip k of a kind plays through the k % n-th of the n banks of its split that play its class.
BANKS = {"train": TRAINING_BANKS, "validation": TRAINING_BANKS, "test": ("TimGM6mb",)}


KINDS = ("phrase", "short_phrase", "one_shot")
# Of the coloured clips, this share are short phrases and this share one-shots (rendered,
# recorded); the rest play a whole clip. Reference clips are always phrases.
SHORT_SHARE = {False: 0.15, True: 0.3}
ONE_SHOT_SHARE = {False: 0.1, True: 0.3}
SHORT_SECONDS = (1.0, 4.0)  # a short phrase's length, drawn uniformly
ONE_SHOT_SECONDS = 4.0  # at most: a one-shot is cut where its sound has died away


@dataclasses.dataclass(frozen=True)
class Size:
  """Clip length and clips per class: clean reference (train), coloured train, validation, test
  rendered from the GM banks; recorded train, validation, test and clean recorded reference
  (train) for classes with recordings."""
  clip_seconds: float
  reference: int
  train: int
  validation: int
  test: int
  recorded_train: int = 0
  recorded_validation: int = 0
  recorded_test: int = 0
  recorded_reference: int = 0

  @property
  def per_class(self) -> int:
    return self.reference + self.train + self.validation + self.test


SIZES = {
    "smoke": Size(clip_seconds=2.0, reference=1, train=1, validation=1, test=1,
                  recorded_train=1, recorded_validation=1, recorded_test=1,
                  recorded_reference=1),
    "default": Size(clip_seconds=6.0, reference=4, train=10, validation=3, test=3,
                    recorded_train=10, recorded_validation=3, recorded_test=6,
                    recorded_reference=2),
    # What the shipped classifier and target bank were trained on: the largest that fitted a
    # session without a GPU.
    "medium": Size(clip_seconds=6.0, reference=10, train=150, validation=10, test=20,
                   recorded_train=150, recorded_validation=10, recorded_test=40,
                   recorded_reference=10),
    # 35 × 1,286 = 45,010 rendered clips, the size of the paper's classifier set.
    "paper": Size(clip_seconds=6.0, reference=40, train=1000, validation=125, test=121,
                  recorded_train=1000, recorded_validation=100, recorded_test=150,
                  recorded_reference=40),
}


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  clip_id: str
  class_name: str
  split: str
  bank: str  # a GM bank, or a recorded source of `data_prep.recordings`
  reference: bool
  seed: int
  seconds: float
  kind: str = "phrase"  # one of KINDS
  recorded: bool = False

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
  kinds = (("reference", "train", spec.reference, False), ("train", "train", spec.train, False),
           ("validation", "validation", spec.validation, False),
           ("test", "test", spec.test, False),
           ("recorded_train", "train", spec.recorded_train, True),
           ("recorded_validation", "validation", spec.recorded_validation, True),
           ("recorded_test", "test", spec.recorded_test, True),
           ("recorded_reference", "train", spec.recorded_reference, True))
  clips = []
  for k in range(max(n for _, _, n, _ in kinds)):
    for name in classes:
      for code, (kind, split, count, recorded) in enumerate(kinds):
        if k >= count:
          continue
        if recorded:
          banks = list(recordings.recorded_sources(name, split))
        else:
          banks = [bank for bank in BANKS[split] if plays(bank, name)]
        if not banks:
          continue
        entropy = [seed, class_info(name).index, code, k]
        clip_seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        reference = kind in ("reference", "recorded_reference")
        clip_kind, seconds = _kind_and_length(clip_seed, reference, recorded, spec.clip_seconds)
        clips.append(ClipSpec(clip_id=f"{name}_{kind}_{k:05d}", class_name=name, split=split,
                              bank=banks[k % len(banks)], reference=reference,
                              seed=clip_seed, seconds=seconds, kind=clip_kind,
                              recorded=recorded))
  return clips


def _kind_and_length(clip_seed: int, reference: bool, recorded: bool,
                     clip_seconds: float) -> tuple[str, float]:
  """What a clip plays (a whole phrase, a short phrase or a one-shot) and for how long at most."""
  u, length = np.random.default_rng([clip_seed, 1]).random(2)
  if reference:
    return "phrase", clip_seconds
  if u < ONE_SHOT_SHARE[recorded]:
    return "one_shot", min(ONE_SHOT_SECONDS, clip_seconds)
  if u < ONE_SHOT_SHARE[recorded] + SHORT_SHARE[recorded]:
    lo, hi = SHORT_SECONDS
    return "short_phrase", round(min(lo + (hi - lo) * length, clip_seconds), 2)
  return "phrase", clip_seconds


def shard(clips: Sequence[ClipSpec], num_shards: int, shard_index: int) -> list[ClipSpec]:
  """The clips shard `shard_index` of `num_shards` renders; the shards are disjoint and cover
  the plan."""
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise ValueError(f"shard index {shard_index} of {num_shards} shards: expected "
                     "num_shards >= 1 and 0 <= shard_index < num_shards")
  return list(clips[shard_index::num_shards])
