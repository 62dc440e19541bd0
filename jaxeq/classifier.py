"""The instrument classifier, 37 classes (`jaxeq.CLASSES`), in two kinds.

    classifier = jaxeq.load_classifier()
    probabilities = classifier.predict(audio, sample_rate)   # {"snare": 0.93, ...}

`Classifier` is a CNN over 6 s log-frequency spectrograms, trained here
(`experiments.classifier`). Audio of any length works: a clip shorter than a window (a 50 ms
one-shot, a 2 s phrase) is classified from the frames that hold it, not from the padding around
it (the network pools over frames with audio only); the logits of a long track are averaged
over its windows (`jaxeq.log_spectrogram_windows`).

`FusedClassifier`, the shipped one, reads frozen backbones — that CNN's pooled features and
musicnn's, pretrained on real music (`Backbones`) — with a linear head (`head_logits`) trained
by `experiments.recognition`.

Both are calibrated: the logits are divided by a temperature (`fit_temperature`) fitted on
held-out recordings, so a confidence of 0.8 is right about four times in five. A classifier
directory holds `config.json` (classes, networks, how they were trained), `params.npz` and
`MODEL_CARD.md`; the shipped one lives in `jaxeq/assets/classifier/`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxeq import exported
from jaxeq.spectrum import MAX_WINDOWS, log_spectrogram_windows

FORMAT = "jaxeq.classifier/1"  # a CNN (`Classifier`)
FUSED_FORMAT = "jaxeq.classifier/2"  # backbones and a head (`FusedClassifier`)
ASSET = Path(__file__).parent / "assets" / "classifier"
# Spectrogram values more than this far below a window's loudest are treated as the floor:
# padding and noise carry no information about the instrument.
DYNAMIC_RANGE_DB = 80.0


def normalise_windows(windows_db: jax.Array) -> jax.Array:
  """dB windows `(..., frames, freqs)` → [0, 1] relative to each window's peak.

  Relative to the peak, the classifier does not care about the track's level. The floor is 0,
  the value the convolutions pad with, so padding around a short clip looks like the edge of
  a window: where a clip sits in its window does not change what the network sees.
  """
  peak = jnp.max(windows_db, axis=(-2, -1), keepdims=True)
  relative = jnp.maximum(windows_db - peak, -DYNAMIC_RANGE_DB)
  return 1.0 + relative / DYNAMIC_RANGE_DB


def audible_frames(normalised: jax.Array) -> jax.Array:
  """`(..., frames)` bool: the frames of normalised windows that hold anything above the floor.

  Zero padding (a clip shorter than a window) and digital silence sit exactly at the floor.
  """
  return jnp.max(normalised, axis=-1) > 0.0


class InstrumentCNN(nn.Module):
  """A strided stem, then max-pool → conv → GroupNorm → ReLU blocks, global pooling, Dense.

  Pooling before each convolution keeps the cost (about 75 M multiply-adds a window) fit
  for CPU training. GroupNorm rather than BatchNorm: the train state stays params-only and
  predictions do not depend on the batch.
  """
  num_classes: int
  stem_features: int = 16
  features: Sequence[int] = (32, 64, 128, 128)
  dropout: float = 0.3

  @nn.compact
  def __call__(self, windows_db: jax.Array, train: bool = False,
               embedding: bool = False) -> jax.Array:
    """The class logits, or with `embedding` the pooled features they are read from."""
    x = normalise_windows(windows_db.astype(jnp.float32))
    # Which frames hold audio, followed through every downsampling of the time axis. Features
    # of the other frames are zeroed after every layer, as the convolutions pad the edges of a
    # window: padding stays padding all the way up.
    audible = audible_frames(x)[..., None, None].astype(jnp.float32)
    x = nn.relu(nn.Conv(self.stem_features, (5, 5), strides=(2, 2))(x[..., None]))
    audible = nn.max_pool(audible, (2, 1), strides=(2, 1), padding="SAME")
    x = x * audible
    for features in self.features:
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
      audible = nn.max_pool(audible, (2, 1), strides=(2, 1))
      x = nn.Conv(features, (3, 3))(x)
      x = nn.GroupNorm(num_groups=8)(x, mask=jnp.broadcast_to(audible > 0, x.shape))
      x = nn.relu(x) * audible
    # Mean and max over time and frequency: sustained colour and salient events both count;
    # only frames with audio count (a window with none at all falls back to every frame).
    frames = jnp.maximum(jnp.sum(audible, axis=(-3, -2)), 1.0)
    mean = jnp.sum(x, axis=(-3, -2)) / (frames * x.shape[-2])
    peak = jnp.max(x, axis=(-3, -2))  # x >= 0 after the ReLU, 0 where there is no audio
    x = jnp.concatenate([mean, peak], axis=-1)
    if embedding:
      return x
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)


def init_params(model: InstrumentCNN, key: jax.Array, frames: int = 256, freqs: int = 256):
  # Jitted: one compiled program instead of every initialiser's ops compiled one by one.
  return jax.jit(model.init)(key, jnp.zeros((1, frames, freqs), jnp.float32))["params"]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
  """Probabilities along the last axis of `logits / temperature`."""
  scaled = np.asarray(logits, np.float64) / temperature
  e = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def ranked(classes: Sequence[str], probabilities: np.ndarray) -> dict[str, float]:
  """Class name → probability, most probable first."""
  return dict(sorted(zip(classes, np.asarray(probabilities).tolist()), key=lambda kv: -kv[1]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
  """The temperature that minimises the negative log-likelihood of `labels` (Guo et al. 2017).

  One scalar, fitted on held-out clips: it changes the confidence, never the ranking.
  """
  import scipy.optimize  # here: only calibration needs it, not a processed track
  logits, labels = np.asarray(logits, np.float64), np.asarray(labels)

  def nll(log_t):
    p = softmax(logits, np.exp(log_t))[np.arange(len(labels)), labels]
    return -np.mean(np.log(np.maximum(p, 1e-12)))

  return float(np.exp(scipy.optimize.minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = 15) -> float:
  """How far the top confidence is from the accuracy, averaged over `bins` confidence bins
  weighted by their clips: 0 for a classifier whose confidence means what it says."""
  confidence = np.max(probabilities, axis=-1)
  correct = np.argmax(probabilities, axis=-1) == np.asarray(labels)
  which = np.minimum((confidence * bins).astype(int), bins - 1)
  gap = 0.0
  for b in range(bins):
    inside = which == b
    if inside.any():
      gap += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
  return float(gap)


# musicnn's outputs a classifier reads, per patch: the tag embedding and the mid-end's features
# pooled over the patch (where timbre shows before the tags' genre and mood are read from it).
MUSICNN_OUTPUTS = ("penultimate", "mean_pool", "max_pool")
MAX_PATCHES = 8  # of a long track, evenly spaced, as the CNN's MAX_WINDOWS


class Backbones:
  """Frozen feature extractors: a trained `InstrumentCNN`'s pooled features (and its logits),
  and the pretrained musicnn models' `MUSICNN_OUTPUTS`, each averaged over a clip's windows.

  `features(audio, sample_rate)` → `{name: vector}`: "cnn" (its embedding), "cnn_logits",
  and "NAME/OUTPUT" for each musicnn model NAME ("msd", "mtt").
  """

  def __init__(self, cnn: "Classifier", musicnn_models: Sequence[str] = ("msd", "mtt")):
    from jaxeq.backbones import musicnn  # here: only a classifier that reads it needs it
    self._musicnn = musicnn
    self.cnn = cnn
    self.taggers = {name: musicnn.load(name) for name in musicnn_models}
    self._embed = jax.jit(lambda p, w: cnn.model.apply({"params": p}, w, embedding=True))

  def features(self, audio, sample_rate: int) -> dict[str, np.ndarray]:
    windows = jnp.asarray(log_spectrogram_windows(audio, sample_rate, MAX_WINDOWS), jnp.float32)
    embedding = np.asarray(self._embed(self.cnn.params, windows)).mean(0)
    # The CNN's logits are its last Dense layer on that embedding (linear: the mean commutes),
    # so the network runs once.
    dense = self.cnn.params["Dense_0"]
    out = {"cnn": embedding, "cnn_logits": embedding @ np.asarray(dense["kernel"])
           + np.asarray(dense["bias"])}
    if self.taggers:
      mels = self._musicnn.patches(self._musicnn.log_mel(
          self._musicnn.audio_at_16k(audio, sample_rate)))
      if len(mels) > MAX_PATCHES:  # chosen on the host: a gather on the device is 5 programs
        mels = np.asarray(mels)[np.linspace(0, len(mels) - 1, MAX_PATCHES).round().astype(int)]
      for name, tagger in self.taggers.items():
        outputs = self._musicnn.apply(tagger.variables, mels)
        out.update({f"{name}/{key}": np.asarray(outputs[key]).mean(0) for key in MUSICNN_OUTPUTS})
    return out


def head_logits(head: dict, features) -> jax.Array:
  """A linear head's logits for `(..., features)`: standardised by the head's own mean and
  scale (those of the clips it was trained on), then its kernel and bias."""
  return ((features - head["mean"]) / head["scale"]) @ head["kernel"] + head["bias"]


class Classifier:
  """The trained network bound to its class names and its calibration temperature."""

  def __init__(self, classes: Sequence[str], params, model_kwargs: dict | None = None,
               temperature: float = 1.0):
    if not (np.isfinite(temperature) and temperature > 0):
      raise ValueError(f"classifier temperature {temperature!r}: expected a positive number")
    self.classes = tuple(classes)
    self.temperature = float(temperature)
    self.model_kwargs = dict(model_kwargs or {})
    self.model = InstrumentCNN(len(self.classes), **exported.hashable(self.model_kwargs))
    self.params = params
    self._logits = jax.jit(lambda p, w: self.model.apply({"params": p}, w))

  def window_logits(self, windows_db) -> np.ndarray:
    """`(windows, classes)` logits for `(windows, 256, 256)` dB spectrograms."""
    return np.asarray(self._logits(self.params, jnp.asarray(windows_db, jnp.float32)))

  def clip_logits(self, windows_db, window_clip, num_clips: int, chunk: int = 64) -> np.ndarray:
    """`(clips, classes)` for many clips at once: each clip's window logits averaged.

    `windows_db` `(windows, 256, 256)` may be a memory map; `window_clip` gives each window's
    clip, as `data_prep.features` stores them.
    """
    logits = np.concatenate([self.window_logits(np.asarray(windows_db[i:i + chunk]))
                             for i in range(0, len(window_clip), chunk)])
    sums = np.zeros((num_clips, logits.shape[1]))
    np.add.at(sums, window_clip, logits)
    return sums / np.maximum(np.bincount(window_clip, minlength=num_clips), 1)[:, None]

  def logits(self, audio, sample_rate: int) -> np.ndarray:
    """`(classes,)`: the logits of a clip, averaged over its windows (at most `MAX_WINDOWS`,
    evenly spaced)."""
    return self.window_logits(log_spectrogram_windows(audio, sample_rate, MAX_WINDOWS)).mean(0)

  def predict(self, audio, sample_rate: int) -> dict[str, float]:
    """Class name → calibrated probability (summing to 1), most probable first."""
    return ranked(self.classes, softmax(self.logits(audio, sample_rate), self.temperature))

  def save(self, directory, training: dict | None = None, card: str | None = None) -> None:
    exported.save(directory, self.params, card=card, config={
        "format": FORMAT, "classes": list(self.classes), "model_kwargs": self.model_kwargs,
        "temperature": self.temperature, "training": training or {}})


class FusedClassifier:
  """Frozen backbones (`Backbones`: the CNN's features, musicnn's) read by a trained linear
  head: the classifier that has heard real music. Same interface as `Classifier`."""

  def __init__(self, classes: Sequence[str], cnn: Classifier, head: dict,
               features: Sequence[str], temperature: float = 1.0):
    if not (np.isfinite(temperature) and temperature > 0):
      raise ValueError(f"classifier temperature {temperature!r}: expected a positive number")
    self.classes, self.cnn, self.features = tuple(classes), cnn, tuple(features)
    self.head = {k: jnp.asarray(v, jnp.float32) for k, v in head.items()}
    self.temperature = float(temperature)
    models = sorted({f.split("/")[0] for f in self.features if "/" in f})
    self.backbones = Backbones(cnn, models)
    self._logits = jax.jit(head_logits)

  def feature_vector(self, audio, sample_rate: int) -> np.ndarray:
    """The head's input for a clip: its `features` side by side."""
    outputs = self.backbones.features(audio, sample_rate)
    return np.concatenate([outputs[name] for name in self.features])

  def logits(self, audio, sample_rate: int) -> np.ndarray:
    """`(classes,)`: the head's logits for a clip."""
    return np.asarray(self._logits(self.head, self.feature_vector(audio, sample_rate)))

  def predict(self, audio, sample_rate: int) -> dict[str, float]:
    """Class name → calibrated probability (summing to 1), most probable first."""
    return ranked(self.classes, softmax(self.logits(audio, sample_rate), self.temperature))

  def save(self, directory, training: dict | None = None, card: str | None = None) -> None:
    exported.save(directory, {"cnn": self.cnn.params, "head": self.head}, card=card, config={
        "format": FUSED_FORMAT, "classes": list(self.classes), "features": list(self.features),
        "head_width": int(self.head["mean"].shape[0]),
        "cnn": {"classes": list(self.cnn.classes), "model_kwargs": self.cnn.model_kwargs},
        "temperature": self.temperature, "training": training or {}})


def spectrogram_cnn(directory=None) -> Classifier:
  """The spectrogram CNN of a classifier directory (default: the shipped one): the classifier
  itself, or a `FusedClassifier`'s backbone."""
  classifier = load_classifier(directory)
  return classifier if isinstance(classifier, Classifier) else classifier.cnn


def load_classifier(directory=None) -> Classifier | FusedClassifier:
  """The shipped classifier, or one saved by `Classifier.save` or `FusedClassifier.save` in
  `directory`."""
  directory = ASSET if directory is None else directory
  config = exported.load_config(directory, (FORMAT, FUSED_FORMAT))
  if config["format"] == FORMAT:
    classifier = Classifier(config["classes"], None, config["model_kwargs"],
                            config.get("temperature", 1.0))
    like = jax.eval_shape(lambda: init_params(classifier.model, jax.random.key(0)))
    classifier.params = exported.load_params(directory, like)
    return classifier
  cnn = Classifier(config["cnn"]["classes"], None, config["cnn"]["model_kwargs"])
  width, classes = config["head_width"], len(config["classes"])
  like = {"cnn": jax.eval_shape(lambda: init_params(cnn.model, jax.random.key(0))),
          "head": {name: jax.ShapeDtypeStruct(shape, jnp.float32) for name, shape in
                   (("mean", (width,)), ("scale", (width,)), ("kernel", (width, classes)),
                    ("bias", (classes,)))}}
  params = exported.load_params(directory, like)
  cnn.params = params["cnn"]
  return FusedClassifier(config["classes"], cnn, params["head"], config["features"],
                         config.get("temperature", 1.0))
