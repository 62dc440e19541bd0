"""An independent float64 transcription of the RBJ Audio EQ Cookbook, for checking jaxeq."""

import numpy as np


def rbj_ba(kind, f0, gain_db, q, fs):
  """`(b, a)` of one cookbook biquad, float64, straight from the cookbook's formulas."""
  A = 10 ** (gain_db / 40)
  w0 = 2 * np.pi * f0 / fs
  cs, sn = np.cos(w0), np.sin(w0)
  alpha = sn / (2 * q)
  if kind == "peak":
    b = [1 + alpha * A, -2 * cs, 1 - alpha * A]
    a = [1 + alpha / A, -2 * cs, 1 - alpha / A]
  elif kind == "low_shelf":
    k = 2 * np.sqrt(A) * alpha
    b = [A * ((A + 1) - (A - 1) * cs + k), 2 * A * ((A - 1) - (A + 1) * cs),
         A * ((A + 1) - (A - 1) * cs - k)]
    a = [(A + 1) + (A - 1) * cs + k, -2 * ((A - 1) + (A + 1) * cs), (A + 1) + (A - 1) * cs - k]
  elif kind == "high_shelf":
    k = 2 * np.sqrt(A) * alpha
    b = [A * ((A + 1) + (A - 1) * cs + k), -2 * A * ((A - 1) + (A + 1) * cs),
         A * ((A + 1) + (A - 1) * cs - k)]
    a = [(A + 1) - (A - 1) * cs + k, 2 * ((A - 1) - (A + 1) * cs), (A + 1) - (A - 1) * cs - k]
  elif kind == "low_pass":
    b = [(1 - cs) / 2, 1 - cs, (1 - cs) / 2]
    a = [1 + alpha, -2 * cs, 1 - alpha]
  elif kind == "high_pass":
    b = [(1 + cs) / 2, -(1 + cs), (1 + cs) / 2]
    a = [1 + alpha, -2 * cs, 1 - alpha]
  elif kind == "notch":
    b = [1, -2 * cs, 1]
    a = [1 + alpha, -2 * cs, 1 - alpha]
  else:
    raise ValueError(kind)
  return np.array(b, dtype=np.float64), np.array(a, dtype=np.float64)
