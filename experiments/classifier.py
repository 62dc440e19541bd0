"""The instrument classifier and the target bank (DESIGN.md §1), on the instrument-track dataset.

    python -m experiments.classifier --workdir=workdirs/classifier
    python -m experiments.classifier --workdir=workdirs/classifier_paper \
        --config.data_dir=data/paper --config.data_size=paper
    python -m experiments.classifier --workdir=/tmp/smoke --config=experiments/classifier.py:smoke

The dataset in `config.data_dir` is rendered and featurized first when absent (or point
`data_dir` at your own ingested data). Writes to the workdir: checkpoints, metrics, the
evaluation — top-1, top-3, per-class accuracy, calibration — of the `test` split's real
recordings (held out from training: the headline), its drums, one-shots and clips under 6 s,
its rendered clips (the unseen bank), and the same groups of `validation`: `evaluation.json`,
`evaluation.md`, `confusion_SPLIT_GROUP.png`; the calibration temperature, fitted on the real
validation recordings; and the target bank built from the clean reference clips
(`experiments.targets`: `targets.npz`, `targets.png`). `--export=DIR` writes `DIR/classifier/` (with its model card
and temperature) and `DIR/targets.npz`.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from data_prep import dataset, render
from experiments import launch, targets
from jaxeq import plots
from jaxeq.atomic import write_text_atomically
from jaxeq.classes import CLASSES, class_info
from jaxeq.classifier import (Classifier, InstrumentCNN, expected_calibration_error,
                              fit_temperature, init_params, softmax)
from jaxeq.training import augment, checkpoints, trainer


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The classifier config; `variant='smoke'` is a seconds-long run for tests."""
  config = trainer.default_config()
  config.data_dir = "data/default"
  config.data_size = "default"  # what to render into data_dir when it holds no dataset
  config.data_seed = 0
  config.target_clips_per_identity = 16  # for the targets of vocals and drum_kit
  config.model_kwargs = ml_collections.ConfigDict()  # e.g. features, dropout
  config.batch_size = 32
  config.num_epochs = 40
  config.learning_rate = 2e-3
  config.weight_decay = 1e-4
  config.warmup_steps = 100
  config.label_smoothing = 0.1
  config.augment = augment.default_config()
  # Training ablations of the recording chain (data_prep.recording_chain): leave out every
  # training clip that went through this stage ('' keeps all), and train on `train_clips` of
  # those left, drawn with `data_seed` (0: all), so runs with and without a stage compare at
  # one data size.
  config.train_without_stage = ""
  config.train_clips = 0
  config.best_metric = "loss"
  config.eval_every = config.checkpoint_every = 200
  config.log_every = 20
  if variant == "smoke":
    config.data_dir = "data/smoke"
    config.data_size = "smoke"
    config.model_kwargs = ml_collections.ConfigDict({"stem_features": 8, "features": (8, 8)})
    config.batch_size = 8
    config.num_epochs = 2
    config.warmup_steps = 2
    config.target_clips_per_identity = 1
    config.eval_every = config.checkpoint_every = config.log_every = 4
  elif variant:
    raise ValueError(f"unknown config variant {variant!r}; expected '' or 'smoke'")
  return config


def training_clips(rows: list[dict], without_stage: str = "", clips: int = 0,
                   seed: int = 0) -> np.ndarray:
  """The training clips (indices into `rows`, sorted) an ablation keeps: those whose recording
  chain did not include `without_stage`, `clips` of them drawn at random (0: all)."""
  if without_stage and without_stage not in render.CHAIN_STAGES:
    raise ValueError(f"train_without_stage={without_stage!r}: expected '' or one of "
                     f"{', '.join(render.CHAIN_STAGES)}")
  keep = np.array([not without_stage or without_stage not in json.loads(r.get("chain") or "{}")
                   for r in rows], bool)
  ids = np.flatnonzero(keep)
  if clips:
    if clips > len(ids):
      raise ValueError(f"train_clips={clips}: only {len(ids)} training clips"
                       + (f" went without {without_stage}" if without_stage else ""))
    ids = np.sort(np.random.default_rng(seed).choice(ids, clips, replace=False))
  return ids


class WindowStream:
  """`stream(step)`: batch `step` of training windows (of `clips`, default all), a fresh
  shuffle every epoch."""

  def __init__(self, split: dataset.Split, batch_size: int, seed: int,
               clips: np.ndarray | None = None):
    self.split = split
    self.window_ids = (np.arange(len(split.window_clip)) if clips is None
                       else np.flatnonzero(np.isin(split.window_clip, clips)))
    self.shuffle = trainer.EpochShuffle(len(self.window_ids), batch_size, seed)
    self.steps_per_epoch = self.shuffle.steps_per_epoch

  def __call__(self, step: int) -> dict:
    ids = np.sort(self.window_ids[self.shuffle(step)])  # sorted: faster memory-map reads
    return {"windows": np.asarray(self.split.windows[ids], np.float32),
            "label": self.split.labels[self.split.window_clip[ids]]}


def make_loss_fn(model: InstrumentCNN, config):
  def loss_fn(params, batch, rng):
    aug_rng, dropout_rng = jax.random.split(rng)
    windows = augment.augment_windows(aug_rng, batch["windows"], config.augment)
    logits = model.apply({"params": params}, windows, train=True, rngs={"dropout": dropout_rng})
    targets = optax.smooth_labels(jax.nn.one_hot(batch["label"], len(CLASSES)),
                                  config.label_smoothing)
    loss = jnp.mean(optax.softmax_cross_entropy(logits, targets))
    return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}
  return loss_fn


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict:
  """Accuracy, top-3 accuracy, per-class accuracy and the confusion matrix (rows: truth)."""
  ranked = np.argsort(-logits, axis=1)
  confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
  np.add.at(confusion, (labels, ranked[:, 0]), 1)
  per_class = {c: float(confusion[i, i] / confusion[i].sum())
               for i, c in enumerate(CLASSES) if confusion[i].sum()}
  return {"clips": int(len(labels)), "accuracy": float(np.mean(ranked[:, 0] == labels)),
          "top3_accuracy": float(np.mean(np.any(ranked[:, :3] == labels[:, None], axis=1))),
          "per_class_accuracy": per_class, "confusion": confusion.tolist()}


def evaluation_groups(rows: list[dict]) -> dict[str, np.ndarray]:
  """The parts of a split reported on their own: real recordings (the headline), their drums,
  one-shots and clips under 6 s, and the rendered clips (the unseen bank, in `test`; its 6 s
  phrases alone compare with figures from before the dataset had short clips)."""
  recorded = np.array([r.get("recorded") == "1" for r in rows], bool)
  drums = np.array([class_info(r["class"]).is_drum for r in rows], bool)
  one_shot = np.array([r.get("kind") == "one_shot" for r in rows], bool)
  short = np.array([float(r.get("duration_s") or 0) < 6.0 for r in rows], bool)
  groups = {"real recordings": recorded, "real drums": recorded & drums,
            "real one-shots": recorded & one_shot, "real clips under 6 s": recorded & short,
            "rendered": ~recorded, "rendered 6 s phrases": ~recorded & ~short}
  return {name: mask for name, mask in groups.items() if mask.any()}


def calibration_temperature(logits: np.ndarray, split: dataset.Split) -> float:
  """The temperature fitted on the split's real recordings (users' material), or on all of
  its clips where it has none."""
  recorded = evaluation_groups(split.rows).get("real recordings")
  mask = recorded if recorded is not None else np.ones(len(split.labels), bool)
  return fit_temperature(logits[mask], split.labels[mask])


def split_metrics(logits: np.ndarray, labels: np.ndarray, rows: list[dict],
                  temperature: float) -> dict:
  """`classification_metrics` of the whole split and of each of its `evaluation_groups`, with
  the calibrated expected calibration error."""
  def metrics(mask):
    m = classification_metrics(logits[mask], labels[mask])
    m["ece"] = expected_calibration_error(softmax(logits[mask], temperature), labels[mask])
    m["ece_uncalibrated"] = expected_calibration_error(softmax(logits[mask]), labels[mask])
    return m
  result = metrics(np.ones(len(labels), bool))
  result["groups"] = {name: metrics(mask) for name, mask in evaluation_groups(rows).items()}
  return result


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  """Trains (resuming from `workdir`), evaluates the best checkpoint, builds the target bank."""
  workdir = Path(workdir)
  data_dir = launch.ensure_dataset(config)
  splits = {name: dataset.load_split(data_dir, name) for name in dataset.SPLITS}
  clips = training_clips(splits["train"].rows, config.train_without_stage, config.train_clips,
                         config.data_seed)
  stream = WindowStream(splits["train"], config.batch_size, config.seed, clips)
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.num_steps = config.num_epochs * stream.steps_per_epoch
    config.update(trainer.topology())
  model = InstrumentCNN(len(CLASSES), **config.model_kwargs)
  params = init_params(model, jax.random.key(config.seed))
  schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps,
                                                config.num_steps, config.learning_rate * 0.01)
  optimizer = optax.adamw(schedule, weight_decay=config.weight_decay)

  classifier = Classifier(CLASSES, params, config.model_kwargs.to_dict())  # compiled once

  def evaluate(p) -> dict:
    val = splits["validation"]
    classifier.params = p
    logits = classifier.clip_logits(val.windows, val.window_clip, len(val.labels))
    loss = optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), val.labels)
    return {"loss": float(jnp.mean(loss)), "accuracy": float(np.mean(logits.argmax(1) == val.labels))}

  trainer.train(config, workdir, init_params=params, loss_fn=make_loss_fn(model, config),
                batch_fn=stream, optimizer=optimizer, eval_fn=evaluate)

  classifier.params, step = checkpoints.restore_params(workdir, params, "best")
  logits = {name: classifier.clip_logits(splits[name].windows, splits[name].window_clip,
                                         len(splits[name].labels))
            for name in ("validation", "test")}
  temperature = calibration_temperature(logits["validation"], splits["validation"])
  results = {"step": step, "num_steps": config.num_steps, "data_dir": str(data_dir),
             "train_clips": int(len(clips)), "temperature": temperature}
  for name in ("validation", "test"):
    results[name] = split_metrics(logits[name], splits[name].labels, splits[name].rows,
                                  temperature)
  bank = targets.dataset_bank(splits["train"], data_dir, config)
  if jax.process_index() == 0:
    _write_results(workdir, config, results, bank)
  print(f"best checkpoint (step {step}): " + "; ".join(
      f"{name} {metrics['accuracy']:.1%} ({metrics['clips']} clips)"
      for name, metrics in headline_rows(results)))
  return results


def headline_rows(results: dict) -> list[tuple[str, dict]]:
  """(name, metrics) of the rows the evaluation reports, the real test split first."""
  groups = results["test"]["groups"]
  rows = [(f"test: {group}", m) for group, m in groups.items() if not group.startswith("rendered")]
  rows += [(f"test: {group}, unseen bank (TimGM6mb)", groups[group])
           for group in ("rendered", "rendered 6 s phrases") if group in groups]
  rows += [(f"validation: {group}", metrics)
           for group, metrics in results["validation"]["groups"].items()]
  return rows


def _write_results(workdir: Path, config, results: dict, bank) -> None:
  write_evaluation(workdir, results)
  write_text_atomically(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n")
  targets.write_bank(bank, workdir)


def write_evaluation(out: Path, results: dict) -> None:
  """`evaluation.json`, `evaluation.md` and a confusion matrix per split and group
  (`confusion_test_real_recordings.png`, ...)."""
  write_text_atomically(out / "evaluation.json", json.dumps(results, indent=1) + "\n")
  write_text_atomically(out / "evaluation.md", evaluation_markdown(results))
  for split in ("validation", "test"):
    for group, metrics in results[split]["groups"].items():
      slug = "".join(c if c.isalnum() else "_" for c in f"{split} {group}")
      plots.plot_confusion(np.array(metrics["confusion"]), CLASSES, out / f"confusion_{slug}.png",
                           f"{split}, {group}: top-1 {metrics['accuracy']:.1%}, "
                           f"top-3 {metrics['top3_accuracy']:.1%}")


def evaluation_markdown(results: dict) -> str:
  rows = headline_rows(results)
  lines = [f"Probabilities calibrated with temperature {results['temperature']:.2f} (fitted on "
           "the real validation recordings); ECE: expected calibration error (15 bins).", "",
           "| clips | count | top-1 | top-3 | ECE | ECE uncalibrated |", "|---|---|---|---|---|---|"]
  lines += [f"| {name} | {m['clips']} | {m['accuracy']:.1%} | {m['top3_accuracy']:.1%} | "
            f"{m['ece']:.3f} | {m['ece_uncalibrated']:.3f} |" for name, m in rows]
  lines += ["", "| class | " + " | ".join(name for name, _ in rows) + " |",
            "|---" * (len(rows) + 1) + "|"]
  for c in CLASSES:
    cells = [f"{m['per_class_accuracy'][c]:.0%}" if c in m["per_class_accuracy"] else "–"
             for _, m in rows]
    lines.append(f"| {c} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def export(config, workdir, destination, command: str) -> None:
  """The best checkpoint as `destination/classifier/` with a model card, and the target bank."""
  workdir, destination = Path(workdir), Path(destination)
  model = InstrumentCNN(len(CLASSES), **config.model_kwargs)
  params, step = checkpoints.restore_params(workdir, init_params(model, jax.random.key(0)), "best")
  results = json.loads((workdir / "evaluation.json").read_text())
  machine = f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].device_kind}"
  info = dataset.dataset_info(results["data_dir"])
  card = MODEL_CARD.format(command=command, classes=len(CLASSES),
                           data=info.get("command", results["data_dir"]), clips=results["train_clips"], step=step, num_steps=results["num_steps"],
                           machine=machine, evaluation=evaluation_markdown(results),
                           sources=_sources_markdown(info),
                           hours=trainer.train_seconds(workdir) / 3600)
  Classifier(CLASSES, params, config.model_kwargs.to_dict(), results["temperature"]).save(
      destination / "classifier", card=card,
      training={"command": command, "step": step, "machine": machine, "data": info,
                "evaluation": {name: {"clips": m["clips"], "accuracy": m["accuracy"],
                                      "top3_accuracy": m["top3_accuracy"], "ece": m["ece"]}
                               for name, m in headline_rows(results)}})
  shutil.copyfile(workdir / "targets.npz", destination / "targets.npz")
  shutil.copyfile(workdir / "targets.png", destination / "targets.png")


def _sources_markdown(info: dict) -> str:
  """The real recordings the data came from, with their licences and attributions (sources
  with one credit, like the Salamander piano's 17 packages, on one line)."""
  credits: dict[tuple[str, str], list[str]] = {}
  for s in info.get("recordings", []):
    credits.setdefault((s["licence"], s["attribution"]), []).append(
        f"{s['package']} {s['version']}")
  if not credits:
    return "No real recordings: rendered General-MIDI banks only."
  return "\n".join(f"- {attribution} ({licence}; {', '.join(packages)})"
                   for (licence, attribution), packages in credits.items())


MODEL_CARD = """# Instrument classifier

A CNN over 6 s log-frequency spectrograms (256 frames x 256 frequencies), {classes} classes
(`jaxeq.CLASSES`); the logits of a long track are averaged over its windows.

- command: `{command}`
- data: {data}; {clips} training clips, augmented (gain, EQ colouration, time shift,
  noise, bleed from other classes, crops to short-clip lengths)
- probabilities calibrated by a temperature fitted on the real validation recordings
  (`config.json`)
- {num_steps} steps; the checkpoint shipped is the best by validation loss (step {step})
- training time: {hours:.2f} h of stepping on {machine}
- parameters only: `params.npz`; classes and network in `config.json`

## Real recordings in the training data

{sources}

## Evaluation

{evaluation}"""


if __name__ == "__main__":
  launch.run(__file__, train_and_evaluate, export)
