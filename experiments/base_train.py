"""Stage 1: train an EQ matcher self-supervised on random-EQ curves (DESIGN.md §1).

Full run (paper: 156,730 curves an epoch, fixed 10,000-curve validation and test sets):

    python -m experiments.base_train --workdir=workdirs/base_cnn --config.model=cnn
    python -m experiments.base_train --workdir=workdirs/base_mlp --config.model=mlp

Any config value can be overridden (`--config.layout=six_band --config.num_epochs=5`); the
smoke variant runs in well under a minute:

    python -m experiments.base_train --workdir=/tmp/smoke --config=experiments/base_train.py:smoke

A run resumes from its workdir's last checkpoint. `--export=DIR` writes the best
checkpoint as a matcher directory (`jaxeq.load_matcher(DIR)`) with its model card.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxeq import losses, matcher_networks, plots
from jaxeq.atomic import write_text_atomically
from jaxeq.layouts import get_layout
from jaxeq.matcher import Matcher
from jaxeq.spectrum import FREQS, SAMPLE_RATE
from jaxeq.training import checkpoints, synthetic, trainer


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The base-training config; `variant='smoke'` is a seconds-long run for tests."""
  config = trainer.default_config()
  config.model = "cnn"  # cnn | mlp
  config.model_kwargs = ml_collections.ConfigDict()  # e.g. width, depth, features
  config.layout = "paper4"  # a built-in layout name
  config.scheme = "paper"  # paper | nercessian (the settings sampler)
  config.max_db = 12.0  # curves are scaled to within ±max_db, as jaxeq.difference does
  config.smoothing_octaves = 0.0  # optional smoothing of the training curves
  config.train_size = synthetic.PAPER_TRAIN_SIZE
  config.val_size = 10_000
  config.test_size = 10_000
  config.batch_size = 256
  config.num_epochs = 30
  config.learning_rate = 1e-3
  config.warmup_steps = 500
  config.grad_clip = 1.0
  config.response_weight = 1.0  # L1 of the zero-centred responses (dB)
  config.param_weight = 0.1  # L1 of the normalised settings
  config.gain_weight = 0.0  # L1 of the predicted gains (dB)
  config.best_metric = "mae_db"
  config.eval_every = config.checkpoint_every = config.train_size // config.batch_size  # an epoch
  config.log_every = 100
  if variant == "smoke":
    config.train_size = 2048
    config.val_size = config.test_size = 256
    config.batch_size = 64
    config.num_epochs = 2
    config.warmup_steps = 8
    config.log_every = 8
    config.eval_every = config.checkpoint_every = 16
  elif variant:
    raise ValueError(f"unknown config variant {variant!r}; expected '' or 'smoke'")
  return config


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  """Trains (resuming from `workdir`), then scores the best checkpoint on the test set.

  Returns the test metrics, also written to `workdir/test_metrics.json`, with a plot of
  test curves and their matches in `workdir/test_matches.png`.
  """
  workdir = Path(workdir)
  layout = get_layout(config.layout)
  curve_kwargs = dict(scheme=config.scheme, max_db=config.max_db,
                      smoothing_octaves=config.smoothing_octaves)
  stream = synthetic.CurveStream(layout, config.seed, config.batch_size, config.train_size,
                                 **curve_kwargs)
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.num_steps = config.num_epochs * stream.steps_per_epoch
    config.update(trainer.topology())
  model = matcher_networks.make_model(config.model, layout.num_controls, **config.model_kwargs)
  weights = dict(response_weight=config.response_weight, param_weight=config.param_weight,
                 gain_weight=config.gain_weight)

  def loss_fn(params, batch, rng):
    del rng  # the model is deterministic
    unit = model.apply({"params": params}, batch.curve)
    return losses.matching_loss(layout, unit, batch.curve, batch.unit, **weights)

  val = synthetic.fixed_set(layout, config.seed, "val", config.val_size, **curve_kwargs)
  evaluate = make_evaluator(model, layout, weights)
  schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps,
                                                config.num_steps, config.learning_rate * 0.01)
  optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(schedule))
  params = matcher_networks.init_params(model, jax.random.PRNGKey(config.seed))
  trainer.train(config, workdir, init_params=params, loss_fn=loss_fn, batch_fn=stream,
                optimizer=optimizer, eval_fn=lambda p: evaluate(p, val))

  best, step = checkpoints.restore_params(workdir, params, "best")
  test = synthetic.fixed_set(layout, config.seed, "test", config.test_size, **curve_kwargs)
  metrics = {**evaluate(best, test), "step": step, "num_steps": config.num_steps,
             "train_seconds": trainer.train_seconds(workdir)}
  if jax.process_index() == 0:
    write_text_atomically(workdir / "test_metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_text_atomically(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n")
    plot_matches(workdir / "test_matches.png", model, best, layout, test)
  print(f"test ({config.test_size} curves, best checkpoint, step {step}): "
        f"MAE {metrics['mae_db']:.4f} dB")
  return metrics


def make_evaluator(model, layout, weights, chunk: int = 2048):
  """`evaluate(params, curves) -> {'loss', 'mae_db', ...}`: means over a fixed set."""

  @jax.jit
  def sums(params, curve, unit):
    pred = model.apply({"params": params}, curve)
    per_curve = losses.response_mae(layout, pred, curve)
    _, metrics = losses.matching_loss(layout, pred, curve, unit, **weights)
    return jnp.sum(per_curve), {k: v * len(curve) for k, v in metrics.items()}

  def evaluate(params, data: synthetic.Curves) -> dict:
    totals = {}
    for start in range(0, len(data.curve), chunk):
      _, part = sums(params, data.curve[start:start + chunk], data.unit[start:start + chunk])
      for k, v in part.items():
        totals[k] = totals.get(k, 0.0) + float(v)
    return {k: v / len(data.curve) for k, v in totals.items()}

  return evaluate


def plot_matches(path: Path, model, params, layout, data: synthetic.Curves, count: int = 6) -> None:
  """Target curves and the responses of the predicted EQs, as a PNG."""
  curves = data.curve[:count]
  matched = jax.jit(lambda p, c: layout.response_db(
      layout.from_unit(model.apply({"params": p}, c)), FREQS, SAMPLE_RATE))
  response = matched(params, curves)
  plots.plot_curve_matches(curves, {model.__class__.__name__: response},
                           [f"{layout.name} test curve {i}" for i in range(count)], path)


def export(config, workdir, destination, command: str) -> None:
  """The run's best checkpoint as a matcher directory, with a model card."""
  workdir = Path(workdir)
  layout = get_layout(config.layout)
  model = matcher_networks.make_model(config.model, layout.num_controls, **config.model_kwargs)
  like = matcher_networks.init_params(model, jax.random.PRNGKey(0))
  params, step = checkpoints.restore_params(workdir, like, "best")
  metrics = json.loads((workdir / "test_metrics.json").read_text())
  machine = describe_machine()
  training = {"command": command, "step": step, "num_steps": metrics["num_steps"],
              "train_seconds": round(metrics["train_seconds"], 1), "machine": machine,
              "test_mae_db": metrics["mae_db"], "config": json.loads(config.to_json_best_effort())}
  card = MODEL_CARD.format(name=config.model.upper(), layout=layout.name, command=command, step=step,
                           num_steps=metrics["num_steps"], hours=metrics["train_seconds"] / 3600,
                           machine=machine, mae=metrics["mae_db"], test_size=config.test_size,
                           seed=config.seed, epochs=config.num_epochs, train_size=config.train_size,
                           batch=config.batch_size)
  Matcher(config.model, layout, params, config.model_kwargs.to_dict()).save(destination, training, card)


def describe_machine() -> str:
  memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"{memory_gb:.0f} GB, JAX devices: {jax.device_count()} × {jax.devices()[0].device_kind}")


MODEL_CARD = """# {name} matcher, base (synthetic) stage

Predicts the settings of the {layout} layout from a 256-point dB curve on `jaxeq.FREQS`
(zero-centred, within ±12 dB). Stage 1 of Mockenhaupt et al. (DAFx 2024): trained
self-supervised on random-EQ curves; not yet fine-tuned on real recordings.

- command: `{command}`
- data: {train_size} random curves per epoch (paper sampler, seed {seed}), batch {batch},
  {epochs} epochs = {num_steps} steps; the checkpoint shipped is the best by validation MAE
  (step {step})
- training time: {hours:.2f} h of stepping on {machine}
- test MAE: {mae:.4f} dB on the fixed synthetic test set ({test_size} curves, seed {seed})
- parameters only (no optimiser state): `params.npz`, layout and model in `config.json`
"""


if __name__ == "__main__":
  from experiments import launch
  launch.run(__file__, train_and_evaluate, export)
