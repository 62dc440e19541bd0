"""A track's pitch: the register it plays in, which its target follows (`jaxeq.targets`).

The median YIN fundamental (de Cheveigné and Kawahara 2002, as `librosa.yin` computes it) of
the track's loud frames. An EQ does not move a pitch, so a track and a coloured copy of it get
one register and one target; a register read from the spectrum (where its energy lies) moves
with the colouration (RESULTS, issue 28). An unpitched sound (a snare, a cymbal, noise) has
no pitch (NaN), and its target is its class's mean.
"""

from __future__ import annotations

import numpy as np

from jaxeq.spectrum import SAMPLE_RATE

FMIN_HZ, FMAX_HZ = 30.0, 2000.0
FRAME, HOP = 4096, 1024
TROUGH_THRESHOLD = 0.1
LOUD_DB = 20.0  # frames this far under the loudest are rests and tails, not the notes
MAX_FRAMES = 128  # evenly spaced loud frames are enough for a median, however long the track
# A frame is voiced where its aperiodicity is under VOICED_BELOW; a track with fewer than
# MIN_VOICED_SHARE of its loud frames voiced (a snare, a hi-hat, noise) has no pitch: the
# period its noise happens to favour would move with any EQ, and its target with it.
VOICED_BELOW = 0.2
MIN_VOICED_SHARE = 0.5


def median_pitch_hz(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
  """The median fundamental (Hz) of the voiced frames of a mono `signal` within `LOUD_DB` of
  its loudest (an `analysis_signal`); NaN for an unpitched one (under `MIN_VOICED_SHARE` of
  those frames voiced) or one shorter than a frame (93 ms), whose target then follows no
  register."""
  if len(signal) < FRAME:
    return float("nan")
  frames = np.lib.stride_tricks.sliding_window_view(signal, FRAME)[::HOP]
  rms = frame_rms(frames)
  loud = np.flatnonzero(rms >= rms.max() * 10 ** (-LOUD_DB / 20))
  loud = loud[np.linspace(0, len(loud) - 1, min(len(loud), MAX_FRAMES)).round().astype(int)]
  f0, aperiodicity = yin(frames[loud].astype(np.float64), sample_rate)
  voiced = aperiodicity < VOICED_BELOW
  if voiced.mean() < MIN_VOICED_SHARE:
    return float("nan")
  return float(np.median(f0[voiced]))


def frame_rms(frames: np.ndarray, chunk: int = 256) -> np.ndarray:
  """The RMS of each of `frames` `(n, FRAME)` (a strided view of the signal), in float64, a
  chunk of frames at a time: the frames of a 3-minute track in float64 at once are 250 MB,
  written and read twice. Each row's sum is the same in a chunk as in the whole array."""
  return np.concatenate([np.sqrt(np.mean(frames[i:i + chunk].astype(np.float64) ** 2, axis=1))
                         for i in range(0, len(frames), chunk)])


def yin(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
  """The YIN fundamental (Hz) of each of `frames` `(n, FRAME)` and its aperiodicity: the first
  trough of the cumulative mean normalised difference under `TROUGH_THRESHOLD` (the deepest
  where none is), refined by a parabola, and the difference there (0 for a periodic frame,
  near 1 for noise)."""
  min_period = int(np.floor(sample_rate / FMAX_HZ))
  max_period = min(int(np.ceil(sample_rate / FMIN_HZ)), frames.shape[1] - 1)
  spectrum = np.fft.rfft(frames, n=2 * frames.shape[1], axis=1)
  acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :max_period + 1]
  energy = np.cumsum(frames**2, axis=1)
  lags = np.arange(1, max_period + 1)
  # d(k) = 2 (ACF(0) - ACF(k)) - sum_{m<k} y(m)^2, then normalised by its running mean.
  difference = 2 * (acf[:, :1] - acf[:, lags]) - energy[:, lags - 1]
  running_mean = np.cumsum(difference, axis=1) / lags
  normalised = (difference[:, min_period - 1:] / (running_mean[:, min_period - 1:]
                                                   + np.finfo(np.float64).tiny))
  before, here, after = normalised[:, :-2], normalised[:, 1:-1], normalised[:, 2:]
  trough = np.zeros_like(normalised, dtype=bool)
  trough[:, 1:-1] = (here < before) & (here <= after)
  trough[:, 0] = normalised[:, 0] < normalised[:, 1]
  below = trough & (normalised < TROUGH_THRESHOLD)
  index = np.where(below.any(axis=1), np.argmax(below, axis=1), np.argmin(normalised, axis=1))
  curvature = before - 2 * here + after
  shift = np.zeros_like(normalised)
  with np.errstate(divide="ignore", invalid="ignore"):
    shift[:, 1:-1] = np.where(curvature != 0, 0.5 * (before - after) / curvature, 0.0)
  shift[np.abs(shift) > 1] = 0.0
  rows = np.arange(len(frames))
  return sample_rate / (min_period + index + shift[rows, index]), normalised[rows, index]
