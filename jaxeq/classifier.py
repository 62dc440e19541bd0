"""The instrument classifier: a CNN over 6 s log-frequency spectrograms, 35 classes.

    classifier = jaxeq.load_classifier()
    probabilities = classifier.predict(audio, sample_rate)   # {"snare": 0.93, ...}

Audio of any length works: one window (zero-padded) for a short clip, the logits averaged
over windows for a long one (`jaxeq.log_spectrogram_windows`). A classifier directory holds
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

from jaxeq import exported
from jaxeq.spectrum import MAX_WINDOWS, log_spectrogram_windows

FORMAT = "jaxeq.classifier/1"
ASSET = Path(__file__).parent / "assets" / "classifier"
# Spectrogram values more than this far below a window's loudest are treated as the floor:
# padding and noise carry no information about the instrument.
DYNAMIC_RANGE_DB = 80.0


def normalise_windows(windows_db: jax.Array) -> jax.Array:
  """dB windows `(..., frames, freqs)` → [-1, 1] relative to each window's peak.

  Relative to the peak, the classifier does not care about the track's level.
  """
  peak = jnp.max(windows_db, axis=(-2, -1), keepdims=True)
  relative = jnp.maximum(windows_db - peak, -DYNAMIC_RANGE_DB)
  return 1.0 + 2.0 * relative / DYNAMIC_RANGE_DB


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
    x = normalise_windows(windows_db.astype(jnp.float32))[..., None]
    x = nn.relu(nn.Conv(self.stem_features, (5, 5), strides=(2, 2))(x))
    for features in self.features:
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
      x = nn.Conv(features, (3, 3))(x)
      x = nn.relu(nn.GroupNorm(num_groups=8)(x))
    # Mean and max over time and frequency: sustained colour and salient events both count.
    x = jnp.concatenate([jnp.mean(x, axis=(-3, -2)), jnp.max(x, axis=(-3, -2))], axis=-1)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)


def init_params(model: InstrumentCNN, key: jax.Array, frames: int = 256, freqs: int = 256):
  return model.init(key, jnp.zeros((1, frames, freqs), jnp.float32))["params"]


class Classifier:
  """The trained network bound to its class names."""

  def __init__(self, classes: Sequence[str], params, model_kwargs: dict | None = None):
    self.classes = tuple(classes)
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
    """Class name → probability (summing to 1), from logits averaged over the windows
    (at most `MAX_WINDOWS`, evenly spaced)."""
    windows = log_spectrogram_windows(audio, sample_rate, MAX_WINDOWS)
    logits = self.window_logits(windows).mean(axis=0)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    return dict(sorted(zip(self.classes, probabilities.tolist()), key=lambda kv: -kv[1]))

  def save(self, directory, training: dict | None = None, card: str | None = None) -> None:
    exported.save(directory, self.params, card=card, config={
        "format": FORMAT, "classes": list(self.classes), "model_kwargs": self.model_kwargs,
        "training": training or {}})


def load_classifier(directory=None) -> Classifier:
  """The shipped classifier, or one saved by `Classifier.save` in `directory`."""
  config = exported.load_config(ASSET if directory is None else directory, FORMAT)
  classifier = Classifier(config["classes"], None, config["model_kwargs"])
  like = jax.eval_shape(lambda: init_params(classifier.model, jax.random.key(0)))
  classifier.params = exported.load_params(ASSET if directory is None else directory, like)
  return classifier
