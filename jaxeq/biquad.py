"""RBJ-cookbook biquads: coefficients and a numerically stable magnitude response.

Every function is pure and elementwise over broadcastable arrays, so it works under
`jit`, `vmap` and `grad` and for any batch shape. `kind` is a static Python string.

The magnitude response is not evaluated from the coefficients. The textbook sum
`b0 + b1 cos w + b2 cos 2w ...` cancels catastrophically in float32 for low corner
frequencies (coefficients near 1, -2, 1). Instead we use that every cookbook filter is the
bilinear transform of an analog prototype H(s) prewarped at w0, so

    |H(e^jw)| = |H_analog(j tan(w/2) / tan(w0/2))|.

Writing tan(w/2)/tan(w0/2) = u/v with u = sin(w/2) cos(w0/2) and v = cos(w/2) sin(w0/2),
every |H|^2 is a ratio of sums of squares that are homogeneous of degree 4 in (u, v).
Normalising (u, v) to the unit circle keeps every term in [0, 1], with no tan()
singularity at Nyquist and no cancellation anywhere a result depends on it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

KINDS = ("peak", "low_shelf", "high_shelf", "low_pass", "high_pass", "notch")
# Gain is meaningless for these kinds; they ignore it.
GAINLESS_KINDS = frozenset({"low_pass", "high_pass", "notch"})
# Below this (-120 dB) a response is reported as the floor, so notches and the stop band
# of a low pass at Nyquist stay finite, with finite gradients.
MIN_POWER_RATIO = 1e-12


def _check_kind(kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f"unknown filter kind {kind!r}; expected one of {', '.join(KINDS)}")


def coefficients(kind, freq_hz, gain_db, q, sample_rate, xp=jnp):
  """RBJ cookbook coefficients `(b0, b1, b2, a1, a2)`, normalised so that a0 = 1.

  `xp` is the array module: `jax.numpy` (default, differentiable) or `numpy`, which
  `EQ.to_sos` uses to design filters in float64.
  """
  _check_kind(kind)
  w0 = 2 * xp.pi * xp.asarray(freq_hz) / sample_rate
  a = 10.0 ** (xp.asarray(gain_db) / 40.0)
  cos_w0 = xp.cos(w0)
  alpha = xp.sin(w0) / (2 * xp.asarray(q))
  if kind == "peak":
    b = (1 + alpha * a, -2 * cos_w0, 1 - alpha * a)
    den = (1 + alpha / a, -2 * cos_w0, 1 - alpha / a)
  elif kind in ("low_shelf", "high_shelf"):
    sign = 1 if kind == "low_shelf" else -1
    two_sqrt_a_alpha = 2 * xp.sqrt(a) * alpha
    ap1, am1 = a + 1, a - 1
    b = (a * (ap1 - sign * am1 * cos_w0 + two_sqrt_a_alpha),
         sign * 2 * a * (am1 - sign * ap1 * cos_w0),
         a * (ap1 - sign * am1 * cos_w0 - two_sqrt_a_alpha))
    den = (ap1 + sign * am1 * cos_w0 + two_sqrt_a_alpha,
           -sign * 2 * (am1 + sign * ap1 * cos_w0),
           ap1 + sign * am1 * cos_w0 - two_sqrt_a_alpha)
  elif kind == "low_pass":
    b = ((1 - cos_w0) / 2, 1 - cos_w0, (1 - cos_w0) / 2)
    den = (1 + alpha, -2 * cos_w0, 1 - alpha)
  elif kind == "high_pass":
    b = ((1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2)
    den = (1 + alpha, -2 * cos_w0, 1 - alpha)
  else:  # notch
    b = (xp.ones_like(cos_w0), -2 * cos_w0, xp.ones_like(cos_w0))
    den = (1 + alpha, -2 * cos_w0, 1 - alpha)
  a0 = den[0]
  return (b[0] / a0, b[1] / a0, b[2] / a0, den[1] / a0, den[2] / a0)


def magnitude_db(kind, freq_hz, gain_db, q, sample_rate, at_hz, xp=jnp):
  """Magnitude response in dB of one cookbook biquad at the frequencies `at_hz`.

  All array arguments broadcast against each other; the result has their broadcast shape.
  Finite everywhere (floored at -120 dB) and, with `xp=jax.numpy`, differentiable in every
  argument. `xp=numpy` evaluates a designed EQ in float64 on the host (`EQ.response_db`),
  as `EQ.to_sos` designs it, with no XLA program per kind and grid.
  """
  _check_kind(kind)
  half_w = xp.pi * xp.asarray(at_hz) / sample_rate
  half_w0 = xp.pi * xp.asarray(freq_hz) / sample_rate
  u = xp.sin(half_w) * xp.cos(half_w0)
  v = xp.cos(half_w) * xp.sin(half_w0)
  norm = u * u + v * v
  s = u * u / norm  # sin^2 of the angle of (v, u); s + c = 1.
  c = v * v / norm
  sc = s * c
  band = (c - s) ** 2  # vanishes at the centre frequency.
  q2 = xp.asarray(q) ** 2
  if kind in ("peak", "low_shelf", "high_shelf"):
    a = 10.0 ** (xp.asarray(gain_db) / 40.0)
  if kind == "peak":
    num, den = band + a * a * sc / q2, band + sc / (a * a * q2)
  elif kind in ("low_shelf", "high_shelf"):
    low = (a * c - s) ** 2 + a * sc / q2  # the prototype's terms, with a factor a^2 outside.
    high = (c - a * s) ** 2 + a * sc / q2
    num, den = (a * a * low, high) if kind == "low_shelf" else (a * a * high, low)
  else:
    num = {"low_pass": c * c, "high_pass": s * s, "notch": band}[kind]
    den = band + sc / q2
  return 10.0 * xp.log10(xp.maximum(num / den, MIN_POWER_RATIO))


def sos_section(kind, freq_hz, gain_db, q, sample_rate) -> np.ndarray:
  """One scipy second-order section `[b0, b1, b2, 1, a1, a2]` in float64."""
  b0, b1, b2, a1, a2 = coefficients(kind, np.float64(freq_hz), np.float64(gain_db),
                                    np.float64(q), float(sample_rate), xp=np)
  return np.array([b0, b1, b2, 1.0, a1, a2], dtype=np.float64)
