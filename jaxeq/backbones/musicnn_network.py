"""musicnn's network in Flax (`Musicnn`, `apply`): the rest of `jaxeq.backbones.musicnn`.

Apart from it because Flax is slow to import (about 0.2 s) and a process that reads the
network from the store of exported ones (`jaxeq.forward_store`) never needs it;
`jaxeq.backbones.musicnn` still gives these names.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


class Musicnn(nn.Module):
  """musicnn's `build_musicnn`: musically motivated front end, dense mid-end, pooled back end.

  Front end, on batch-normalised log-mel (the input's only normalisation is that learned
  batch norm): two "timbral" convolutions 7 frames × 40 % and 70 % of the bands, and three
  "temporal" ones of 128, 64 and 32 frames × 1 band, each max-pooled over all bands: 561
  features a frame. Mid-end: three 1-D convolutions of 7 frames, the last two residual.
  Back end: every frame's features (front end and mid-end, 753) max- and mean-pooled over
  time, then a dense layer (the 200-d "penultimate" embedding, batch-normalised after its
  ReLU, so it can be negative) and the tag logits. Any number of frames works; the model was
  trained on 187.
  """
  num_tags: int = 50
  timbral_features: int = 204  # int(1.6 · 128), musicnn's num_filt of 1.6
  temporal_features: int = 51  # int(1.6 · 32)
  midend_features: int = 64
  backend_units: int = 200

  @nn.compact
  def __call__(self, log_mels: jax.Array) -> dict[str, jax.Array]:
    """`(batch, frames, 96)` → logits, probabilities (sigmoid: tags are not exclusive),
    penultimate `(batch, 200)` and the pooled mid-end features `(batch, 753)`."""
    # tf.compat.v1.layers.batch_normalization's epsilon, not Flax's default.
    norm = functools.partial(nn.BatchNorm, use_running_average=True, epsilon=1e-3)
    x = norm(name="input_bn")(log_mels[..., None])
    bands = x.shape[-2]
    front = []
    for label, fraction in (("74", 0.4), ("77", 0.7)):
      # musicnn pads time only (zeros, after the batch norm): "same" in time, "valid" in bands.
      conv = nn.Conv(self.timbral_features, (7, int(fraction * bands)),
                     padding=((3, 3), (0, 0)), name=f"timbral_{label}")
      front.append(jnp.max(norm(name=f"timbral_{label}_bn")(nn.relu(conv(x))), axis=-2))
    for length in (128, 64, 32):
      # TensorFlow's "same" for an even kernel: one frame more after than before.
      conv = nn.Conv(self.temporal_features, (length, 1),
                     padding=(((length - 1) // 2, length // 2), (0, 0)), name=f"temporal_{length}")
      front.append(jnp.max(norm(name=f"temporal_{length}_bn")(nn.relu(conv(x))), axis=-2))
    y = jnp.concatenate(front, axis=-1)
    frames = [y]
    for i in (1, 2, 3):
      conv = nn.Conv(self.midend_features, (7,), padding=((3, 3),), name=f"midend_{i}")
      z = norm(name=f"midend_{i}_bn")(nn.relu(conv(y)))
      y = z if i == 1 else z + y
      frames.append(y)
    features = jnp.concatenate(frames, axis=-1)
    max_pool = jnp.max(features, axis=-2)
    mean_pool = jnp.mean(features, axis=-2)
    # musicnn flattens (features, [max, mean]): the two interleave, feature by feature.
    pooled = jnp.stack([max_pool, mean_pool], axis=-1).reshape(*max_pool.shape[:-1], -1)
    pooled = norm(name="pool_bn")(pooled)
    penultimate = norm(name="penultimate_bn")(
        nn.relu(nn.Dense(self.backend_units, name="penultimate")(pooled)))
    logits = nn.Dense(self.num_tags, name="tags")(penultimate)
    return {"logits": logits, "probabilities": nn.sigmoid(logits), "penultimate": penultimate,
            "mean_pool": mean_pool, "max_pool": max_pool}


@jax.jit
def apply(variables: dict, log_mels: jax.Array) -> dict[str, jax.Array]:
  """`Musicnn` on `(batch, frames, 96)` log-mel patches, jitted."""
  return Musicnn(num_tags=variables["params"]["tags"]["bias"].shape[0]).apply(variables, log_mels)
