"""Training speed of the instrument classifier: steps per second and the time of a `paper` epoch.

    python -m benchmarks.classifier_training [--batch_size 32] [--steps 50] [--repeats 3]

Times `experiments.classifier`'s own update (augmentation on the device, forward, backward,
AdamW) on random windows of the dataset's shape, so it needs no rendered data and measures
the same on any machine, a GPU included; reading windows from disk is left out. An epoch is
one pass over the `paper` set's training windows (`--epoch_windows`, as rendered here).
"""

from __future__ import annotations

import json

import jax
import numpy as np
import optax
from absl import app, flags

from benchmarks.timing import training_steps_per_s
from experiments import base_train, classifier
from jaxeq.classes import CLASSES
from jaxeq.classifier import InstrumentCNN, init_params
from jaxeq.spectrum import FREQS, WINDOW_FRAMES

flags.DEFINE_integer("batch_size", None, "windows a step (default: the experiment's)")
flags.DEFINE_integer("steps", 50, "timed training steps")
flags.DEFINE_integer("repeats", 3, "timing repeats (the median is reported)")
flags.DEFINE_integer("epoch_windows", 36_400, "training windows in a `paper` epoch")
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  config = classifier.get_config()
  batch_size = FLAGS.batch_size or config.batch_size
  model = InstrumentCNN(len(CLASSES), **config.model_kwargs)
  optimizer = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
  rng = np.random.default_rng(0)
  shape = (batch_size, WINDOW_FRAMES, len(FREQS))
  batches = [{"windows": rng.normal(-40.0, 15.0, shape).astype(np.float32),
              "label": rng.integers(0, len(CLASSES), batch_size).astype(np.int32)}
             for _ in range(4)]
  steps_per_s = training_steps_per_s(
      classifier.make_loss_fn(model, config), optimizer, init_params(model, jax.random.key(0)),
      lambda step: batches[step % len(batches)], FLAGS.steps, FLAGS.repeats)
  result = {"machine": base_train.describe_machine(), "batch_size": batch_size,
            "train_steps_per_s": steps_per_s,
            "windows_per_s": steps_per_s * batch_size,
            "paper_epoch_s": FLAGS.epoch_windows / batch_size / steps_per_s}
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main)
