"""ITU-R BS.1770 integrated loudness, and loudness matching of processed audio.

The EQ should change a track's tone, not its level (DESIGN.md §2), so processed audio is
brought back to its input's loudness. The K-weighting is two cookbook biquads (a +4 dB high
shelf at 1.5 kHz and a 38 Hz high pass, as pyloudnorm designs them for any rate), run by
`apply_eq`; gating follows BS.1770-4 with 400 ms blocks overlapping by 75 %.

Where the make-up gain would push peaks over the ceiling, a lookahead true-peak limiter takes
them down (`match_loudness`), rather than the whole track: turning a boosted drum hit down to
fit its peak lost up to 6.5 LU. (pedalboard's `Limiter`, JUCE's, has no lookahead nor true-peak
detection and ends in a hard clipper, so it is not used.)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import soxr
from scipy import ndimage

from jaxeq.eq import EQ, Band
from jaxeq.processing import filter_channels

K_WEIGHTING = EQ([Band("high_shelf", 1500.0, 4.0, 1 / math.sqrt(2)),
                  Band("high_pass", 38.0, q=0.5)])
BLOCK_SECONDS, BLOCK_STEP = 0.4, 0.25
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
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
# Limiting costs a little loudness; the make-up gain is raised to win it back, by at most this.
MAX_EXTRA_GAIN_DB, MAX_ROUNDS = 12.0, 8
# The most the limiter may take off a peak: beyond it a limiter audibly flattens transients, so
# the make-up gain comes down instead and the output is that much quieter than the input.
MAX_LIMITING_DB = 6.0
_LOUDNESS_TOLERANCE_LU = 0.05


def integrated_loudness(audio, sample_rate: int) -> float:
  """Integrated loudness in LUFS (-inf for audio that is silent after gating).

  Clips shorter than one 400 ms block are measured as a single block.
  """
  return gated_loudness(filter_channels(audio, sample_rate, K_WEIGHTING), sample_rate)


def gated_loudness(weighted: np.ndarray, sample_rate: int) -> float:
  """The loudness of already K-weighted `(channels, samples)` audio (BS.1770 gating)."""
  return power_loudness(weighted_power(weighted), sample_rate)


def weighted_power(weighted: np.ndarray) -> np.ndarray:
  """`(samples,)`: K-weighted `(channels, samples)` audio's power, the channels weighted 1 for
  L, R, C and 1.41 for the surrounds (BS.1770 table 3). Every step of the gating is linear in
  the channels' powers, so they are summed first."""
  gains = np.array([1.41 if c in (3, 4) else 1.0 for c in range(len(weighted))])
  return gains @ weighted**2


def power_loudness(power: np.ndarray, sample_rate: int) -> float:
  """The gated loudness (LUFS) of a `weighted_power`."""
  return gate(block_powers(power, gating_blocks(len(power), sample_rate)))


def block_powers(power: np.ndarray, blocks: tuple[np.ndarray, int]) -> np.ndarray:
  """The mean of `power` over each of `blocks` (`gating_blocks`)."""
  starts, block = blocks
  cumulative = np.concatenate([[0.0], np.cumsum(power)])
  return (cumulative[starts + block] - cumulative[starts]) / block


def gating_blocks(samples: int, sample_rate: int) -> tuple[np.ndarray, int]:
  """`(starts, length)` of the 400 ms gating blocks, overlapping by 75 %; a clip shorter than
  a block is one block."""
  block = int(BLOCK_SECONDS * sample_rate)
  if samples <= block:
    return np.zeros(1, int), samples
  count = int(round((samples / sample_rate - BLOCK_SECONDS) / (BLOCK_SECONDS * BLOCK_STEP))) + 1
  starts = (BLOCK_SECONDS * BLOCK_STEP * np.arange(count) * sample_rate).astype(int)
  return starts[starts + block <= samples], block


def gate(block_power: np.ndarray) -> float:
  """The loudness (LUFS) of the gating blocks' mean powers, after the absolute and relative
  gates."""
  z = block_power
  with np.errstate(divide="ignore"):
    block_lufs = -0.691 + 10 * np.log10(z)
    gated = z[block_lufs > ABSOLUTE_GATE_LUFS]
    if len(gated) == 0:
      return -math.inf
    relative = -0.691 + 10 * np.log10(np.mean(gated)) + RELATIVE_GATE_LU
    gated = z[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative)]
    return float(-0.691 + 10 * np.log10(np.mean(gated)))


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


def _limited_blocks(power: np.ndarray, blocks, plain: np.ndarray, gain_db: float,
                    reduction: np.ndarray) -> np.ndarray:
  """The gating blocks' mean powers after `gain_db` and the limiter's `reduction`, from those
  of `power` itself (`plain`): only the limited samples are summed again."""
  starts, block = blocks
  at = np.flatnonzero(reduction)
  change = np.concatenate([[0.0], np.cumsum(power[at] * (10 ** (-reduction[at] / 10) - 1))])
  inside = change[np.searchsorted(at, starts + block)] - change[np.searchsorted(at, starts)]
  return (plain + inside / block) * 10 ** (gain_db / 10)


@dataclasses.dataclass(frozen=True)
class LevelMatch:
  """What `match_loudness` did: the make-up gain, the most the limiter took off a peak, the
  loudness change that remains (LU), and whether the limiter's cap lowered the make-up gain."""
  makeup_gain_db: float
  limited_db: float
  loudness_change_lu: float
  limiter_capped: bool = False


def match_loudness(processed, sample_rate: int, weighted: np.ndarray, target_lufs: float,
                   ceiling_db: float = LOSSLESS_CEILING_DBTP,
                   max_limiting_db: float = MAX_LIMITING_DB) -> tuple[np.ndarray, LevelMatch]:
  """`processed` brought to `target_lufs` with its true peaks limited to `ceiling_db`: the
  output and what was done. `weighted` is `processed` K-weighted, `(channels, samples)`.

  Peaks are limited rather than the whole track turned down, so the loudness holds; what the
  limiter takes is won back by raising the make-up gain (up to `MAX_EXTRA_GAIN_DB`), measured
  on `weighted` times the gain (the gain changes slowly next to the K-weighting filters).
  The limiter takes at most `max_limiting_db` off a peak: where it would take more, the
  make-up gain is lowered until it takes that much, and the output is quieter than the input
  (`LevelMatch.limiter_capped`). Silence on either side leaves the level as it is.
  """
  if not max_limiting_db > 0:
    raise ValueError(f"max_limiting_db={max_limiting_db!r}: expected a positive number of dB")
  channels = np.atleast_2d(np.asarray(processed).T)
  power = weighted_power(weighted)
  blocks = gating_blocks(len(power), sample_rate)
  plain = block_powers(power, blocks)
  current = gate(plain)
  finite = math.isfinite(target_lufs) and math.isfinite(current)
  makeup = target_lufs - current if finite else 0.0
  peaks = TruePeaks(channels, sample_rate)
  most = makeup + MAX_EXTRA_GAIN_DB
  tried = []  # (make-up gain, loudness change) of each round, for the secant step
  for round_ in range(MAX_ROUNDS):
    envelope = peaks.envelope_above(10 ** ((ceiling_db - makeup) / 20))
    reduction = peak_reduction_db(envelope, sample_rate, makeup, ceiling_db)
    limited = float(np.max(reduction))
    if limited == 0.0 or not finite:
      change = 0.0
      break
    change = gate(_limited_blocks(power, blocks, plain, makeup, reduction)) - target_lufs
    if change > -_LOUDNESS_TOLERANCE_LU or makeup >= most or round_ == MAX_ROUNDS - 1:
      break  # `reduction` is the limiter's for this `makeup`
    # Each dB of make-up wins back at most a dB of loudness, often less as the limiter
    # takes more: step by the shortfall over the slope seen so far.
    slope = 1.0
    if tried and makeup > tried[-1][0]:
      slope = min(1.0, max(0.1, (change - tried[-1][1]) / (makeup - tried[-1][0])))
    tried.append((makeup, change))
    makeup = min(makeup - change / slope, most)
  capped = limited > max_limiting_db
  if capped:  # the make-up gain at which the loudest true peak needs exactly the cap
    makeup = ceiling_db + max_limiting_db - 20 * math.log10(float(np.max(envelope)))
    reduction = peak_reduction_db(envelope, sample_rate, makeup, ceiling_db)
    limited = float(np.max(reduction))
    change = gate(_limited_blocks(power, blocks, plain, makeup, reduction)) - target_lufs
  gain = 10 ** ((makeup - reduction) / 20) if limited else np.float32(10 ** (makeup / 20))
  out = (channels * gain).T.reshape(np.shape(processed))
  return (out.astype(np.asarray(processed).dtype, copy=False),
          LevelMatch(float(makeup), float(limited), float(change), capped))
