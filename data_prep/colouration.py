"""Random recording-chain colourations: what an unproduced recording does to a clean track.

Each colouration is a `jaxeq.EQ` of real filters, so it is applied with `jaxeq.apply_eq` and
stored in the manifest as its JSON. Its parts, each drawn independently:

- microphone tilt: opposite low and high shelves at one pivot (a darker or brighter mic);
- proximity bass: a low-shelf boost, as a directional mic close to the source gives;
- resonances: one to three peaks or dips (room modes, body and cabinet resonances);
- roll-offs: a high-pass (small mic, low cut) and a low-pass (cheap mic or preamp).

Values are rounded (gains to 0.01 dB, frequencies and Q to 3 digits) before the filters are
designed, so the manifest's JSON is exactly what was applied.
"""

from __future__ import annotations

import numpy as np

from jaxeq.eq import BUTTERWORTH_Q, EQ, Band


def random_colouration(rng: np.random.Generator) -> EQ:
  bands = []
  tilt_db = _uniform(rng, -3.0, 3.0)
  pivot_hz = _log_uniform(rng, 500.0, 3000.0)
  bands += [Band("low_shelf", pivot_hz, tilt_db), Band("high_shelf", pivot_hz, -tilt_db)]
  if rng.random() < 0.5:
    bands.append(Band("low_shelf", _log_uniform(rng, 80.0, 300.0), _uniform(rng, 2.0, 9.0)))
  for _ in range(int(rng.integers(1, 4))):
    gain_db = _uniform(rng, 2.0, 8.0) * float(rng.choice((-1.0, 1.0)))
    freq_hz, q = _log_uniform(rng, 150.0, 8000.0), _log_uniform(rng, 1.5, 8.0)
    bands.append(Band("peak", freq_hz, gain_db, q))
  if rng.random() < 0.5:
    bands.append(Band("high_pass", _log_uniform(rng, 30.0, 150.0), q=BUTTERWORTH_Q))
  if rng.random() < 0.5:
    bands.append(Band("low_pass", _log_uniform(rng, 5000.0, 16000.0), q=BUTTERWORTH_Q))
  return EQ(bands)


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
  return round(float(rng.uniform(lo, hi)), 2)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
  return float(f"{np.exp(rng.uniform(np.log(lo), np.log(hi))):.3g}")
