"""Matching losses (Nercessian 2020): response error + parameter error + L1 on gains.

The response error is the paper's metric: mean |target − response| over `FREQS`, both
zero-centred (DESIGN.md §2), so a network is never asked to match overall level.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxeq.layouts import Layout
from jaxeq.spectrum import FREQS, SAMPLE_RATE, zero_centre


def response_mae(layout: Layout, unit: jax.Array, target_db: jax.Array) -> jax.Array:
  """Per-curve MAE (dB) between `target_db` `(..., 256)` and the response of `unit` settings."""
  response = layout.response_db(layout.from_unit(unit), FREQS, SAMPLE_RATE)
  return jnp.mean(jnp.abs(zero_centre(target_db) - zero_centre(response)), axis=-1)


def matching_loss(layout: Layout, unit: jax.Array, target_db: jax.Array,
                  target_unit: jax.Array | None = None, response_weight: float = 1.0,
                  param_weight: float = 0.0, gain_weight: float = 0.0):
  """The weighted loss of predicted `unit` settings, and its parts (batch means).

  `param_weight` needs `target_unit` (the true settings, in [0, 1]); `gain_weight` puts an
  L1 penalty on the predicted gains (dB), which prefers leaving a band flat to using it.
  """
  metrics = {"mae_db": jnp.mean(response_mae(layout, unit, target_db))}
  loss = response_weight * metrics["mae_db"]
  if param_weight:
    if target_unit is None:
      raise ValueError("param_weight > 0 needs the target settings (target_unit)")
    metrics["param_l1"] = jnp.mean(jnp.abs(unit - target_unit))
    loss = loss + param_weight * metrics["param_l1"]
  if gain_weight:
    metrics["gain_l1_db"] = jnp.mean(jnp.abs(layout.from_unit(unit).gain_db))
    loss = loss + gain_weight * metrics["gain_l1_db"]
  metrics["loss"] = loss
  return loss, metrics
