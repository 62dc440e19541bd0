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

import jax
import jax.numpy as jnp
import numpy as np

from jaxeq import exported, forward_store
from jaxeq.spectrum import FREQS, MAX_WINDOWS, WINDOW_FRAMES, log_spectrogram_windows

FORMAT = "jaxeq.classifier/1"  # a CNN (`Classifier`)
FUSED_FORMAT = "jaxeq.classifier/2"  # backbones and a head (`FusedClassifier`)
ASSET = Path(__file__).parent / "assets" / "classifier"
# The network's definition, in `jaxeq.classifier_network` (Flax, which a process reading the
# exported networks never imports), answers here too: `from jaxeq.classifier import
# InstrumentCNN` works as it always did.
_NETWORK_NAMES = ("DYNAMIC_RANGE_DB", "normalise_windows", "audible_frames", "InstrumentCNN",
                  "init_params")


def __getattr__(name):
  if name in _NETWORK_NAMES:
    from jaxeq import classifier_network
    return getattr(classifier_network, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

  def features(self, audio, sample_rate: int) -> dict[str, np.ndarray]:
    # Every network is started before any result is read (JAX dispatches asynchronously):
    # musicnn's front end is prepared on this thread while the CNN runs, and the networks
    # may run side by side.
    windows = np.asarray(log_spectrogram_windows(audio, sample_rate, MAX_WINDOWS), np.float32)
    running = {"cnn": self.cnn.network(embedding=True).fn(self.cnn.params, windows)}
    if self.taggers:
      mels = self._musicnn.patches(self._musicnn.log_mel(
          self._musicnn.audio_at_16k(audio, sample_rate)))
      if len(mels) > MAX_PATCHES:  # chosen on the host: a gather on the device is 5 programs
        mels = np.asarray(mels)[np.linspace(0, len(mels) - 1, MAX_PATCHES).round().astype(int)]
      running.update({name: tagger.network.fn(tagger.variables, mels)
                      for name, tagger in self.taggers.items()})
    embedding = np.asarray(running.pop("cnn")).mean(0)
    # The CNN's logits are its last Dense layer on that embedding (linear: the mean commutes),
    # so the network runs once.
    dense = self.cnn.params["Dense_0"]
    out = {"cnn": embedding, "cnn_logits": embedding @ np.asarray(dense["kernel"])
           + np.asarray(dense["bias"])}
    for name, outputs in running.items():
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
    self.params = params
    self._networks = {}

  @property
  def model(self):
    """The `InstrumentCNN` (Flax, imported here)."""
    from jaxeq.classifier_network import InstrumentCNN
    return InstrumentCNN(len(self.classes), **exported.hashable(self.model_kwargs))

  def network(self, embedding: bool = False) -> forward_store.Forward:
    """The CNN's forward function on `(windows, 256, 256)` dB spectrograms, its logits or with
    `embedding` its pooled features, and its parameters' shapes: traced once, or read from
    the store of exported networks (`jaxeq.forward_store`)."""
    if embedding not in self._networks:
      def trace() -> forward_store.Forward:
        from jaxeq.classifier_network import init_params
        model = self.model
        return forward_store.Forward(
            jax.jit(lambda p, w: model.apply({"params": p}, w, embedding=embedding)),
            jax.eval_shape(lambda: init_params(model, jax.random.key(0))))

      config = {"classes": len(self.classes), "model_kwargs": self.model_kwargs,
                "embedding": embedding}
      self._networks[embedding] = forward_store.forward(
          "classifier_cnn", config, trace, (WINDOW_FRAMES, len(FREQS)))
    return self._networks[embedding]

  def window_logits(self, windows_db) -> np.ndarray:
    """`(windows, classes)` logits for `(windows, 256, 256)` dB spectrograms."""
    return np.asarray(self.network().fn(self.params, np.asarray(windows_db, np.float32)))

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
    classifier.params = exported.load_params(directory, classifier.network().params_like)
    return classifier
  cnn = Classifier(config["cnn"]["classes"], None, config["cnn"]["model_kwargs"])
  width, classes = config["head_width"], len(config["classes"])
  like = {"cnn": cnn.network(embedding=True).params_like,
          "head": {name: jax.ShapeDtypeStruct(shape, jnp.float32) for name, shape in
                   (("mean", (width,)), ("scale", (width,)), ("kernel", (width, classes)),
                    ("bias", (classes,)))}}
  params = exported.load_params(directory, like)
  cnn.params = params["cnn"]
  return FusedClassifier(config["classes"], cnn, params["head"], config["features"],
                         config.get("temperature", 1.0))
