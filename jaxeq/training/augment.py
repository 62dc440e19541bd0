"""Augmentations of dB spectrogram windows for the classifier, as pure JAX on a batch.

Real recordings differ from rendered ones in level, tone, timing, noise and bleed from other
instruments; each augmentation imitates one of these directly on `(batch, frames, freqs)`
dB windows, where an EQ is an added curve and mixing is adding powers.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections

from jaxeq.layouts import get_layout
from jaxeq.spectrum import FREQS, SAMPLE_RATE
from jaxeq.training.synthetic import sample_settings


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "gain_db": 12.0,          # level change, +-
      # A random paper4 EQ colouration with gains uniform in +-eq_max_db: one instrument's
      # long-term spectrum differs this much between two banks (FluidR3_GM and
      # MuseScore_General's reference clips: 3 dB on average, 10 to 26 dB at most).
      "eq_probability": 0.8,
      "eq_max_db": 12.0,
      "shift_probability": 0.5,  # a circular time shift
      "noise_probability": 0.5,  # a noise floor ...
      "noise_below_db": (30.0, 70.0),  # ... this far below the window's peak
      "mix_probability": 0.3,    # another example of the batch mixed in ...
      "mix_below_db": (12.0, 30.0),  # ... this far down
      # Only the first frames kept, the rest padding, as in the window of a short clip: a
      # 50 ms one-shot holds 2 of a window's 256 frames. Lengths are log-uniform in the range.
      "crop_probability": 0.3,
      "crop_frames": (2, 256),
  })


_LN10_OVER_10 = math.log(10.0) / 10.0  # not jnp: no JAX work at import (jax.distributed)


def _power_add(a_db, b_db):
  """The dB level of the sum of two powers given in dB (stable for any levels)."""
  return jnp.logaddexp(a_db * _LN10_OVER_10, b_db * _LN10_OVER_10) / _LN10_OVER_10


def augment_windows(key: jax.Array, windows_db: jax.Array,
                    config: ml_collections.ConfigDict) -> jax.Array:
  """A randomly altered copy of `(batch, frames, freqs)` dB windows on `jaxeq.FREQS`."""
  x = windows_db.astype(jnp.float32)
  batch = x.shape[0]
  keys = jax.random.split(key, 13)

  def chosen(k, p):  # which examples get an augmentation, shaped to broadcast
    return jax.random.bernoulli(k, p, (batch, 1, 1))

  x = x + jax.random.uniform(keys[0], (batch, 1, 1), minval=-config.gain_db,
                             maxval=config.gain_db)
  # Bleed first, so the bleed is coloured and shifted with the rest of the recording.
  mix_level = jax.random.uniform(keys[1], (batch, 1, 1), minval=config.mix_below_db[0],
                                 maxval=config.mix_below_db[1])
  mixed = _power_add(x, jnp.roll(x, 1, axis=0) - mix_level)
  x = jnp.where(chosen(keys[2], config.mix_probability), mixed, x)

  layout = get_layout("paper4")
  settings = sample_settings(layout, keys[3], (batch,))
  settings = settings._replace(gain_db=jax.random.uniform(
      keys[10], settings.gain_db.shape, minval=-config.eq_max_db, maxval=config.eq_max_db))
  tilt = layout.response_db(settings, FREQS, SAMPLE_RATE)[:, None, :]
  x = jnp.where(chosen(keys[4], config.eq_probability), x + tilt, x)

  shifts = jax.random.randint(keys[5], (batch,), 0, x.shape[1])
  shifted = jax.vmap(lambda w, s: jnp.roll(w, s, axis=0))(x, shifts)
  x = jnp.where(chosen(keys[6], config.shift_probability), shifted, x)

  peak = jnp.max(x, axis=(1, 2), keepdims=True)
  below = jax.random.uniform(keys[7], (batch, 1, 1), minval=config.noise_below_db[0],
                             maxval=config.noise_below_db[1])
  # STFT noise power per bin is exponentially distributed around its mean.
  noise_db = peak - below + 10 * jnp.log10(jax.random.exponential(keys[8], x.shape) + 1e-6)
  x = jnp.where(chosen(keys[9], config.noise_probability), _power_add(x, noise_db), x)

  lo, hi = config.crop_frames
  frames = jnp.exp(jax.random.uniform(keys[11], (batch, 1, 1), minval=jnp.log(lo),
                                      maxval=jnp.log(hi + 1)))
  kept = jnp.arange(x.shape[1])[None, :, None] < jnp.floor(frames)
  cropped = jnp.where(kept, x, jnp.min(x, axis=(1, 2), keepdims=True) - 200.0)  # below any floor
  return jnp.where(chosen(keys[12], config.crop_probability), cropped, x)
