"""Recognition on sources never heard: frozen backbones, a trained head, leave-one-source-out.

    python -m experiments.recognition --workdir=workdirs/recognition
    python -m experiments.recognition --workdir=/tmp/smoke --config=experiments/recognition.py:smoke

The instrument CNN (`experiments.classifier`) has heard one recorded instrument per melodic
class, and no voice or whole kit at all. Here every clip — the rendered dataset in
`config.data_dir` (its real recordings all, `config.rendered_per_class` rendered training clips
a class) and the recordings only real sound plays (`data_prep.recognition`: voices, whole kits,
the Debian instruments) — goes once through frozen backbones (`jaxeq.classifier.Backbones`:
the shipped CNN's pooled features, musicnn MSD and MTT), and a linear head is trained on what
they give, one per candidate feature set (`config.feature_sets`). Each is measured:

- **leave one source out** (the headline): for each real source, a head trained on every clip
  of every other source is tested on that source's clips. A source the shipped CNN trained on
  is marked: for a feature set that reads the CNN, holding it out of the head does not hold it
  out of the features;
- on the test split (the real recordings of the dataset's test split and the held-out
  identities of `data_prep.recognition`), per class and group.

The set that generalises best is calibrated on the left-out predictions (held-out sources, not
held-out notes) and exported with `--export=DIR` (`DIR/classifier/`). Writes
`embeddings.npz` (reused when present), `evaluation.json`, `evaluation.md` and confusion
matrices to the workdir.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import soundfile as sf
from tqdm import tqdm

from data_prep import excerpts, recognition
from data_prep.sound_source import SAMPLE_RATE
from experiments import targets
from jaxeq import classifier as classifier_lib
from jaxeq import exported, plots
from jaxeq.atomic import write_text_atomically
from jaxeq.classes import CLASSES
from jaxeq.classifier import (Backbones, FusedClassifier, fit_temperature, head_logits, softmax,
                              spectrogram_cnn)
from jaxeq.targets import load_targets


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.data_dir = "data/medium4"
  config.cnn = ""  # the spectrogram CNN's classifier directory ('': the shipped one's)
  config.target_clips_per_identity = 16  # for the targets of vocals and drum_kit
  config.rendered_per_class = 60  # rendered training clips a class (their real clips: all)
  config.seed = 0
  config.musicnn = ("msd", "mtt")
  config.per_identity = ml_collections.ConfigDict()  # overrides data_prep.recognition.CLIPS
  musicnn = [f"{m}/{o}" for m in ("msd", "mtt") for o in ("penultimate", "mean_pool",
                                                          "max_pool")]
  config.feature_sets = ml_collections.ConfigDict({
      "cnn": ["cnn"], "musicnn": musicnn, "fused": ["cnn"] + musicnn})
  config.l2 = 1e-3
  config.steps = 400  # Adam steps of the head of the rendered clips, where every head starts
  config.fine_steps = 100  # from there, on a fold's or the training split's clips
  if variant == "smoke":
    config.data_dir = "data/smoke"
    config.rendered_per_class = 1
    config.per_identity = ml_collections.ConfigDict(
        {k: 1 for k in recognition.CLIPS})
    config.target_clips_per_identity = 1
    config.steps = config.fine_steps = 10
    config.musicnn = ("msd",)
    config.feature_sets = ml_collections.ConfigDict({"fused": ["cnn", "msd/penultimate"]})
  elif variant:
    raise ValueError(f"unknown config variant {variant!r}; expected '' or 'smoke'")
  return config


# --- the clips ---------------------------------------------------------------------------


def dataset_rows(data_dir: Path, rendered_per_class: int, seed: int) -> list[dict]:
  """The dataset's clips used here: every real recording, `rendered_per_class` rendered
  training clips a class drawn with `seed`, every rendered validation and test clip."""
  with open(data_dir / "manifest.csv", newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  rng = np.random.default_rng(seed)
  keep = []
  for name in CLASSES:
    rendered = [r for r in rows if r["class"] == name and r["split"] == "train"
                and r["recorded"] != "1"]
    picked = rng.choice(len(rendered), min(rendered_per_class, len(rendered)), replace=False)
    keep += [rendered[i] for i in sorted(picked)]
  keep += [r for r in rows if r["recorded"] == "1" or r["split"] != "train"]
  return keep


def row_source(row: dict) -> tuple[str, str]:
  """`(source, identity)` of a dataset clip: a real one's recording (a tonejs instrument,
  whichever of its notes; a kit), a rendered one's bank."""
  if row["recorded"] == "1":
    source = row["bank"].removesuffix("/train").removesuffix("/test")
    return source, source
  return f"rendered/{row['bank']}", f"rendered/{row['bank']}"


def embed_all(config, workdir: Path) -> dict[str, np.ndarray]:
  """Every clip through the backbones, once: `embeddings.npz` in the workdir (reused)."""
  path = workdir / "embeddings.npz"
  if path.exists():
    with np.load(path, allow_pickle=False) as data:
      return dict(data)
  backbones = Backbones(spectrogram_cnn(config.cnn or None), tuple(config.musicnn))
  data_dir = Path(config.data_dir)
  rows = dataset_rows(data_dir, config.rendered_per_class, config.seed)
  extra = recognition.clips(config.seed, dict(config.per_identity))
  features, meta = {}, []
  for item in tqdm(rows + extra, desc="embedding clips", unit="clip"):
    if isinstance(item, dict):
      audio, rate = sf.read(data_dir / item["path"], dtype="float32", always_2d=False)
      source, identity = row_source(item)
      meta.append((item["class"], item["split"], source, identity, item["kind"],
                   item["recorded"] == "1"))
    else:
      audio, rate = item.audio, SAMPLE_RATE
      meta.append((item.class_name, item.split, item.source, item.identity, item.kind, True))
    for name, value in backbones.features(audio, rate).items():
      features.setdefault(name, []).append(value)
  columns = list(zip(*meta))
  out = {f"features/{name}": np.stack(v).astype(np.float32) for name, v in features.items()}
  out.update(label=np.array([CLASSES.index(c) for c in columns[0]], np.int16),
             split=np.array(columns[1]), source=np.array(columns[2]),
             identity=np.array(columns[3]), kind=np.array(columns[4]),
             recorded=np.array(columns[5], bool))
  workdir.mkdir(parents=True, exist_ok=True)
  tmp = workdir / "embeddings.tmp.npz"
  np.savez(tmp, **out)
  tmp.replace(path)
  return out


# --- the head ----------------------------------------------------------------------------


def feature_matrix(embeddings: dict, names: tuple[str, ...]) -> np.ndarray:
  """The columns of the named backbone outputs, side by side: `(clips, features)`."""
  return np.concatenate([embeddings[f"features/{name}"] for name in names], axis=1)


def class_balanced(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Per-clip weights, 0 outside `mask`, that give every class in it the same total weight
  (mean 1 over the mask)."""
  counts = np.bincount(labels[mask], minlength=len(CLASSES)).astype(np.float64)
  weights = np.where(mask, 1.0 / np.maximum(counts[labels], 1), 0.0)
  return (weights / weights[mask].mean()).astype(np.float32)


def fit_head(x: np.ndarray, labels: np.ndarray, mask: np.ndarray, l2: float, steps: int,
             init: dict | None = None) -> dict:
  """A linear softmax head (`jaxeq.classifier.head_logits`) fitted to the clips in `mask` by
  full-batch Adam on the class-balanced cross-entropy plus `l2` · |kernel|², on features
  standardised by those clips' mean and spread. `init` warm-starts it with its own
  standardisation (the folds of the leave-one-source-out evaluation start from the head of the
  rendered clips, which hold no real source). Every fit has the shapes of `x`, so one
  compiled program serves every fold."""
  mean, scale = ((init["mean"], init["scale"]) if init is not None
                 else (x[mask].mean(axis=0), x[mask].std(axis=0) + 1e-3))
  start = ((init["kernel"], init["bias"]) if init is not None else
           (np.zeros((x.shape[1], len(CLASSES)), np.float32), np.zeros(len(CLASSES), np.float32)))
  kernel, bias = _adam(jnp.asarray((x - mean) / scale), jax.nn.one_hot(labels, len(CLASSES)),
                       jnp.asarray(class_balanced(labels, mask)), l2, steps, *start)
  return {"mean": np.asarray(mean, np.float32), "scale": np.asarray(scale, np.float32),
          "kernel": np.asarray(kernel), "bias": np.asarray(bias)}


@functools.partial(jax.jit, static_argnames="steps")
def _adam(z, onehot, weights, l2, steps: int, kernel, bias):
  optimizer = optax.adam(1e-2)

  def loss(p):
    nll = optax.softmax_cross_entropy(z @ p["kernel"] + p["bias"], onehot)
    return jnp.mean(weights * nll) + l2 * jnp.sum(p["kernel"] ** 2)

  def step(carry, _):
    p, state = carry
    updates, state = optimizer.update(jax.grad(loss)(p), state, p)
    return (optax.apply_updates(p, updates), state), None

  params = {"kernel": kernel, "bias": bias}
  (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
  return params["kernel"], params["bias"]


# --- measuring ---------------------------------------------------------------------------

# The classes of several real sources, where a held-out source is still a class it has heard
# real sound of: the leave-one-source-out headline for melodic classes.
SECOND_SOURCE_CLASSES = ("acoustic_piano", "organ", "acoustic_guitar_nylon", "electric_bass",
                         "flute")
DRUM_PIECES = ("kick", "snare", "hihat", "toms", "cymbals")
# The sources only this experiment adds (data_prep.recognition), not the rendered dataset's.
NEW_SOURCES = (*excerpts.SOURCES, "kit_tracks")


def folds(embeddings: dict) -> np.ndarray:
  """Each clip's fold: what a leave-one-source-out evaluation holds out together. A real
  recording's identity (a tonejs instrument, a kit with its hits and its kit tracks, a speaker
  set), the whole GrandOrgue organ (its stops are one instrument in one church); "" for a
  rendered clip, which is never held out."""
  identity = embeddings["identity"].astype(object)
  fold = np.where(embeddings["recorded"], identity, "")
  return np.array([("grandorgue-demo" if f.startswith("grandorgue-demo/") else f) for f in fold])


def heard_by_cnn(embeddings: dict) -> set[str]:
  """The real sources the shipped CNN was trained on (the dataset's training recordings):
  for a feature set that reads the CNN they are never fully held out."""
  trained = embeddings["recorded"] & np.isin(embeddings["split"], ("train", "validation"))
  dataset = ~np.isin(embeddings["source"], NEW_SOURCES)
  return set(folds(embeddings)[trained & dataset])


def leave_one_source_out(x: np.ndarray, embeddings: dict, l2: float, steps: int,
                         fine_steps: int) -> np.ndarray:
  """Out-of-fold logits `(clips, classes)` of every real clip (NaN for rendered ones): each
  fold's clips scored by a head trained on every other clip, from the rendered clips' head."""
  labels, fold = embeddings["label"], folds(embeddings)
  start = fit_head(x, labels, fold == "", l2, steps)
  logits = np.full((len(x), len(CLASSES)), np.nan, np.float32)
  for held_out in tqdm(sorted(set(fold) - {""}), desc="leave one source out", unit="fold"):
    test = fold == held_out
    head = fit_head(x, labels, ~test, l2, fine_steps, init=start)
    logits[test] = np.asarray(head_logits(head, x[test]))
  return logits


def accuracy(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict:
  return {"clips": int(mask.sum()),
          "top1": float(np.mean(logits[mask].argmax(1) == labels[mask])) if mask.any() else None}


def loso_table(logits: np.ndarray, embeddings: dict, temperature: float) -> dict:
  """The leave-one-source-out figures: per held-out source, and the headline groups."""
  labels, fold = embeddings["label"], folds(embeddings)
  names = np.array(CLASSES)[labels]
  real = fold != ""
  drums = np.isin(names, DRUM_PIECES)
  melodic = real & ~drums & ~np.isin(names, ("vocals", "drum_kit"))
  probabilities = softmax(np.where(real[:, None], logits, 0.0), temperature)
  confident_wrong = real & (probabilities.max(1) >= 0.8) & (logits.argmax(1) != labels)
  per_source = {}
  for f in sorted(set(fold) - {""}):
    classes = sorted(set(names[fold == f]))
    for name in classes:  # a kit's fold holds its hits and its kit tracks: one row a class
      key = f if len(classes) == 1 else f"{f}: {name}"
      per_source[key] = {"class": name, **accuracy(logits, labels, (fold == f) & (names == name))}
  second = melodic & np.isin(names, SECOND_SOURCE_CLASSES)
  return {
      "melodic, classes with two real sources": accuracy(logits, labels, second),
      "melodic, every real source": accuracy(logits, labels, melodic),
      "melodic, mean over sources": float(np.mean(
          [v["top1"] for f, v in per_source.items() if melodic[fold == f].all()])),
      "vocals": accuracy(logits, labels, real & (names == "vocals")),
      "vocals through a phone band": accuracy(
          logits, labels, real & (names == "vocals") & (embeddings["kind"] == "phone")),
      "drum_kit": accuracy(logits, labels, real & (names == "drum_kit")),
      "drum pieces": accuracy(logits, labels, real & drums),
      "every real source": accuracy(logits, labels, real),
      "wrong at >= 80 %": float(confident_wrong.sum() / real.sum()),
      "per source": per_source}


def test_groups(embeddings: dict) -> dict[str, np.ndarray]:
  """The test split's groups: its real recordings (held-out notes and kits of the dataset,
  the held-out identities of the new sources) and, apart, the rendered unseen bank."""
  names = np.array(CLASSES)[embeddings["label"]]
  test = embeddings["split"] == "test"
  real = test & embeddings["recorded"]
  new = real & np.isin(embeddings["source"], NEW_SOURCES)
  return {"real recordings": real,
          "real: the dataset's (held-out notes and kits)": real & ~new,
          "real: new sources' held-out identities": new,
          "real: drum pieces": real & np.isin(names, DRUM_PIECES),
          "real: one-shots": real & (embeddings["kind"] == "one_shot"),
          "real: vocals": real & (names == "vocals"),
          "real: drum_kit": real & (names == "drum_kit"),
          "rendered: unseen bank": test & ~embeddings["recorded"]}


def evaluate(name: str, features: tuple[str, ...], embeddings: dict, config, out: Path) -> dict:
  """One feature set: its leave-one-source-out table (calibrated on the left-out logits) and
  the test split scored by the head trained on the training and validation splits."""
  x, labels = feature_matrix(embeddings, features), embeddings["label"]
  saved = out / f"left_out_{name}.npy"  # the out-of-fold logits, reused when present
  if saved.exists():
    left_out = np.load(saved, allow_pickle=False)
  else:
    left_out = leave_one_source_out(x, embeddings, config.l2, config.steps, config.fine_steps)
    np.save(saved, left_out)
  real = folds(embeddings) != ""
  temperature = fit_temperature(left_out[real], labels[real])
  start = fit_head(x, labels, folds(embeddings) == "", config.l2, config.steps)
  train = np.isin(embeddings["split"], ("train", "validation"))
  head = fit_head(x, labels, train, config.l2, config.fine_steps, init=start)
  logits = np.asarray(head_logits(head, x))
  groups = test_groups(embeddings)
  probabilities = softmax(logits, temperature)
  wrong = groups["real recordings"] & (probabilities.max(1) >= 0.8) & (logits.argmax(1) != labels)
  confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
  np.add.at(confusion, (labels[groups["real recordings"]],
                        logits[groups["real recordings"]].argmax(1)), 1)
  plots.plot_confusion(confusion, CLASSES, out / f"confusion_{name}.png",
                       f"{name}: the real test split")
  per_class = {c: accuracy(logits, labels, groups["real recordings"] & (labels == i))
               for i, c in enumerate(CLASSES)}
  return {"features": list(features), "temperature": temperature,
          "leave one source out": loso_table(left_out, embeddings, temperature),
          "test": {g: accuracy(logits, labels, m) for g, m in groups.items()},
          "test: wrong at >= 80 %": float(wrong.sum() / groups["real recordings"].sum()),
          "test: per class": {c: v for c, v in per_class.items() if v["clips"]},
          "head": head}


def shipped_cnn(embeddings: dict) -> dict:
  """Today's classifier (the shipped CNN, 35 classes) on the same clips, for comparison: its
  own answers, without a head; on the sources it never heard that is a held-out figure."""
  logits = embeddings["features/cnn_logits"]
  logits = np.concatenate([logits, np.full((len(logits), len(CLASSES) - logits.shape[1]),
                                           -np.inf, np.float32)], axis=1)
  labels, fold = embeddings["label"], folds(embeddings)
  unheard = (fold != "") & ~np.isin(fold, sorted(heard_by_cnn(embeddings)))
  return {"unheard sources": loso_table(np.where(unheard[:, None], logits, np.nan),
                                        {**embeddings, "recorded": unheard}, 1.0),
          "test": {g: accuracy(logits, labels, m) for g, m in test_groups(embeddings).items()}}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  workdir = Path(workdir)
  embeddings = embed_all(config, workdir)
  results = {"shipped CNN": shipped_cnn(embeddings), "heard by the CNN":
             sorted(heard_by_cnn(embeddings)), "sets": {}}
  for name, features in config.feature_sets.items():
    results["sets"][name] = evaluate(name, tuple(features), embeddings, config, workdir)
  best = max(results["sets"], key=lambda n: selection_score(results["sets"][n]))
  results["best"] = best
  heads = {n: r.pop("head") for n, r in results["sets"].items()}
  np.savez(workdir / "head.npz", **heads[best])
  write_text_atomically(workdir / "evaluation.json", json.dumps(results, indent=1) + "\n")
  print(json.dumps({n: {"loso": {k: v for k, v in r["leave one source out"].items()
                                  if k != "per source"}, "test": r["test"]}
                    for n, r in results["sets"].items()}, indent=1))
  return results


def selection_score(result: dict) -> float:
  """What picks the shipped feature set: the mean leave-one-source-out top-1 of the groups the
  issue sets targets for (melodic sources, voices, whole kits, drum pieces)."""
  loso = result["leave one source out"]
  return float(np.mean([loso[g]["top1"] for g in ("melodic, every real source", "vocals",
                                                   "drum_kit", "drum pieces")]))


def unheard_summary(per_source: dict, heard) -> dict:
  """The headline: top-1 over the held-out sources that no backbone heard (the CNN trained on
  the dataset's training recordings), by group — melodic sources weighted by clips and
  averaged per source, the melodic classes with two real sources, voices, whole kits, drum
  pieces — from a leave-one-source-out table's `per source` rows."""
  rows = {s: v for s, v in per_source.items() if s.split(": ")[0] not in set(heard)}

  def group(keep) -> dict:
    chosen = [v for v in rows.values() if keep(v["class"])]
    clips = sum(v["clips"] for v in chosen)
    return {"sources": len(chosen), "clips": clips,
            "top1": sum(v["top1"] * v["clips"] for v in chosen) / clips if clips else None,
            "mean over sources": float(np.mean([v["top1"] for v in chosen])) if chosen else None}

  def melodic(name):
    return name not in (*DRUM_PIECES, "vocals", "drum_kit")

  return {"melodic": group(melodic),
          "melodic, classes with two real sources": group(lambda c: c in SECOND_SOURCE_CLASSES),
          "vocals": group(lambda c: c == "vocals"), "drum_kit": group(lambda c: c == "drum_kit"),
          "drum pieces": group(lambda c: c in DRUM_PIECES)}


def export(config, workdir, destination, command: str) -> None:
  """`DESTINATION/classifier/` (the best feature set's head on the backbones, calibrated on
  held-out sources, with its model card) and `DESTINATION/targets.npz` and `targets.png` (the
  shipped bank with the recorded-only classes' targets)."""
  workdir, destination = Path(workdir), Path(destination)
  results = json.loads((workdir / "evaluation.json").read_text(encoding="utf-8"))
  best = results["sets"][results["best"]]
  with np.load(workdir / "head.npz", allow_pickle=False) as data:
    head = dict(data)
  classifier = FusedClassifier(CLASSES, spectrogram_cnn(config.cnn or None), head,
                               best["features"], best["temperature"])
  cnn_training = spectrogram_cnn_training(config.cnn or None)
  loso, test = best["leave one source out"], best["test"]
  unheard = unheard_summary(loso["per source"], results["heard by the CNN"])
  card = MODEL_CARD.format(
      command=command, cnn_command=cnn_training.get("command", "?"),
      features=", ".join(best["features"]), best=results["best"],
      temperature=best["temperature"],
      unheard="\n".join(f"| {g} | {v['sources']} | {v['clips']} | {v['top1']:.1%} | "
                        f"{v['mean over sources']:.1%} |" for g, v in unheard.items()
                        if v["clips"]),
      loso="\n".join(f"| {g} | {loso[g]['clips']} | {loso[g]['top1']:.1%} |" for g in LOSO_ROWS),
      test="\n".join(f"| {g} | {v['clips']} | {v['top1']:.1%} |" for g, v in test.items()
                     if v["clips"]),
      wrong=best["test: wrong at >= 80 %"], loso_wrong=loso["wrong at >= 80 %"])
  classifier.save(destination / "classifier", card=card, training={
      "cnn": cnn_training, "command": command, "feature_set": results["best"], "l2": config.l2,
      "steps": config.steps, "fine_steps": config.fine_steps, "data_dir": config.data_dir,
      "rendered_per_class": config.rendered_per_class, "seed": config.seed})
  bank = targets.with_classes(load_targets(), targets.recorded_bank(
      config.seed, config.target_clips_per_identity))
  targets.write_bank(bank, destination)


def spectrogram_cnn_training(directory=None) -> dict:
  """How the spectrogram CNN of a classifier directory (default: the shipped one) was trained:
  a CNN's own record, or a fused classifier's record of its backbone."""
  config = exported.load_config(directory or classifier_lib.ASSET,
                                (classifier_lib.FORMAT, classifier_lib.FUSED_FORMAT))
  return (config["training"] if config["format"] == classifier_lib.FORMAT
          else config["training"]["cnn"])


LOSO_ROWS = ("melodic, classes with two real sources", "melodic, every real source", "vocals",
             "vocals through a phone band", "drum_kit", "drum pieces", "every real source")

MODEL_CARD = """# Instrument classifier: frozen backbones and a linear head

37 classes (`jaxeq.CLASSES`), voices and whole drum kits among them. A clip goes through two
frozen networks — the spectrogram CNN of `experiments.classifier` (its pooled features) and
musicnn, pretrained on real music (`jaxeq/assets/backbones/`, ISC) — and a linear head reads
what they give ({features}; the feature set "{best}", the best of those compared on the
leave-one-source-out figure). Probabilities are calibrated by a temperature ({temperature:.3f})
fitted on the left-out predictions, i.e. on sources the head had not heard.

- command: `{command}`
- the CNN backbone, trained by: `{cnn_command}`
- parameters: `params.npz` (the CNN's and the head's); classes, features and temperature
  in `config.json`

## Leave one source out (each real source scored by a head trained without it)

The headline: the sources no part of the network has heard (the new Debian recordings, the
held-out test instruments and kits):

| group | sources | clips | top-1 | mean over sources |
|---|---|---|---|---|
{unheard}

Every real source (those the CNN backbone trained on are held out of the head only):

| group | clips | top-1 |
|---|---|---|
{loso}

Wrong while claiming at least 80 %: {loso_wrong:.1%} of these answers.

## Test split (held-out notes, kits, speakers, organ stops; the unseen rendered bank)

| group | clips | top-1 |
|---|---|---|
{test}

Wrong while claiming at least 80 %: {wrong:.1%} of the real test answers.
"""


if __name__ == "__main__":
  from experiments import launch
  launch.run(__file__, train_and_evaluate, export)
