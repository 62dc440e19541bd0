"""Running an EQ over audio as real IIR filters."""

from __future__ import annotations

import numpy as np
from scipy import signal

from jaxeq.audio_io import check_audio
from jaxeq.eq import EQ


def apply_eq(audio, sample_rate: int, eq: EQ) -> np.ndarray:
  """`audio` filtered by `eq`, designed at the audio's own rate; same shape and dtype out.

  The biquads run in float64 (scipy `sosfilt`), which low corner frequencies at high
  sample rates need; channels are filtered independently.
  """
  audio = check_audio(audio, sample_rate)
  sos = eq.to_sos(sample_rate)
  # One contiguous row per channel: sosfilt's inner loop runs along the last axis.
  channels = np.ascontiguousarray(np.atleast_2d(audio.T), dtype=np.float64)
  out = signal.sosfilt(sos, channels, axis=-1)
  return out.T.reshape(audio.shape).astype(audio.dtype, copy=False)
