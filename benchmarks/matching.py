"""Matching quality and speed: the shipped MLP and CNN against the per-curve optimiser.

    python -m benchmarks.matching                 # a few minutes on 2 CPU cores
    python -m benchmarks.matching --floor_curves=100 --train_steps=30   # quicker

Reports MAE (dB, DESIGN.md §2) on the fixed synthetic test set of `experiments.base_train`
(10,000 curves, seed 0), curves per second for each method, and training steps per second
and seconds per epoch (batch 256, 156,730 curves) for each model. The optimiser is slow,
so it runs on the first `--floor_curves` test curves and the networks are scored on those
too. Prints a Markdown table and writes `benchmarks/matching.json`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np
import optax
from absl import app, flags

import jaxeq
from benchmarks.timing import median_seconds, training_steps_per_s
from experiments import base_train
from jaxeq import losses, matcher_networks, optimiser
from jaxeq.training import synthetic

flags.DEFINE_integer("floor_curves", 500, "test curves the optimiser fits")
flags.DEFINE_integer("floor_starts", 8, "optimiser starts per curve")
flags.DEFINE_integer("floor_steps", 500, "Adam steps per start")
flags.DEFINE_integer("train_steps", 100, "timed training steps per model")
flags.DEFINE_integer("repeats", 5, "timing repeats (the median is reported)")
FLAGS = flags.FLAGS


def training_speed(name: str, config, steps: int, repeats: int) -> float:
  """Training steps per second (data generation included) with the base-training setup."""
  layout = jaxeq.get_layout(config.layout)
  model = matcher_networks.make_model(name, layout.num_controls)
  stream = synthetic.CurveStream(layout, config.seed, config.batch_size, config.train_size)

  def loss_fn(params, batch, rng):
    unit = model.apply({"params": params}, batch.curve)
    return losses.matching_loss(layout, unit, batch.curve, batch.unit,
                                param_weight=config.param_weight)

  params = matcher_networks.init_params(model, jax.random.PRNGKey(0))
  return training_steps_per_s(loss_fn, optax.adam(config.learning_rate), params, stream, steps,
                              repeats)


def main(argv) -> None:
  del argv
  config = base_train.get_config()
  layout = jaxeq.get_layout(config.layout)
  test = synthetic.fixed_set(layout, config.seed, "test", config.test_size)
  subset = test.curve[:FLAGS.floor_curves]
  results = {"machine": base_train.describe_machine(),
             "test_curves": len(test.curve), "floor_curves": len(subset)}

  for name in ("mlp", "cnn"):
    matcher = jaxeq.load_matcher(name)
    unit = np.asarray(matcher.predict_unit(test.curve))
    mae = np.asarray(losses.response_mae(layout, unit, test.curve))
    seconds = median_seconds(lambda: matcher.predict_unit(test.curve), FLAGS.repeats)
    results[name] = {"mae_db": float(mae.mean()), "mae_db_floor_subset": float(mae[:len(subset)].mean()),
                     "curves_per_s": len(test.curve) / seconds,
                     "train_steps_per_s": training_speed(name, config, FLAGS.train_steps, FLAGS.repeats)}
    results[name]["epoch_s"] = (config.train_size // config.batch_size) / results[name]["train_steps_per_s"]

  fit = lambda curves: optimiser.fit_curves(  # noqa: E731
      layout, curves, FLAGS.floor_starts, FLAGS.floor_steps)
  fit(subset[:256])  # compiles the chunk program
  start = time.perf_counter()
  floor_unit, _ = fit(subset)
  seconds = time.perf_counter() - start
  floor_mae = np.asarray(losses.response_mae(layout, floor_unit, subset))  # as the networks
  results["optimiser"] = {"mae_db_floor_subset": float(floor_mae.mean()),
                          "curves_per_s": len(subset) / seconds,
                          "starts": FLAGS.floor_starts, "steps": FLAGS.floor_steps}

  cnn, mlp, opt = results["cnn"], results["mlp"], results["optimiser"]
  results["ratios"] = {"cnn_over_mlp_mae": cnn["mae_db"] / mlp["mae_db"],
                       "cnn_speedup_over_optimiser": cnn["curves_per_s"] / opt["curves_per_s"],
                       "mlp_speedup_over_optimiser": mlp["curves_per_s"] / opt["curves_per_s"]}
  Path(__file__).with_name("matching.json").write_text(json.dumps(results, indent=2) + "\n")

  print(f"| method | MAE, {len(test.curve)} test curves (dB) | MAE, first {len(subset)} (dB) "
        "| curves/s | train steps/s | s/epoch |")
  print("|---|---|---|---|---|---|")
  for name in ("mlp", "cnn"):
    r = results[name]
    print(f"| {name.upper()} | {r['mae_db']:.3f} | {r['mae_db_floor_subset']:.3f} | "
          f"{r['curves_per_s']:,.0f} | {r['train_steps_per_s']:.1f} | {r['epoch_s']:.1f} |")
  print(f"| optimiser ({opt['starts']} starts × {opt['steps']} Adam steps) | – | "
        f"{opt['mae_db_floor_subset']:.3f} | {opt['curves_per_s']:.2f} | – | – |")
  print(json.dumps(results["ratios"], indent=2))


if __name__ == "__main__":
  app.run(main)
