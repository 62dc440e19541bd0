"""The consistency measure (`benchmarks.autoeq_real`, `benchmarks.correction_variants`): a
track is coloured as a bad microphone or room would colour it, and an automatic EQ should
bring the original and the coloured copy to the same tonal balance."""

from __future__ import annotations

import numpy as np

from jaxeq.eq import EQ, Band
from jaxeq.spectrum import FREQS, SAMPLE_RATE, zero_centre

COLOURATION_DB = 9.0


def random_colouration(rng: np.random.Generator) -> EQ:
  """A bad microphone or room: low shelf, two peaks, high shelf, gains uniform in ±9 dB."""
  def log_uniform(lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

  def gain():
    return float(rng.uniform(-COLOURATION_DB, COLOURATION_DB))

  return EQ([Band("low_shelf", log_uniform(50, 400), gain()),
             Band("peak", log_uniform(100, 2000), gain(), log_uniform(0.5, 3)),
             Band("peak", log_uniform(1000, 10000), gain(), log_uniform(0.5, 3)),
             Band("high_shelf", log_uniform(2000, 12000), gain())])


def audible_distance(a_db, b_db, weight) -> float:
  """Mean |a − b| of two spectra over `weight`'s band, both centred on it (level is not tone)."""
  diff = zero_centre(a_db, weight) - zero_centre(b_db, weight)
  return float(np.sum(weight * np.abs(diff)) / np.sum(weight))


def after_eq(spectrum_db, eq: EQ) -> np.ndarray:
  return spectrum_db + eq.response_db(FREQS, SAMPLE_RATE)
