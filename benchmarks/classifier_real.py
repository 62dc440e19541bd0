"""A classifier on a dataset's real test split: top-1, top-3, per-class accuracy, confusion
matrices and calibration, for the real recordings (all, drums, one-shots, clips under 6 s)
and the rendered unseen bank.

    python -m benchmarks.classifier_real --data data/medium4 [--classifier DIR] \
        [--out workdirs/classifier_real] [--logits FILE.npz]

`--classifier` defaults to the shipped one. Its temperature is the one it was calibrated
with; `--logits` scores clip logits saved earlier (`validation`, `test` arrays, e.g. from an
older classifier's code) instead of running a network, with a temperature fitted here on
their real validation clips. Writes `evaluation.md`, `evaluation.json` and a confusion matrix
PNG per row into `--out`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from absl import app, flags

from data_prep import dataset
from experiments.classifier import calibration_temperature, split_metrics, write_evaluation
from jaxeq.classifier import load_classifier

flags.DEFINE_string("data", "data/medium4", "a featurized dataset with a real test split")
flags.DEFINE_string("classifier", None, "an exported classifier directory (default: shipped)")
flags.DEFINE_string("logits", None, "an .npz of clip logits (`validation`, `test`) to score")
flags.DEFINE_string("out", "workdirs/classifier_real", "where the evaluation is written")
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  splits = {name: dataset.load_split(FLAGS.data, name) for name in ("validation", "test")}
  if FLAGS.logits:
    with np.load(FLAGS.logits, allow_pickle=False) as saved:
      logits = {name: saved[name] for name in splits}
    temperature = calibration_temperature(logits["validation"], splits["validation"])
  else:
    classifier = load_classifier(FLAGS.classifier)
    logits = {name: np.stack([classifier.logits(*sf.read(Path(FLAGS.data) / row["path"],
                                                           dtype="float32"))
                              for row in s.rows]) for name, s in splits.items()}
    temperature = classifier.temperature
  results = {"data": FLAGS.data, "classifier": FLAGS.logits or FLAGS.classifier or "shipped",
             "temperature": temperature}
  for name, split in splits.items():
    results[name] = split_metrics(logits[name], split.labels, split.rows, temperature)
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  write_evaluation(out, results)
  print((out / "evaluation.md").read_text())


if __name__ == "__main__":
  app.run(main)
