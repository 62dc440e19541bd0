"""Running an EQ over audio as real IIR filters.

`apply_eq` and `filter_channels` check their audio; `apply_eq_checked` and `eq_channels`
take audio already checked (`jaxeq.audio_io.check_audio`).
"""

from __future__ import annotations

import numpy as np

from jaxeq.audio_io import check_audio
from jaxeq.eq import EQ


def apply_eq(audio, sample_rate: int, eq: EQ) -> np.ndarray:
  """`audio` filtered by `eq`, designed at the audio's own rate; same shape and dtype out."""
  return apply_eq_checked(check_audio(audio, sample_rate), sample_rate, eq)


def filter_channels(audio, sample_rate: int, eq: EQ) -> np.ndarray:
  """`(channels, samples)` float64: each channel of `audio` through `eq`'s biquads.

  The biquads run in float64 (scipy `sosfilt`), which low corner frequencies at high
  sample rates need.
  """
  return eq_channels(np.atleast_2d(check_audio(audio, sample_rate).T), sample_rate, eq)


def apply_eq_checked(audio: np.ndarray, sample_rate: int, eq: EQ) -> np.ndarray:
  """`apply_eq` of audio already checked."""
  out = eq_channels(np.atleast_2d(audio.T), sample_rate, eq)
  return out.T.reshape(audio.shape).astype(audio.dtype, copy=False)


def eq_channels(channels: np.ndarray, sample_rate: int, eq: EQ) -> np.ndarray:
  """`(channels, samples)` float64 through `eq`: the core of `filter_channels`, for checked
  audio. `channels` may be any float array, a transposed view too: sosfilt copies it into one
  contiguous float64 row per channel (its inner loop runs along the last axis), a copy made
  once."""
  from scipy import signal  # here: slow to import, and analysing a track needs no filter
  return signal.sosfilt(eq.to_sos(sample_rate), channels, axis=-1)
