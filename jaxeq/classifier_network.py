"""The classifier's spectrogram CNN (`InstrumentCNN`), in Flax: what `jaxeq.classifier`
binds to its classes and calibration, and trains in `experiments.classifier`.

Apart from `jaxeq.classifier` because Flax is slow to import (about 0.2 s) and a process
that reads the network from the store of exported ones (`jaxeq.forward_store`) never needs
it; `jaxeq.classifier` still gives these names.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

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
