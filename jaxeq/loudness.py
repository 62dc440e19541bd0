"""ITU-R BS.1770 integrated loudness, and loudness matching of processed audio.

The EQ should change a track's tone, not its level (DESIGN.md §2), so processed audio is
brought back to its input's loudness. The K-weighting is two cookbook biquads (a +4 dB high
shelf at 1.5 kHz and a 38 Hz high pass, as pyloudnorm designs them for any rate), run by
`filter_channels`; gating follows BS.1770-4 with 400 ms blocks overlapping by 75 %.

Where the make-up gain would push peaks over the ceiling, the true-peak limiter
(`jaxeq.limiter`) takes them down (`match_loudness`), rather than the whole track: turning a
boosted drum hit down to fit its peak lost up to 6.5 LU.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxeq.eq import EQ, Band
from jaxeq.filtering import filter_channels
from jaxeq.limiter import LOSSLESS_CEILING_DBTP, MAX_LIMITING_DB, TruePeaks, peak_reduction_db

K_WEIGHTING = EQ([Band("high_shelf", 1500.0, 4.0, 1 / math.sqrt(2)),
                  Band("high_pass", 38.0, q=0.5)])
BLOCK_SECONDS, BLOCK_STEP = 0.4, 0.25
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
# Limiting costs a little loudness; the make-up gain is raised to win it back, by at most this.
MAX_EXTRA_GAIN_DB, MAX_ROUNDS = 12.0, 8
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
  return np.einsum("c,cn,cn->n", gains, weighted, weighted)  # no (channels, samples) squares


def power_loudness(power: np.ndarray, sample_rate: int) -> float:
  """The gated loudness (LUFS) of a `weighted_power`."""
  return gate(block_powers(power, gating_blocks(len(power), sample_rate)))


def block_powers(power: np.ndarray, blocks: tuple[np.ndarray, int]) -> np.ndarray:
  """The mean of `power` over each of `blocks` (`gating_blocks`): the blocks' starts and ends
  cut `power` into segments (100 ms ones, mostly), summed at once and then added up, four to
  a block."""
  starts, block = blocks
  edges, edge = np.unique(np.concatenate([starts, starts + block]), return_inverse=True)
  segments = np.add.reduceat(power[:edges[-1]], edges[:-1]) if len(edges) > 1 else []
  cumulative = np.concatenate([[0.0], np.cumsum(segments)])  # the sum up to each edge
  first, end = edge[:len(starts)], edge[len(starts):]
  return (cumulative[end] - cumulative[first]) / block


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
