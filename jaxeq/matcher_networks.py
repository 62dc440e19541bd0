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
from jax import lax

from jaxeq.spectrum import MAX_DIFFERENCE_DB

MODELS = ("mlp", "cnn")
LAYER_NORM_EPSILON = 1e-6  # flax's default, which the shipped matchers were trained with


def _mean_over_features(x: jax.Array) -> jax.Array:
  """The mean over the last axis, as a matrix product: XLA:CPU's reductions over a short
  minor axis (16 to 64 features here) are several times slower than its matmul."""
  return x @ jnp.full((x.shape[-1], 1), 1.0 / x.shape[-1], x.dtype)


def _normalized(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`x` centred and scaled to unit variance over its last axis, and 1/std."""
  mean = _mean_over_features(x)
  variance = jnp.maximum(_mean_over_features(x * x) - mean * mean, 0.0)
  rstd = lax.rsqrt(variance + LAYER_NORM_EPSILON)
  return (x - mean) * rstd, rstd


@jax.custom_vjp
def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
  """Layer normalisation over the last axis (flax's `nn.LayerNorm` formula)."""
  return _normalized(x)[0] * scale + bias


def _layer_norm_forward(x, scale, bias):
  x_hat, rstd = _normalized(x)
  return x_hat * scale + bias, (x_hat, rstd, scale)


def _layer_norm_backward(saved, dy):
  # The closed form of the gradient: what autodiff of the forward pass gives, in two
  # feature means instead of the many reductions XLA:CPU made of it.
  x_hat, rstd, scale = saved
  g = dy * scale
  dx = rstd * (g - _mean_over_features(g) - x_hat * _mean_over_features(g * x_hat))
  rows = dy.reshape(-1, dy.shape[-1])
  ones = jnp.ones((1, rows.shape[0]), dy.dtype)
  return dx, (ones @ (rows * x_hat.reshape(rows.shape)))[0], (ones @ rows)[0]


layer_norm.defvjp(_layer_norm_forward, _layer_norm_backward)


class LayerNorm(nn.Module):
  """`nn.LayerNorm()` with the same parameters (`scale`, `bias`) and outputs (to float32
  rounding), 1.26× faster to train on XLA:CPU (benchmarks/RESULTS.md, issue 19)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
    return layer_norm(x, scale, bias)


class Head(nn.Module):
  """Nercessian 2020: `depth` × (Dense → LayerNorm → ReLU), then Dense → sigmoid."""
  num_controls: int
  width: int = 256
  depth: int = 3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for _ in range(self.depth):
      x = nn.relu(LayerNorm()(nn.Dense(self.width)(x)))
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
      x = nn.relu(LayerNorm()(x))
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
  # Jitted: one compiled program instead of every initialiser's ops compiled one by one.
  return jax.jit(model.init)(key, jnp.zeros((1, num_points), jnp.float32))["params"]
