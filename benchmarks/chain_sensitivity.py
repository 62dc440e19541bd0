"""How much each recording-chain stage costs a classifier on the real test recordings.

    python -m benchmarks.chain_sensitivity --data data/medium4 [--classifier DIR] [--clips 240]

Every real test clip (as stored: its recording with an EQ colouration) is put through one
stage of `data_prep.recording_chain` at a time (a room, noise, compression, saturation,
band-limiting, a lossy codec; drawn per clip with a fixed seed), then classified. A stage whose
accuracy falls far below the untouched clips' is one the classifier has not learnt to ignore:
what real rooms, microphones and encoders would cost a user.
"""

from __future__ import annotations

import numpy as np
import tqdm
from absl import app, flags

import jaxeq
from data_prep import dataset, recording_chain, render
from jaxeq.classifier import load_classifier
from jaxeq.spectrum import MAX_WINDOWS

flags.DEFINE_string("data", "data/medium4", "a featurized dataset with a real test split")
flags.DEFINE_string("classifier", None, "an exported classifier directory (default: shipped)")
flags.DEFINE_integer("clips", 240, "real test clips, evenly spaced over the split")
flags.DEFINE_integer("seed", 0, "seed of the stages' draws")
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  split = dataset.load_split(FLAGS.data, "test")
  real = [i for i, r in enumerate(split.rows) if r.get("recorded") == "1"]
  chosen = [real[i] for i in np.linspace(0, len(real) - 1, min(FLAGS.clips, len(real))).astype(int)]
  classifier = load_classifier(FLAGS.classifier)
  conditions = ("none",) + render.CHAIN_STAGES
  correct = {c: [] for c in conditions}
  for n, i in enumerate(tqdm.tqdm(chosen, desc="clips", unit="clip")):
    audio, rate = jaxeq.load_audio(f"{FLAGS.data}/{split.rows[i]['path']}")
    for condition in conditions:
      stages = () if condition == "none" else (condition,)
      config = render.chain_config(stages)
      for stage in stages:
        config[stage].probability = 1.0
      rng = np.random.default_rng([FLAGS.seed, n])
      altered, _ = recording_chain.apply_chain(audio, rate, rng, config)
      logits = classifier.window_logits(jaxeq.log_spectrogram_windows(altered, rate, MAX_WINDOWS))
      correct[condition].append(int(np.argmax(logits.mean(0))) == int(split.labels[i]))
  print(f"{len(chosen)} real test clips of {FLAGS.data}, classifier "
        f"{FLAGS.classifier or 'shipped'}\n")
  print("| stage applied | top-1 | change |\n|---|---|---|")
  base = np.mean(correct["none"])
  for condition in conditions:
    accuracy = np.mean(correct[condition])
    print(f"| {condition} | {accuracy:.1%} | {100 * (accuracy - base):+.1f} points |")


if __name__ == "__main__":
  app.run(main)
