"""The per-curve optimiser: the floor a matching network is measured against (DESIGN.md §2).

Each curve gets its own fit: Adam on the layout's normalised settings (through a sigmoid,
so every iterate is a valid EQ) from several starts, keeping the best. Given a correction's
quiet band, it minimises what a network is fine-tuned on (`losses.correction_error`): the
MAE, within the rule that no boost goes over 3 dB there. Everything is
batched with `vmap` over curves and starts and runs as one jitted program per chunk.

`OptimiserMatcher` is the optimiser as a matcher; `RefinedMatcher` refits a network's EQs
where a sample rate's layout cannot hold them, or where a reference asks for the floor.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxeq import losses
from jaxeq.layouts import Layout
from jaxeq.spectrum import FREQS, SAMPLE_RATE


def fit_curves(layout: Layout, curves_db, starts: int = 8, steps: int = 500,
               learning_rate: float = 0.05, seed: int = 0, chunk: int = 256, quiet=None,
               first=None):
  """Best settings found per curve: `(unit (N, num_controls), mae_db (N,))` as NumPy.

  `quiet` (booleans like `curves_db`, `jaxeq.spectrum.Correction.quiet`) is where no boost may
  go over 3 dB (default: nowhere); `mae_db` is the plain MAE of the fit. One start
  is `first` (`(N, num_controls)` in [0, 1], e.g. a network's settings) or the middle of
  every range; the others are uniform in [0, 1]^n.
  """
  curves = np.atleast_2d(np.asarray(curves_db, np.float32))
  quiet = np.zeros(curves.shape, bool) if quiet is None else np.broadcast_to(
      np.asarray(quiet, bool), curves.shape)
  if starts < 1 or steps < 1:
    raise ValueError(f"starts={starts} and steps={steps} must be >= 1")
  # Kept off the ends, where the sigmoid's logit is infinite.
  first = np.full((len(curves), layout.num_controls), 0.5, np.float32) if first is None else \
      np.clip(np.asarray(first, np.float32).reshape(len(curves), -1), 0.02, 0.98)
  fit = _fit_chunk(layout, starts, steps, learning_rate)
  units, maes = [], []
  for start in range(0, len(curves), chunk):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), start)
    unit, mae = fit(jnp.asarray(curves[start:start + chunk]),
                    jnp.asarray(quiet[start:start + chunk]), key,
                    jnp.asarray(first[start:start + chunk]))
    units.append(np.asarray(unit))
    maes.append(np.asarray(mae))
  return np.concatenate(units), np.concatenate(maes)


@functools.lru_cache(maxsize=8)
def _fit_chunk(layout: Layout, starts: int, steps: int, learning_rate: float):
  import optax  # here: a track processed without a reference or a layout never needs it
  optimizer = optax.adam(learning_rate)

  def response(logits):
    return layout.response_db(layout.from_unit(jax.nn.sigmoid(logits)), FREQS, SAMPLE_RATE)

  def objective(logits, curve, quiet):
    return losses.correction_error(response(logits), curve, quiet)

  def fit_one(curve, quiet, logits):
    def update(carry, _):
      logits, opt_state = carry
      grads = jax.grad(objective)(logits, curve, quiet)
      updates, opt_state = optimizer.update(grads, opt_state)
      return (optax.apply_updates(logits, updates), opt_state), None

    (logits, _), _ = jax.lax.scan(update, (logits, optimizer.init(logits)), None, length=steps)
    return (jax.nn.sigmoid(logits), objective(logits, curve, quiet),
            losses.correction_mae(response(logits), curve))

  @jax.jit
  def fit(curves, quiet, key, first):
    n, k = curves.shape[0], layout.num_controls
    unit0 = jax.random.uniform(key, (n, starts, k), minval=0.02, maxval=0.98).at[:, 0].set(first)
    unit, error, mae = jax.vmap(jax.vmap(fit_one, (None, None, 0)))(
        curves, quiet, jnp.log(unit0 / (1 - unit0)))
    best = jnp.argmin(error, axis=1)
    return unit[jnp.arange(n), best], mae[jnp.arange(n), best]

  return fit


class OptimiserMatcher:
  """A matcher for any layout without a trained network: each curve gets its own fit.

  Answers the matchers' one call, `predict(curves_db, quiet=None)`, and
  `for_sample_rate(sample_rate)`, as `jaxeq.Matcher` does; slower (about a second a curve on
  a CPU) but exact to the floor.
  """

  def __init__(self, layout: Layout, starts: int = 8, steps: int = 500, seed: int = 0):
    self.layout, self.starts, self.steps, self.seed = layout, starts, steps, seed
    self._at_rate = {}

  def predict(self, curves_db, quiet=None, first=None) -> list:
    """One `EQ` per curve, boosting at most 3 dB where `quiet` (booleans like the curves,
    `Correction.quiet`) is true; `first` (`Settings` in the layout's ranges, one row a curve)
    is one of the starts."""
    unit, _ = fit_curves(self.layout, curves_db, self.starts, self.steps, seed=self.seed,
                         quiet=quiet,
                         first=None if first is None else self.layout.to_unit(first))
    return self.layout.eqs_from_unit(unit)

  def for_sample_rate(self, sample_rate: float, exact: bool = False) -> "OptimiserMatcher":
    """This optimiser on the layout `sample_rate` allows (`Layout.for_sample_rate`), made
    once per layout; every fit is as exact as the layout can be, so `exact` changes nothing."""
    del exact
    layout = self.layout.for_sample_rate(sample_rate)
    if layout == self.layout:
      return self
    if layout not in self._at_rate:
      self._at_rate[layout] = OptimiserMatcher(layout, self.starts, self.steps, self.seed)
    return self._at_rate[layout]


class RefinedMatcher:
  """A network's EQs on a narrower `layout` (a sample rate's): the per-curve optimiser refits
  a curve from the network's settings where one of its bands lies outside `layout`, or every
  curve with `always` (a request to match as closely as the layout can: the floor).

  What `jaxeq.Matcher.for_sample_rate` gives; the same `predict` as every matcher.
  """

  def __init__(self, network, layout: Layout, always: bool = False):
    self.network, self.layout, self.always = network, layout, always
    self.optimiser = OptimiserMatcher(layout)

  def predict(self, curves_db, quiet=None) -> list:
    """One `EQ` per curve within `layout`, boosting at most 3 dB where `quiet` is true."""
    eqs = self.network.predict(curves_db, quiet)
    refit = [i for i, eq in enumerate(eqs) if self.always or not self.layout.allows(eq)]
    if refit:
      curves = np.atleast_2d(np.asarray(curves_db, np.float32))
      if quiet is not None:
        quiet = np.broadcast_to(np.asarray(quiet, bool), curves.shape)[refit]
      first = jax.tree.map(lambda *rows: jnp.stack(rows),
                           *(self.layout.from_eq(eqs[i]) for i in refit))
      for i, eq in zip(refit, self.optimiser.predict(curves[refit], quiet, first=first)):
        eqs[i] = eq
    return eqs
