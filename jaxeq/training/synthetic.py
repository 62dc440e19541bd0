"""Random-EQ curves for the base (stage-1) training: the curve is the data, its settings the label.

Settings are drawn by the layouts' sampler (`sample_settings`), which only training uses.

A dataset is `size` examples; example `i` is drawn from `fold_in(key, i)`, so any example can
be made on its own, in any order, on any host, and a batch is just a list of example ids.
The training stream visits the dataset in a fresh permutation every epoch; batch `step` is a
pure function of (seed, step), which is all an exact resume needs to know about the data.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxeq.layouts import Layout, Settings
from jaxeq.spectrum import FREQS, MAX_DIFFERENCE_DB, SAMPLE_RATE, smooth, zero_centre

# Paper's stage-1 training-set size (DESIGN.md §1).
PAPER_TRAIN_SIZE = 156_730
# Keys of the splits, folded into the seed so that the splits never share an example.
_SPLITS = {"train": 0, "val": 1, "test": 2}


class Curves(NamedTuple):
  """A batch: zero-centred dB curves on `FREQS`, and the settings that made them."""
  curve: jax.Array  # (N, 256) dB
  unit: jax.Array  # (N, num_controls) settings in [0, 1], `Layout.to_unit`


def split_key(seed: int, split: str) -> jax.Array:
  if split not in _SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {', '.join(_SPLITS)}")
  return jax.random.fold_in(jax.random.PRNGKey(seed), _SPLITS[split])


def curves_for(layout: Layout, key: jax.Array, ids, scheme: str = "paper",
               max_db: float | None = MAX_DIFFERENCE_DB,
               smoothing_octaves: float = 0.0) -> Curves:
  """The examples `ids` of the dataset `key`: random settings and their zero-centred response.

  Where a curve exceeds ±`max_db`, the settings' gains are scaled down until it does not, so
  the network trains on curves within the range `jaxeq.difference` keeps its curves in
  (≤ 12 dB) while every curve stays the exact response of its settings.
  """
  ids = jnp.asarray(ids, jnp.uint32)
  settings = jax.vmap(lambda i: sample_settings(layout, jax.random.fold_in(key, i), (), scheme))(ids)
  if max_db is not None:
    peak = jnp.max(jnp.abs(_response(layout, settings)), axis=-1, keepdims=True)
    settings = settings._replace(gain_db=settings.gain_db * jnp.minimum(1.0, max_db / peak))
  curve = _response(layout, settings)
  if smoothing_octaves:
    curve = zero_centre(smooth(curve, smoothing_octaves))
  return Curves(curve, layout.to_unit(settings))


def _response(layout: Layout, settings: Settings) -> jax.Array:
  return zero_centre(layout.response_db(settings, FREQS, SAMPLE_RATE))


@functools.lru_cache(maxsize=8)
def curve_maker(layout: Layout, **curve_kwargs):
  """`curves_for` jitted for `layout`, one per layout and settings: the validation and test
  sets and the training stream compile their shapes once in a process."""
  return jax.jit(functools.partial(curves_for, layout, **curve_kwargs))


class CurveStream:
  """Training batches: `size` examples per epoch, reshuffled every epoch, batch `step` → ids.

  `stream(step)` returns this process's share of the global batch as NumPy arrays (all of it
  on one host), which is what `jaxeq.training.trainer.train` expects of a batch source.
  """

  def __init__(self, layout: Layout, seed: int, batch_size: int, size: int = PAPER_TRAIN_SIZE,
               **curve_kwargs):
    if not 0 < batch_size <= size:
      raise ValueError(f"batch_size={batch_size} must be in 1..{size} (the dataset size)")
    self.batch_size, self.size = batch_size, size
    self.steps_per_epoch = size // batch_size  # the remainder is left out of each epoch
    self._key = split_key(seed, "train")
    self._make = curve_maker(layout, **curve_kwargs)

  @functools.lru_cache(maxsize=2)
  def _order(self, epoch: int) -> np.ndarray:
    key = jax.random.fold_in(jax.random.fold_in(self._key, 2**31 - 1), epoch)
    return np.asarray(jax.random.permutation(key, self.size))

  def ids(self, step: int) -> np.ndarray:
    epoch, index = divmod(step, self.steps_per_epoch)
    return self._order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]

  def __call__(self, step: int) -> Curves:
    ids = self.ids(step)
    share = len(ids) // jax.process_count()
    ids = ids[jax.process_index() * share:(jax.process_index() + 1) * share]
    return Curves(*(np.asarray(x) for x in self._make(self._key, ids)))


def fixed_set(layout: Layout, seed: int, split: str, size: int, chunk: int = 2048,
              **curve_kwargs) -> Curves:
  """A fixed validation or test set of `size` curves (NumPy), the same for a given seed."""
  if split == "train":
    raise ValueError("fixed_set is for 'val' or 'test'; training data comes from CurveStream")
  key = split_key(seed, split)
  make = curve_maker(layout, **curve_kwargs)
  parts = [make(key, np.arange(start, min(start + chunk, size))) for start in range(0, size, chunk)]
  return Curves(*(np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(2)))


# --- the layouts' sampler ------------------------------------------------------------


def sample_settings(layout: Layout, key: jax.Array, shape: tuple[int, ...],
                    scheme: str = "paper") -> Settings:
  """Random settings of `layout`, of batch shape `shape`.

  `paper` (Mockenhaupt et al.): frequency and Q log-uniform in range, gain = g_max u^3 with
  u ~ U(-1, 1), which favours the small gains real corrections mostly have.
  `nercessian` (Nercessian 2020), moved onto this layout's ranges: shelf frequencies from
  Beta(0.25, 5) (low) and Beta(4, 5) (high), peaks uniform between the shelves, gains
  switched on with probability 1/2 (shelves) or 1/3 (peaks) and drawn from Beta(5, 5),
  Q from Beta(1, 5).
  """
  if scheme == "paper":
    return _sample_paper(layout, key, shape)
  if scheme == "nercessian":
    return _sample_nercessian(layout, key, shape)
  raise ValueError(f"unknown sampling scheme {scheme!r}; expected 'paper' or 'nercessian'")


def _sample_paper(layout: Layout, key, shape) -> Settings:
  k_f, k_g, k_q = jax.random.split(key, 3)
  full = (*shape, len(layout.bands))
  unit_f = jax.random.uniform(k_f, full)
  unit_q = jax.random.uniform(k_q, full)
  u = jax.random.uniform(k_g, full, minval=-1.0, maxval=1.0)
  lo, hi = layout.bounds("gain_db")
  gain = (lo + hi) / 2 + (hi - lo) / 2 * u**3
  return Settings(_log_interp(layout, "freq_hz", unit_f), jnp.asarray(gain, jnp.float32),
                  _log_interp(layout, "q", unit_q))


def _sample_nercessian(layout: Layout, key, shape) -> Settings:
  k_ls, k_hs, k_pk, k_on, k_g, k_q = jax.random.split(key, 6)
  full = (*shape, len(layout.bands))
  kinds = np.array(layout.kinds)
  is_low, is_high = kinds == "low_shelf", kinds == "high_shelf"
  flo, fhi = layout.bounds("freq_hz")
  f_low = flo + (fhi - flo) * jax.random.beta(k_ls, 0.25, 5.0, full)
  f_high = flo + (fhi - flo) * jax.random.beta(k_hs, 4.0, 5.0, full)
  # Peaks lie between the (first) low shelf and the (first) high shelf where there are any.
  edge_lo = f_low[..., int(np.argmax(is_low)), None] if is_low.any() else flo
  edge_hi = f_high[..., int(np.argmax(is_high)), None] if is_high.any() else fhi
  a, b = jnp.minimum(edge_lo, edge_hi), jnp.maximum(edge_lo, edge_hi)
  f_peak = a + (b - a) * jax.random.uniform(k_pk, full)
  freq = jnp.where(is_low, f_low, jnp.where(is_high, f_high, f_peak))
  p_on = np.where(is_low | is_high, 0.5, 1 / 3)
  on = jax.random.bernoulli(k_on, p_on, full)
  glo, ghi = layout.bounds("gain_db")
  gain = jnp.where(on, glo + (ghi - glo) * jax.random.beta(k_g, 5.0, 5.0, full), 0.0)
  qlo, qhi = layout.bounds("q")
  q = qlo + (qhi - qlo) * jax.random.beta(k_q, 1.0, 5.0, full)
  return layout.clip(Settings(freq, gain, q))


def _log_interp(layout: Layout, control: str, unit: jax.Array) -> jax.Array:
  lo, hi = (np.log(end) for end in layout.bounds(control))
  return jnp.exp(lo + (hi - lo) * unit)
