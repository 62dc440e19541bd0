"""Matching models and losses: one training step each, valid outputs, finite gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxeq import get_layout, losses, matcher_networks
from jaxeq.training import synthetic, trainer

LAYOUT = get_layout("paper4")


@pytest.fixture(scope="module")
def batch():
  return synthetic.fixed_set(LAYOUT, seed=3, split="val", size=32)


@pytest.mark.parametrize("name", matcher_networks.MODELS)
def test_one_training_step_lowers_the_loss_on_its_batch(name, batch):
  model = matcher_networks.make_model(name, LAYOUT.num_controls)
  params = matcher_networks.init_params(model, jax.random.PRNGKey(0))

  def loss_fn(p, b, rng):
    unit = model.apply({"params": p}, b.curve)
    return losses.matching_loss(LAYOUT, unit, b.curve, b.unit, param_weight=0.1)

  optimizer = optax.sgd(1e-3)  # a small step along the gradient must help
  step = jax.jit(trainer.make_train_step(loss_fn, optimizer))
  state = trainer.init_state(params, optimizer, seed=0)
  before, _ = loss_fn(params, batch, None)
  state, metrics = step(state, batch)
  after, _ = loss_fn(state["params"], batch, None)
  assert int(state["step"]) == 1
  assert np.isfinite(float(metrics["loss"])) and float(metrics["grad_norm"]) > 0
  assert float(after) < float(before)


@pytest.mark.parametrize("name", matcher_networks.MODELS)
def test_predictions_are_valid_settings_of_the_layout(name, batch):
  model = matcher_networks.make_model(name, LAYOUT.num_controls)
  params = matcher_networks.init_params(model, jax.random.PRNGKey(1))
  # Extreme inputs push the sigmoid to its ends; the settings must stay in range.
  unit = model.apply({"params": params}, jnp.concatenate([batch.curve, 1e4 * batch.curve]))
  assert unit.shape == (64, LAYOUT.num_controls)
  assert np.all((np.asarray(unit) >= 0) & (np.asarray(unit) <= 1))
  settings = LAYOUT.from_unit(unit)
  for i, band in enumerate(LAYOUT.bands):
    for control in ("freq_hz", "gain_db", "q"):
      lo, hi = getattr(band, control)
      values = np.asarray(getattr(settings, control))[:, i]
      assert np.all((values >= lo * (1 - 1e-5) - 1e-5) & (values <= hi * (1 + 1e-5) + 1e-5))


def test_loss_gradients_are_finite_even_at_the_ends_of_the_ranges(batch):
  # Settings at 0 and 1 are the extreme EQs: highest Q, lowest frequency, ±12 dB.
  for value in (0.0, 1.0, 0.5):
    unit = jnp.full((len(batch.curve), LAYOUT.num_controls), value)
    grads = jax.grad(lambda u: losses.matching_loss(LAYOUT, u, batch.curve, batch.unit,
                                                    param_weight=0.1, gain_weight=0.01)[0])(unit)
    assert np.all(np.isfinite(np.asarray(grads)))
    assert np.any(np.asarray(grads) != 0)


def test_response_loss_is_zero_for_the_true_settings_and_level_blind(batch):
  mae = losses.response_mae(LAYOUT, batch.unit, batch.curve + 5.0)  # level is not the EQ's job
  assert float(jnp.max(mae)) < 1e-3
  wrong = losses.response_mae(LAYOUT, 1 - batch.unit, batch.curve)
  assert float(jnp.mean(wrong)) > 0.5


def test_parameter_loss_needs_the_target_settings(batch):
  with pytest.raises(ValueError, match="target_unit"):
    losses.matching_loss(LAYOUT, batch.unit, batch.curve, None, param_weight=1.0)


def test_unknown_model_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown model 'rnn'"):
    matcher_networks.make_model("rnn", 10)


@pytest.mark.parametrize("shape", [(4, 256), (3, 7, 16)])
def test_layer_norm_gives_flax_layer_norms_outputs_and_gradients(shape):
  # The shipped matchers were trained with nn.LayerNorm; jaxeq's faster one must be the same
  # function with the same parameters, and its hand-written gradient the true one.
  import flax.linen as nn
  from jax.flatten_util import ravel_pytree
  x = 3.0 * jax.random.normal(jax.random.PRNGKey(1), shape) + 0.5
  ours, theirs = matcher_networks.LayerNorm(), nn.LayerNorm()
  params = jax.tree.map(lambda p: p + jax.random.uniform(jax.random.PRNGKey(2), p.shape),
                        theirs.init(jax.random.PRNGKey(0), x))
  assert jax.tree.structure(ours.init(jax.random.PRNGKey(0), x)) == jax.tree.structure(params)
  np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), atol=1e-5)
  loss = lambda module: lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))  # noqa: E731
  for argnum in (0, 1):
    np.testing.assert_allclose(
        ravel_pytree(jax.grad(loss(ours), argnum)(params, x))[0],
        ravel_pytree(jax.grad(loss(theirs), argnum)(params, x))[0], atol=1e-4)
