"""The instrument classifier: a CNN over 6 s log-frequency spectrograms, 35 classes.

    classifier = jaxeq.load_classifier()
    probabilities = classifier.predict(audio, sample_rate)   # {"snare": 0.93, ...}

Audio of any length works: a clip shorter than a window (a 50 ms one-shot, a 2 s phrase) is
classified from the frames that hold it, not from the padding around it (the network pools
over frames with audio only); the logits of a long track are averaged over its windows
(`jaxeq.log_spectrogram_windows`). The probabilities are calibrated: the logits are divided by
a temperature fitted on real validation recordings (`fit_temperature`), so a confidence of 0.8
is right about four times in five. A classifier directory holds
`config.json` (classes, network, how it was trained), `params/` (orbax) and `MODEL_CARD.md`;
the shipped one lives in `jaxeq/assets/classifier/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from jaxeq import exported
from jaxeq.spectrum import MAX_WINDOWS, log_spectrogram_windows

FORMAT = "jaxeq.classifier/1"
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
  def __call__(self, windows_db: jax.Array, train: bool = False) -> jax.Array:
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


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
  """The temperature that minimises the negative log-likelihood of `labels` (Guo et al. 2017).

  One scalar, fitted on held-out clips: it changes the confidence, never the ranking.
  """
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

  def predict(self, audio, sample_rate: int) -> dict[str, float]:
    """Class name → calibrated probability (summing to 1), from logits averaged over the
    windows (at most `MAX_WINDOWS`, evenly spaced), most probable first."""
    windows = log_spectrogram_windows(audio, sample_rate, MAX_WINDOWS)
    probabilities = softmax(self.window_logits(windows).mean(axis=0), self.temperature)
    return dict(sorted(zip(self.classes, probabilities.tolist()), key=lambda kv: -kv[1]))

  def save(self, directory, training: dict | None = None, card: str | None = None) -> None:
    exported.save(directory, self.params, card=card, config={
        "format": FORMAT, "classes": list(self.classes), "model_kwargs": self.model_kwargs,
        "temperature": self.temperature, "training": training or {}})


def load_classifier(directory=None) -> Classifier:
  """The shipped classifier, or one saved by `Classifier.save` in `directory`."""
  config = exported.load_config(ASSET if directory is None else directory, FORMAT)
  classifier = Classifier(config["classes"], None, config["model_kwargs"],
                          config.get("temperature", 1.0))
  like = jax.eval_shape(lambda: init_params(classifier.model, jax.random.key(0)))
  classifier.params = exported.load_params(ASSET if directory is None else directory, like)
  return classifier
