"""BS.1770 loudness against pyloudnorm, and loudness matching that never clips."""

import numpy as np
import pyloudnorm
import pytest

from jaxeq import EQ, Band, apply_eq
from jaxeq.loudness import integrated_loudness, match_loudness


@pytest.mark.parametrize("rate, channels", [(44100, 2), (48000, None), (96000, 5), (22050, 1)])
def test_integrated_loudness_agrees_with_pyloudnorm(rate, channels):
  rng = np.random.default_rng(rate)
  n = int(7.3 * rate)
  shape = (n,) if channels is None else (n, channels)
  audio = 0.2 * rng.standard_normal(shape)
  audio[: n // 3] *= 0.01  # a quiet passage, which the relative gate leaves out
  want = pyloudnorm.Meter(rate).integrated_loudness(audio)
  assert integrated_loudness(audio, rate) == pytest.approx(want, abs=0.02)


def test_silence_is_minus_infinity_and_short_clips_are_one_block():
  assert integrated_loudness(np.zeros(44100), 44100) == -np.inf
  short = 0.1 * np.random.default_rng(0).standard_normal(4410)
  assert np.isfinite(integrated_loudness(short, 44100))


def test_matching_restores_the_input_loudness_without_clipping():
  rng = np.random.default_rng(1)
  original = (0.05 * rng.standard_normal((5 * 44100, 2))).astype(np.float32)
  boosted = apply_eq(original, 44100, EQ([Band("peak", 3000, 9.0, 0.7)]))
  matched, gain_db = match_loudness(boosted, integrated_loudness(boosted, 44100),
                                    integrated_loudness(original, 44100))
  assert gain_db == pytest.approx(integrated_loudness(original, 44100)
                                  - integrated_loudness(boosted, 44100))
  assert matched.dtype == np.float32 and matched.shape == original.shape
  assert integrated_loudness(matched, 44100) == pytest.approx(
      integrated_loudness(original, 44100), abs=0.01)
  loud = np.clip(rng.standard_normal(44100) * 0.5, -0.99, 0.99)
  quieter = apply_eq(loud, 44100, EQ([Band("high_shelf", 2000, -12.0)]))
  matched, gain_db = match_loudness(quieter, integrated_loudness(quieter, 44100),
                                    integrated_loudness(loud, 44100))  # as loud would clip
  assert np.max(np.abs(matched)) <= 10 ** (-0.1 / 20) + 1e-9
  assert gain_db < integrated_loudness(loud, 44100) - integrated_loudness(quieter, 44100)
