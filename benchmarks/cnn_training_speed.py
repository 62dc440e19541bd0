"""Base CNN training speed: jaxeq's LayerNorm against flax's, side by side (issue 19).

    python -m benchmarks.cnn_training_speed --steps=40 --rounds=5

Times the base-training step of `experiments.base_train` (the trainer's own update on the
device mesh, the batch's curves generated each step, the loss read back each step) for the
shipped CNN, alternating between `jaxeq.matcher_networks.LayerNorm` (now) and `flax.linen.LayerNorm`
(before; the same parameters), and reports the median seconds per epoch of 156,730 curves of
each and their ratio. Then it checks that the two give the same results: the shipped CNN's
test MAE with either, and the validation MAE after `--train_steps` steps of training from
the same start with each. Writes `benchmarks/cnn_training_speed.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import optax
from absl import app, flags

import jaxeq
from benchmarks.timing import training_steps_per_s
from experiments import base_train
from jaxeq import losses, matcher_networks
from jaxeq.training import synthetic, trainer
from jaxeq.training.parallel import DataParallel

flags.DEFINE_integer("steps", 40, "timed training steps per measurement")
flags.DEFINE_integer("rounds", 5, "alternating measurements of each variant")
flags.DEFINE_integer("train_steps", 300, "training steps of the MAE check (0: skip it)")
FLAGS = flags.FLAGS
VARIANTS = {"jaxeq_layer_norm": matcher_networks.LayerNorm, "flax_layer_norm": nn.LayerNorm}


@contextlib.contextmanager
def layer_norm(cls):
  """The CNN (and its head) built with `cls` as its layer norm."""
  kept, matcher_networks.LayerNorm = matcher_networks.LayerNorm, cls
  try:
    yield
  finally:
    matcher_networks.LayerNorm = kept


def training_setup(config, layout):
  """The CNN's base-training loss, its initial parameters and the optimiser."""
  model = matcher_networks.make_model("cnn", layout.num_controls)

  def loss_fn(params, batch, rng):
    unit = model.apply({"params": params}, batch.curve)
    return losses.matching_loss(layout, unit, batch.curve, batch.unit,
                                param_weight=config.param_weight)

  params = matcher_networks.init_params(model, jax.random.PRNGKey(config.seed))
  return loss_fn, params, optax.adam(config.learning_rate)


def trained_params(config, layout, stream, steps: int):
  """The parameters after `steps` base-training updates from the initial ones."""
  loss_fn, params, optimizer = training_setup(config, layout)
  parallel = DataParallel(trainer.make_train_step(loss_fn, optimizer), "mesh")
  state = parallel.put_state(trainer.init_state(params, optimizer, config.seed))
  for step in range(steps):
    state, _ = parallel.step(state, parallel.put_batch(stream(step)))
  return trainer.local_copy(state["params"])


def main(argv) -> None:
  del argv
  config = base_train.get_config()
  layout = jaxeq.get_layout(config.layout)
  stream = synthetic.CurveStream(layout, config.seed, config.batch_size, config.train_size)
  epoch_steps = stream.steps_per_epoch
  seconds = {name: [] for name in VARIANTS}
  for _ in range(FLAGS.rounds):
    for name, cls in VARIANTS.items():
      with layer_norm(cls):
        loss_fn, params, optimizer = training_setup(config, layout)
        steps_per_s = training_steps_per_s(loss_fn, optimizer, params, stream, FLAGS.steps, 1)
        seconds[name].append(epoch_steps / steps_per_s)
  results = {"machine": base_train.describe_machine(), "load_average": os.getloadavg(),
             "steps": FLAGS.steps, "rounds": FLAGS.rounds, "epoch_steps": epoch_steps}
  for name, values in seconds.items():
    results[name] = {"epoch_s_median": statistics.median(values), "epoch_s": values}
  results["speedup"] = (results["flax_layer_norm"]["epoch_s_median"]
                        / results["jaxeq_layer_norm"]["epoch_s_median"])

  test = synthetic.fixed_set(layout, config.seed, "test", config.test_size)
  val = synthetic.fixed_set(layout, config.seed, "val", config.val_size)
  shipped = jaxeq.load_matcher("cnn")
  model = matcher_networks.make_model("cnn", layout.num_controls)
  evaluate = base_train.make_evaluator(model, layout, {"param_weight": config.param_weight})
  for name, cls in VARIANTS.items():
    with layer_norm(cls):
      unit = np.asarray(model.apply({"params": shipped.params}, test.curve))
      shipped_mae = losses.response_mae(layout, unit, test.curve)
      results[name]["shipped_test_mae_db"] = float(np.mean(shipped_mae))
      if FLAGS.train_steps:
        params = trained_params(config, layout, stream, FLAGS.train_steps)
        results[name]["val_mae_db_after_train_steps"] = evaluate(params, val)["mae_db"]
  text = json.dumps(results, indent=2) + "\n"
  Path(__file__).with_name("cnn_training_speed.json").write_text(text)
  print(json.dumps(results, indent=2))


if __name__ == "__main__":
  app.run(main)
