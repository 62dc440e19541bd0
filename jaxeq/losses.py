"""Matching losses (Nercessian 2020): response error + parameter error + L1 on gains.

The response error is the paper's metric: mean |target − response| over `FREQS`, both
zero-centred (DESIGN.md §2), so a network is never asked to match overall level. With a
`weight` both the centring and the mean count only the frequencies it weights.
`correction_error` is what every matcher of a real track's correction minimises, the network
in fine-tuning and the per-curve optimiser alike: the paper's mean |D − R| over the whole
curve (`correction_mae`), plus how far the EQ breaks the rule that it boosts at most
`QUIET_BOOST_DB` in the track's quiet band. There the EQ's response is taken as it is, not
centred: the correction is already centred on the track's band and 0 outside it, so matching
it leaves the track's loudness about where it was, and an EQ that cuts everything by 8 dB to
be made up by the make-up gain matches it worse than one that does not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxeq.layouts import Layout
from jaxeq.spectrum import FREQS, QUIET_BOOST_DB, SAMPLE_RATE, zero_centre

# Each dB a boost goes over `QUIET_BOOST_DB` in the quiet band costs as much as a dB of MAE over
# the whole curve: `AutoEQ` scales every boost down until the rule holds, so a matcher that
# breaks it loses far more of its match as applied than it won.
QUIET_BOOST_WEIGHT = 1.0


def response_mae(layout: Layout, unit: jax.Array, target_db: jax.Array,
                 weight: jax.Array | None = None) -> jax.Array:
  """Per-curve MAE (dB) between `target_db` `(..., 256)` and the response of `unit` settings,
  over the frequencies `weight` (`(..., 256)` in [0, 1]) counts, or all of them."""
  return curve_mae(layout.response_db(layout.from_unit(unit), FREQS, SAMPLE_RATE), target_db,
                   weight)


def curve_mae(response_db: jax.Array, target_db: jax.Array,
              weight: jax.Array | None = None) -> jax.Array:
  """`response_mae` of a response already at hand (`(..., 256)` dB)."""
  error = jnp.abs(zero_centre(target_db, weight) - zero_centre(response_db, weight))
  if weight is None:
    return jnp.mean(error, axis=-1)
  return jnp.sum(weight * error, axis=-1) / jnp.maximum(jnp.sum(weight, axis=-1), 1e-6)


def quiet_boost_excess(response_db: jax.Array, quiet: jax.Array) -> jax.Array:
  """Per curve, how far (dB) `response_db` `(..., 256)` boosts over `QUIET_BOOST_DB` where
  `quiet` (`jaxeq.spectrum.quiet_band`) is true: what `AutoEQ` would scale away."""
  excess = jnp.maximum(response_db - QUIET_BOOST_DB, 0.0)
  return jnp.max(jnp.where(quiet, excess, 0.0), axis=-1)


def correction_mae(response_db: jax.Array, curve_db: jax.Array) -> jax.Array:
  """Per curve, the paper's MAE of an EQ's response on a correction `(..., 256)`: the mean
  |D − R| over the whole curve, the response as the EQ makes it (level included)."""
  return jnp.mean(jnp.abs(jnp.asarray(curve_db) - response_db), axis=-1)


def correction_error(response_db: jax.Array, curve_db: jax.Array, quiet: jax.Array | None = None,
                     quiet_boost_weight: float = QUIET_BOOST_WEIGHT) -> jax.Array:
  """Per curve, what a matcher of a correction (`jaxeq.spectrum.correction`) minimises:
  `correction_mae`, plus `quiet_boost_weight` x `quiet_boost_excess` given `quiet`."""
  error = correction_mae(response_db, curve_db)
  if quiet is None:
    return error
  return error + quiet_boost_weight * quiet_boost_excess(response_db, quiet)


def matching_loss(layout: Layout, unit: jax.Array, target_db: jax.Array,
                  target_unit: jax.Array | None = None, response_weight: float = 1.0,
                  param_weight: float = 0.0, gain_weight: float = 0.0,
                  weight: jax.Array | None = None):
  """The weighted loss of predicted `unit` settings, and its parts (batch means).

  `param_weight` needs `target_unit` (the true settings, in [0, 1]); `gain_weight` puts an
  L1 penalty on the predicted gains (dB), which prefers leaving a band flat to using it;
  `weight` is `response_mae`'s.
  """
  metrics = {"mae_db": jnp.mean(response_mae(layout, unit, target_db, weight))}
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
