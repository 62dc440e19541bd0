"""The shared trainer: parallel modes agree, checkpoints keep the right steps, NaN guard."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxeq.training import checkpoints, trainer

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: XLA must see the flag before JAX starts.
PARALLEL_SCRIPT = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np, optax
    from jaxeq import get_layout, losses, matcher_networks
    from jaxeq.training import parallel, synthetic, trainer
    assert jax.device_count() == 4, jax.devices()
    layout = get_layout("paper4")
    model = matcher_networks.make_model("cnn", layout.num_controls, features=(8, 8), width=32,
                                        depth=2)
    def loss_fn(p, b, rng):
      unit = model.apply({"params": p}, b.curve)
      return losses.matching_loss(layout, unit, b.curve, b.unit, param_weight=0.1)
    stream = synthetic.CurveStream(layout, seed=0, batch_size=32, size=256)
    optimizer = optax.sgd(0.05, momentum=0.9)  # Adam would amplify rounding in ~0 gradients
    state0 = trainer.init_state(matcher_networks.init_params(model, jax.random.PRNGKey(0)),
                                optimizer, 0)
    step = trainer.make_train_step(loss_fn, optimizer)
    single = jax.jit(lambda s, b: step(s, b, None))
    state = state0
    for i in range(5):
      state, _ = single(state, stream(i))
    results = {"single": state["params"]}
    for mode in ("mesh", "pmap"):
      par = parallel.DataParallel(step, mode)
      s = par.put_state(state0)
      for i in range(5):
        s, metrics = par.step(s, par.put_batch(stream(i)))
      out = par.get_state(s)
      assert int(out["step"]) == 5
      if mode == "mesh":
        assert len(jax.tree.leaves(s["params"])[0].sharding.device_set) == 4
      results[mode] = out["params"]
    ref = jax.tree.leaves(state0["params"])
    for mode in ("mesh", "pmap"):
      for a, b, r in zip(jax.tree.leaves(results["single"]), jax.tree.leaves(results[mode]), ref):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)
        assert not np.allclose(np.asarray(a), np.asarray(r))  # the steps did move the params
    print("parallel modes agree")
""")


def test_one_device_mesh_and_pmap_steps_give_the_same_parameters():
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  result = subprocess.run([sys.executable, "-c", PARALLEL_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "parallel modes agree" in result.stdout


# --- a tiny regression problem for the loop itself -----------------------------------

W_TRUE = np.array([[1.5], [-2.0], [0.5]], np.float32)


def regression_batch(step, poison_from=None):
  rng = np.random.default_rng(step)
  x = rng.normal(size=(16, 3)).astype(np.float32)
  y = x @ W_TRUE
  if poison_from is not None and step >= poison_from:
    y = y * np.nan
  return {"x": x, "y": y}


def regression_loss(params, batch, rng):
  error = batch["x"] @ params["w"] + params["b"] - batch["y"]
  loss = jnp.mean(error**2)
  return loss, {"mse": loss}


def tiny_config(**overrides):
  config = trainer.default_config()
  config.update({**dict(num_steps=40, log_every=5, eval_every=5, checkpoint_every=5,
                        keep_checkpoints=2, progress=False), **overrides})
  return config


PARAMS = {"w": jnp.zeros((3, 1)), "b": jnp.zeros((1,))}


def test_keeps_the_last_k_and_the_best_checkpoint_and_writes_metrics(tmp_path):
  # A validation metric that is best at step 10, so the best is not among the last two.
  val_by_step = iter([5.0, 1.0, 4.0, 3.0, 3.5, 2.5, 2.0, 2.2])
  state = trainer.train(tiny_config(), tmp_path, init_params=PARAMS, loss_fn=regression_loss,
                        batch_fn=regression_batch, optimizer=optax.sgd(0.1),
                        eval_fn=lambda p: {"loss": next(val_by_step)})
  np.testing.assert_allclose(np.asarray(state["params"]["w"]), W_TRUE, atol=1e-3)
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [10, 35, 40]
  params, step = checkpoints.restore_params(tmp_path, PARAMS, "best")
  assert step == 10
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["split"] == "train"] == list(range(5, 41, 5))
  assert {"loss", "mse", "grad_norm", "steps_per_s"} <= set(records[0])
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_nan_guard_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
  with pytest.raises(trainer.TrainingDiverged,
                     match=r"training diverged at step 23: loss is nan; .* last good checkpoint: step 20"):
    trainer.train(tiny_config(), tmp_path, init_params=PARAMS, loss_fn=regression_loss,
                  batch_fn=lambda s: regression_batch(s, poison_from=22),
                  optimizer=optax.sgd(0.1))
  params, step = checkpoints.restore_params(tmp_path, PARAMS, "latest")
  assert step == 20
  assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(params))


def test_bad_config_values_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="config.parallel='gpu'"):
    trainer.train(tiny_config(parallel="gpu"), tmp_path, init_params=PARAMS,
                  loss_fn=regression_loss, batch_fn=regression_batch, optimizer=optax.sgd(0.1))
  with pytest.raises(ValueError, match="config.num_steps=0"):
    trainer.train(tiny_config(num_steps=0), tmp_path, init_params=PARAMS,
                  loss_fn=regression_loss, batch_fn=regression_batch, optimizer=optax.sgd(0.1))


def test_epoch_shuffle_visits_every_example_once_an_epoch_and_is_pure():
  shuffle = trainer.EpochShuffle(size=10, batch_size=3, seed=5)
  assert shuffle.steps_per_epoch == 3
  first = np.concatenate([shuffle(step) for step in range(3)])
  assert len(set(first.tolist())) == 9  # one left out of the epoch
  second = np.concatenate([shuffle(step) for step in range(3, 6)])
  assert not np.array_equal(first, second)  # reshuffled
  np.testing.assert_array_equal(shuffle(4), trainer.EpochShuffle(10, 3, 5)(4))
  with pytest.raises(ValueError, match="batch_size=11"):
    trainer.EpochShuffle(size=10, batch_size=11, seed=0)
