"""The per-curve optimiser floor."""

import jax
import numpy as np

import jaxeq
from jaxeq import get_layout, losses, optimiser
from jaxeq.training import synthetic

LAYOUT = get_layout("paper4")


def test_optimiser_beats_random_settings_and_nearly_matches_reachable_curves():
  data = synthetic.fixed_set(LAYOUT, seed=5, split="test", size=12)
  unit, mae = optimiser.fit_curves(LAYOUT, data.curve, starts=4, steps=200)
  assert unit.shape == (12, LAYOUT.num_controls) and np.all((unit >= 0) & (unit <= 1))
  response = LAYOUT.response_db(LAYOUT.from_unit(unit), jaxeq.FREQS, jaxeq.SAMPLE_RATE)
  np.testing.assert_allclose(mae, losses.correction_mae(response, data.curve), rtol=1e-4, atol=1e-5)
  random_unit = jax.random.uniform(jax.random.PRNGKey(0), (12, LAYOUT.num_controls))
  random_mae = np.asarray(losses.response_mae(LAYOUT, random_unit, data.curve))
  assert np.all(mae <= random_mae)
  # Every curve is the response of some settings, so a good fit gets close to 0 dB.
  assert np.median(mae) < 0.2
