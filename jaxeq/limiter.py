"""The true-peak limiter: BS.1770 true peaks, the ceilings an output format allows, and the
gain reduction that keeps a track's peaks under its ceiling.

A lookahead limiter takes peaks down rather than the whole track
(`jaxeq.loudness.match_loudness` uses it after the make-up gain). pedalboard's `Limiter`,
JUCE's, has no lookahead nor true-peak detection and ends in a hard clipper, so it is not
used.
"""

from __future__ import annotations

import math

import numpy as np
import soxr
from scipy import ndimage

# The true-peak ceilings (dBTP) the output is limited to: just under full scale for lossless
# formats; 1 dB under for lossy ones, whose decoders overshoot the encoded peaks.
LOSSLESS_CEILING_DBTP = -0.1
LOSSY_CEILING_DBTP = -1.0
MAX_PEAK = 10 ** (LOSSLESS_CEILING_DBTP / 20)
# The limiter: true peaks between samples found at this many points per sample (BS.1770's
# 4x, less where the rate already reaches 192 kHz); the gain falls over `LOOKAHEAD_S` before a
# peak and recovers with a `RELEASE_S` time constant after it.
OVERSAMPLING, TRUE_PEAK_RATE = 4, 192000
LOOKAHEAD_S, RELEASE_S = 0.005, 0.01
# Intersample peaks of real audio stay within this of the sample peaks around them: chunks
# further under the ceiling are not oversampled.
INTERSAMPLE_MARGIN_DB = 6.0
# The most the limiter may take off a peak: beyond it a limiter audibly flattens transients, so
# the make-up gain comes down instead and the output is that much quieter than the input.
MAX_LIMITING_DB = 6.0


def ceiling_dbtp(subtype: str) -> float:
  """The true-peak ceiling for a file of soundfile `subtype` (`soundfile.info(path).subtype`)."""
  lossy = subtype in ("VORBIS", "OPUS") or subtype.startswith("MPEG_LAYER")
  return LOSSY_CEILING_DBTP if lossy else LOSSLESS_CEILING_DBTP


def true_peak_envelope(channels: np.ndarray, sample_rate: int) -> np.ndarray:
  """`(samples,)` float32: at each sample, the largest magnitude of any channel there and on
  the oversampled signal up to the next sample (BS.1770's true peak)."""
  return TruePeaks(channels, sample_rate).envelope_above(0.0)


class TruePeaks:
  """The true-peak envelope of `(channels, samples)` audio, oversampled (soxr) chunk by chunk
  only where it is asked for: quiet stretches never need it. Overlapping chunks keep memory
  small for long tracks and the seams exact."""

  def __init__(self, channels: np.ndarray, sample_rate: int, chunk: int = 1 << 14):
    self.channels = np.asarray(channels, np.float32)
    self.sample_rate, self.chunk = sample_rate, chunk
    self.factor = max(1, min(OVERSAMPLING, TRUE_PEAK_RATE // sample_rate))
    self.envelope = np.abs(self.channels[0])  # the sample peaks, to start with
    for channel in self.channels[1:]:  # faster than a reduction along the short axis
      np.maximum(self.envelope, np.abs(channel), out=self.envelope)
    starts = np.arange(0, len(self.envelope), chunk)
    self._chunk_peaks = np.maximum.reduceat(self.envelope, starts)
    self._done = np.full(len(starts), self.factor == 1)

  def envelope_above(self, level: float) -> np.ndarray:
    """The envelope, true peaks found in every chunk whose sample peak comes within
    `INTERSAMPLE_MARGIN_DB` of `level` (linear); elsewhere the sample peaks."""
    wanted = ~self._done & (self._chunk_peaks >= level * 10 ** (-INTERSAMPLE_MARGIN_DB / 20))
    for index in np.flatnonzero(wanted):
      self._oversample(index * self.chunk)
    self._done |= wanted
    return self.envelope

  def _oversample(self, start: int) -> None:
    n, factor, margin = self.channels.shape[1], self.factor, 512  # margin: past soxr's filter
    stop = min(n, start + self.chunk)
    lo, hi = max(0, start - margin), min(n, stop + margin)
    up = soxr.resample(self.channels[:, lo:hi].T, self.sample_rate, factor * self.sample_rate,
                       quality="MQ")
    rows = np.abs(up[(start - lo) * factor:(stop - lo) * factor])
    points = rows.reshape(stop - start, -1)  # one row per input sample
    part = self.envelope[start:stop]
    for column in points.T:  # a loop over a few columns beats a reduction along a short axis
      np.maximum(part, column, out=part)


def peak_reduction_db(envelope: np.ndarray, sample_rate: int, gain_db: float,
                      ceiling_db: float) -> np.ndarray:
  """`(samples,)` float32: how far (dB) the limiter turns each sample down when `envelope`
  (see `true_peak_envelope`) is raised by `gain_db` and its true peaks must stay under
  `ceiling_db`. The limiter only works on the stretches around peaks."""
  reduction = np.zeros(len(envelope), np.float32)
  threshold = 10 ** ((ceiling_db - gain_db) / 20)
  peaks = np.flatnonzero(envelope > threshold)
  if len(peaks) == 0:
    return reduction
  window = max(1, int(LOOKAHEAD_S * sample_rate))
  # After a peak the reduction falls under 1e-4 dB within `tail`: stretches of peaks further
  # apart than that (and the lookahead) are limited separately.
  most = 20 * math.log10(float(np.max(envelope[peaks])) / threshold)
  tail = int(RELEASE_S * sample_rate * math.log(most / 1e-4 + 1)) + window
  gaps = np.flatnonzero(np.diff(peaks) > tail + 2 * window)
  for first, last in zip(peaks[np.r_[0, gaps + 1]], peaks[np.r_[gaps, len(peaks) - 1]]):
    lo, hi = max(0, first - window), min(len(envelope), last + tail)
    with np.errstate(divide="ignore"):
      over = np.maximum(20 * np.log10(envelope[lo:hi] / threshold), 0.0)
    reduction[lo:hi] = _smooth_reduction(over, sample_rate, window)
  return reduction


def _smooth_reduction(over: np.ndarray, sample_rate: int, window: int) -> np.ndarray:
  """The reduction each sample of `over` (dB over the ceiling, >= 0) needs, held and released
  exponentially (`RELEASE_S`), taken at its largest over the next `window` samples and averaged
  over that window: the gain ramps down smoothly before each peak and is at or under what the
  peak needs when it comes."""
  # held[n] = max over k <= n of over[k] * decay^(n - k): in logarithms a running maximum.
  ramp = np.arange(len(over), dtype=np.float64) / (RELEASE_S * sample_rate)
  with np.errstate(divide="ignore"):
    held = np.exp(np.maximum.accumulate(np.log(over) + ramp) - ramp)
  ahead = ndimage.maximum_filter1d(held, window, origin=-(window // 2), mode="nearest")
  # The mean over the last `window` samples (the first sample's value before the start).
  total = np.cumsum(np.concatenate([np.full(window, ahead[0]), ahead]))
  return np.maximum((total[window:] - total[:-window]) / window, over)  # `over`: float rounding
