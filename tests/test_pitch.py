"""A track's pitch (`jaxeq.pitch`): the register its target follows."""

import csv

import numpy as np
import pytest

import jaxeq
from jaxeq import EQ, Band
from jaxeq.pitch import FRAME, median_pitch_hz

RATE = 44100


def _note(f0: float, seconds: float = 2.0, partials: int = 6) -> np.ndarray:
  t = np.arange(int(RATE * seconds)) / RATE
  decay = np.exp(-t / 1.5)
  return (decay * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, partials + 1))
          ).astype(np.float32) * 0.3


@pytest.mark.parametrize("f0", [41.2, 110.0, 440.0, 1318.5])
def test_the_pitch_of_a_harmonic_note(f0):
  assert np.log2(median_pitch_hz(_note(f0)) / f0) == pytest.approx(0.0, abs=0.02)


def test_an_eq_does_not_move_the_pitch():
  """Why the register is read from the pitch: a colouration leaves it where it was."""
  note = _note(196.0)
  coloured = jaxeq.apply_eq(note, RATE, EQ([Band("low_shelf", 300, 9.0),
                                            Band("peak", 1200, -9.0, 2.0),
                                            Band("high_shelf", 4000, 9.0)]))
  assert median_pitch_hz(coloured) == pytest.approx(median_pitch_hz(note), rel=0.005)


def test_the_pitch_agrees_with_librosa_on_real_recordings(smoke_dataset):
  import librosa
  with open(smoke_dataset / "manifest.csv") as f:
    rows = [r for r in csv.DictReader(f) if r["recorded"] == "1"
            and r["class"] in ("violin", "cello", "flute", "electric_bass", "trumpet")]
  assert len(rows) >= 3
  for row in rows:
    name = row["path"]
    audio, rate = jaxeq.load_audio(smoke_dataset / name)
    signal = jaxeq.spectrum.analysis_signal(audio, rate)
    f0 = librosa.yin(signal, fmin=30, fmax=2000, sr=jaxeq.SAMPLE_RATE, frame_length=FRAME,
                     center=False)
    frames = librosa.util.frame(signal, frame_length=FRAME, hop_length=FRAME // 4)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=0))
    expected = np.median(f0[rms >= rms.max() * 0.1])
    assert np.log2(median_pitch_hz(signal) / expected) == pytest.approx(0.0, abs=1 / 24), name


def test_a_signal_shorter_than_a_frame_has_no_pitch():
  assert np.isnan(median_pitch_hz(np.ones(FRAME - 1, np.float32)))


def test_noise_has_no_pitch():
  """A snare's or a hi-hat's noise has no pitch to follow: its target is its class's mean."""
  noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
  assert np.isnan(median_pitch_hz(noise))
