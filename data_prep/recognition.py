"""The recordings the rendered dataset cannot hold, as labelled clips for recognition.

The rendered dataset (`data_prep.plan`, `data_prep.render`) plays single recorded notes and
drum hits. Voices, whole drum kits on one track and the Debian instruments (`data_prep.excerpts`)
come in here instead: `clips(seed)` draws every clip of them, each with the class it is, the
source and identity it comes from (a leave-one-source-out evaluation holds out a source or an
identity whole), and the split it belongs to.

- Voices, instruments, loops and hits: `data_prep.excerpts` clips of each identity.
  `CLIPS` says how many a source gives an identity; a one-shot gives one clip a file.
- Whole kits (`drum_kit`): `data_prep.kit_tracks` plays every real kit of
  `data_prep.recordings` as one track through a room, the training kits in train and the test
  kits in test, as their single hits already are.
- Every clip goes through a random colouration (`data_prep.colouration`), as the dataset's
  clips do; a quarter of the voices are heard
  through a phone band (300-3,400 Hz), because a voice on a phone is still a voice.
- Half the clips last `SECONDS[0]`, half `SECONDS[1]`: a track and a short phrase.

`TEST_IDENTITIES` are the identities held out of training for the shipped classifier: a third
of the speakers, two organ stops, a chuck kit and a drum loop. An identity alone in its class
trains (the leave-one-source-out evaluation measures it held out).
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np
from scipy import signal

from data_prep import excerpts, kit_tracks, recordings
from data_prep.colouration import random_colouration
from data_prep.sound_source import SAMPLE_RATE
from jaxeq import apply_eq

SECONDS = (6.0, 3.0)
# Clips an identity gives, by its source; a one-shot gives one a file.
CLIPS = {"fillets-ng-cs": 48, "klettres": 16, "csoundqt-examples": 12, "grandorgue-demo": 16,
         "fretsonfire-muldjord": 64, "kit_tracks": 16}
PHONE_BAND_HZ = (300.0, 3400.0)
PHONE_SHARE = 0.25
TEST_IDENTITIES = frozenset({
    "fillets-ng-cs/characters", "klettres/en", "klettres/fr", "klettres/he", "klettres/uk",
    "klettres/pt_BR", "klettres/nds", "csoundqt-examples/quick_brown_fox",
    "grandorgue-demo/Gamba8", "grandorgue-demo/Trompette8",
    "chuck-data/book_kit", "csoundqt-examples/drum_loop"})


class Clip(NamedTuple):
  audio: np.ndarray  # mono float32 at SAMPLE_RATE
  class_name: str
  source: str  # the data_prep.fetch source, or "kit_tracks"
  identity: str  # source/who: a speaker set, an instrument, a stop, a kit
  split: str  # "train" or "test"
  kind: str  # the excerpt kind, "kit_track", or "phone" for a voice through a phone band


def clips(seed: int = 0, per_identity: dict | None = None) -> list[Clip]:
  """Every clip, in a fixed order, deterministic given `seed`. `per_identity` overrides
  `CLIPS` (fewer clips for a test)."""
  counts = {**CLIPS, **(per_identity or {})}
  out = []
  for identity, group in excerpts.by_identity(excerpts.catalogue()).items():
    rng = _rng(seed, identity)
    split = "test" if identity in TEST_IDENTITIES else "train"
    first = group[0]
    if first.kind == "one_shot":  # a kit's hits: each file its own clip and class
      draws = [(r.class_name, lambda r=r: excerpts.excerpt(r, SECONDS[1], rng)) for r in group]
    else:
      draws = [(first.class_name, lambda k=k: excerpts.clip(group, SECONDS[k % 2], rng))
               for k in range(counts[first.source])]
    for class_name, draw in draws:
      audio, kind = draw(), first.kind
      if class_name == "vocals" and rng.random() < PHONE_SHARE:
        audio, kind = phone_band(audio), "phone"
      out.append(Clip(_coloured(audio, rng), class_name, first.source, identity, split, kind))
  for kit in recordings.TRAIN_KITS + recordings.TEST_KITS:
    rng = _rng(seed, kit)
    split = "test" if kit in recordings.TEST_KITS else "train"
    source = recordings.open_source(kit)
    for k in range(counts["kit_tracks"]):
      track, _, _ = kit_tracks.render_kit_track(source, SECONDS[k % 2], rng)
      out.append(Clip(_coloured(track, rng), "drum_kit", "kit_tracks", kit, split, "kit_track"))
  return out


def phone_band(audio: np.ndarray) -> np.ndarray:
  """`audio` through a telephone's band: a 4th-order Butterworth band-pass."""
  sos = signal.butter(4, PHONE_BAND_HZ, "bandpass", fs=SAMPLE_RATE, output="sos")
  return signal.sosfilt(sos, audio).astype(np.float32)


def _coloured(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  out = apply_eq(audio, SAMPLE_RATE, random_colouration(rng))
  peak = float(np.max(np.abs(out)))
  return (out * np.float32(min(1.0, 0.9 / peak)) if peak > 0 else out).astype(np.float32)


def _rng(seed: int, name: str) -> np.random.Generator:
  return np.random.default_rng([seed, zlib.crc32(name.encode())])
