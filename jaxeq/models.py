"""EQ-matching networks: a 256-point dB curve in, EQ settings in [0, 1]^n out.

Both end in the Nercessian (2020) head and a sigmoid, so every output is a valid setting of
the layout (`Layout.from_unit` maps it to physical units). Inputs are dB curves on
`jaxeq.FREQS`, zero-centred, within about ±12 dB; they are scaled by 1/12 inside the model.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxeq.spectrum import MAX_DIFFERENCE_DB

MODELS = ("mlp", "cnn")


class Head(nn.Module):
  """Nercessian 2020: `depth` × (Dense → LayerNorm → ReLU), then Dense → sigmoid."""
  num_controls: int
  width: int = 256
  depth: int = 3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for _ in range(self.depth):
      x = nn.relu(nn.LayerNorm()(nn.Dense(self.width)(x)))
    return nn.sigmoid(nn.Dense(self.num_controls)(x))


class MatcherMLP(nn.Module):
  """The baseline: the head straight on the curve."""
  num_controls: int
  width: int = 256
  depth: int = 3

  @nn.compact
  def __call__(self, curve_db: jax.Array) -> jax.Array:
    return Head(self.num_controls, self.width, self.depth)(curve_db / MAX_DIFFERENCE_DB)


class MatcherCNN(nn.Module):
  """The proposed matcher: strided 1-D convolutions over the curve, then the same head.

  The convolutions see local shapes (a peak, a shelf's knee) wherever on the frequency axis
  they are; flattening keeps *where* they are for the head.
  """
  num_controls: int
  features: Sequence[int] = (16, 32, 64, 64)
  kernel_size: int = 5
  width: int = 256
  depth: int = 3

  @nn.compact
  def __call__(self, curve_db: jax.Array) -> jax.Array:
    x = (curve_db / MAX_DIFFERENCE_DB)[..., None]
    for features in self.features:
      x = nn.Conv(features, (self.kernel_size,), strides=(2,))(x)
      x = nn.relu(nn.LayerNorm()(x))
    x = x.reshape(*x.shape[:-2], -1)
    return Head(self.num_controls, self.width, self.depth)(x)


def make_model(name: str, num_controls: int, **kwargs) -> nn.Module:
  """`mlp` or `cnn` for a layout with `num_controls` free controls."""
  if name == "mlp":
    return MatcherMLP(num_controls, **kwargs)
  if name == "cnn":
    return MatcherCNN(num_controls, **kwargs)
  raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")


def init_params(model: nn.Module, key: jax.Array, num_points: int = 256):
  """The model's parameters for curves of `num_points` points."""
  return model.init(key, jnp.zeros((1, num_points), jnp.float32))["params"]
