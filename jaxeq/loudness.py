"""ITU-R BS.1770 integrated loudness, and loudness matching of processed audio.

The EQ should change a track's tone, not its level (DESIGN.md §2), so processed audio is
brought back to its input's loudness. The K-weighting is two cookbook biquads (a +4 dB high
shelf at 1.5 kHz and a 38 Hz high pass, as pyloudnorm designs them for any rate), run by
`apply_eq`; gating follows BS.1770-4 with 400 ms blocks overlapping by 75 %.
"""

from __future__ import annotations

import math

import numpy as np

from jaxeq.eq import EQ, Band
from jaxeq.processing import filter_channels

K_WEIGHTING = EQ([Band("high_shelf", 1500.0, 4.0, 1 / math.sqrt(2)),
                  Band("high_pass", 38.0, q=0.5)])
BLOCK_SECONDS, BLOCK_STEP = 0.4, 0.25
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
# Peaks are kept below this after matching: the loudness match never clips.
MAX_PEAK = 10 ** (-0.1 / 20)  # -0.1 dBFS


def integrated_loudness(audio, sample_rate: int) -> float:
  """Integrated loudness in LUFS (-inf for audio that is silent after gating).

  Clips shorter than one 400 ms block are measured as a single block.
  """
  return gated_loudness(filter_channels(audio, sample_rate, K_WEIGHTING), sample_rate)


def gated_loudness(weighted: np.ndarray, sample_rate: int) -> float:
  """The loudness of already K-weighted `(channels, samples)` audio (BS.1770 gating)."""
  # Channel weights: 1 for L, R, C; 1.41 for the surrounds (BS.1770 table 3). Every step
  # below is linear in the channels' powers, so they are summed first.
  gains = np.array([1.41 if c in (3, 4) else 1.0 for c in range(len(weighted))])
  power = gains @ weighted**2
  block = int(BLOCK_SECONDS * sample_rate)
  if len(power) <= block:
    z = np.mean(power, keepdims=True)
  else:
    count = int(round((len(power) / sample_rate - BLOCK_SECONDS) / (BLOCK_SECONDS * BLOCK_STEP))) + 1
    starts = (BLOCK_SECONDS * BLOCK_STEP * np.arange(count) * sample_rate).astype(int)
    starts = starts[starts + block <= len(power)]
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    z = (cumulative[starts + block] - cumulative[starts]) / block  # weighted power per block
  with np.errstate(divide="ignore"):
    block_lufs = -0.691 + 10 * np.log10(z)
    gated = z[block_lufs > ABSOLUTE_GATE_LUFS]
    if len(gated) == 0:
      return -math.inf
    relative = -0.691 + 10 * np.log10(np.mean(gated)) + RELATIVE_GATE_LU
    gated = z[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative)]
    return float(-0.691 + 10 * np.log10(np.mean(gated)))


def match_loudness(processed, current_lufs: float,
                   target_lufs: float) -> tuple[np.ndarray, float]:
  """`processed` (now at `current_lufs`) scaled to `target_lufs`, less where its peak would
  pass -0.1 dBFS, and the gain applied (dB). Silence on either side leaves the level as it is."""
  finite = math.isfinite(target_lufs) and math.isfinite(current_lufs)
  gain_db = target_lufs - current_lufs if finite else 0.0
  peak = float(np.max(np.abs(processed)))
  if peak > 0 and peak * 10 ** (gain_db / 20) > MAX_PEAK:
    gain_db = 20 * math.log10(MAX_PEAK / peak)
  return (processed * 10 ** (gain_db / 20)).astype(processed.dtype, copy=False), gain_db
