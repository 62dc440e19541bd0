"""EQ layouts: which bands an EQ has and the range of every control.

A layout is configuration — a dict (or `ConfigDict`) such as

    {"name": "paper4", "bands": [
        {"kind": "low_shelf", "freq_hz": [20, 800], "gain_db": [-12, 12], "q": 0.7071}, ...]}

where each control is a `[low, high]` range or a fixed number. The network sees the free
controls as a vector in [0, 1]^n (`Layout.from_unit` / `Layout.to_unit`): frequency and Q
on a log scale, gain on a linear one. A batch of settings is a `Settings` pytree of
`(..., bands)` arrays, and everything here is pure JAX, usable under `jit`, `vmap`, `grad`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxeq import biquad
from jaxeq.eq import EQ, MAX_FREQ_FRACTION, eq_from_arrays

CONTROLS = ("freq_hz", "gain_db", "q")
_LOG_SCALE = {"freq_hz": True, "gain_db": False, "q": True}
_SHELF_Q = round(1 / math.sqrt(2), 4)


class Settings(NamedTuple):
  """Physical EQ settings, each `(..., bands)`."""
  freq_hz: jax.Array
  gain_db: jax.Array
  q: jax.Array


@dataclasses.dataclass(frozen=True)
class BandSpec:
  kind: str
  freq_hz: tuple[float, float]  # (low, high); low == high for a fixed control.
  gain_db: tuple[float, float]
  q: tuple[float, float]

  @classmethod
  def from_config(cls, cfg: Mapping) -> "BandSpec":
    kind = cfg.get("kind")
    if kind not in biquad.KINDS:
      raise ValueError(f"layout band kind {kind!r} is not one of {', '.join(biquad.KINDS)}")
    unknown = set(cfg) - {"kind", *CONTROLS}
    if unknown:
      raise ValueError(f"layout band has unknown keys {sorted(unknown)}")
    defaults = {"gain_db": 0.0, "q": _SHELF_Q}
    ranges = {}
    for name in CONTROLS:
      if name not in cfg and name not in defaults:
        raise ValueError(f"layout band {kind} needs {name}")
      ranges[name] = _range(f"{kind} {name}", cfg.get(name, defaults.get(name)), _LOG_SCALE[name])
    if kind in biquad.GAINLESS_KINDS and ranges["gain_db"] != (0.0, 0.0):
      raise ValueError(f"layout band {kind} has no gain; leave gain_db out")
    return cls(kind, **ranges)

  def to_config(self) -> dict:
    return {"kind": self.kind, **{name: (lo if lo == hi else [lo, hi])
                                  for name in CONTROLS for lo, hi in [getattr(self, name)]}}


def _range(what: str, value, log_scale: bool) -> tuple[float, float]:
  lo, hi = (value, value) if isinstance(value, (int, float)) else tuple(value)
  lo, hi = float(lo), float(hi)
  if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
    raise ValueError(f"layout {what} range {value!r} must be [low, high] with low <= high")
  if log_scale and lo <= 0:
    raise ValueError(f"layout {what} range {value!r} must be positive")
  return lo, hi


class Layout:
  """A parsed layout: the bands, their control ranges, and the maps to and from [0, 1]^n."""

  def __init__(self, name: str, bands: Sequence[BandSpec]):
    if not bands:
      raise ValueError(f"layout {name!r} has no bands")
    self.name = name
    self.bands = tuple(bands)
    self.kinds = tuple(b.kind for b in self.bands)
    # Per control, (bands,) arrays of the range ends; the free (band, control) pairs in the
    # order of the unit vector: band by band, then frequency, gain, Q.
    self._lo = {n: np.array([getattr(b, n)[0] for b in self.bands]) for n in CONTROLS}
    self._hi = {n: np.array([getattr(b, n)[1] for b in self.bands]) for n in CONTROLS}
    self.free_controls = tuple((i, n) for i, b in enumerate(self.bands) for n in CONTROLS
                               if getattr(b, n)[0] < getattr(b, n)[1])
    # Column of each (control, band) in the unit vector; fixed controls read column 0,
    # which cannot change them since their range is empty.
    self._column = {n: np.zeros(len(self.bands), dtype=np.int32) for n in CONTROLS}
    for col, (i, n) in enumerate(self.free_controls):
      self._column[n][i] = col

  @classmethod
  def from_config(cls, cfg: Mapping) -> "Layout":
    if "bands" not in cfg:
      raise ValueError("layout config needs 'bands'")
    return cls(cfg.get("name", "custom"), [BandSpec.from_config(b) for b in cfg["bands"]])

  def to_config(self) -> dict:
    return {"name": self.name, "bands": [b.to_config() for b in self.bands]}

  @property
  def num_controls(self) -> int:
    return len(self.free_controls)

  def __repr__(self) -> str:
    return f"Layout({self.name!r}, {'/'.join(self.kinds)}, {self.num_controls} controls)"

  # Equal layouts are one layout (so that a jitted fit is compiled once for it).
  def __eq__(self, other) -> bool:
    return isinstance(other, Layout) and (self.name, self.bands) == (other.name, other.bands)

  def __hash__(self) -> int:
    return hash((self.name, self.bands))

  def for_sample_rate(self, sample_rate: float) -> "Layout":
    """This layout with every frequency range clipped to what `sample_rate` allows: at most
    `jaxeq.eq.MAX_FREQ_FRACTION` (0.45) of it. A range wholly above becomes that frequency."""
    top = MAX_FREQ_FRACTION * float(sample_rate)
    if all(b.freq_hz[1] <= top for b in self.bands):
      return self
    return Layout(self.name, [dataclasses.replace(b, freq_hz=(min(b.freq_hz[0], top),
                                                              min(b.freq_hz[1], top)))
                              for b in self.bands])

  def allows(self, eq: EQ) -> bool:
    """Whether every band of `eq` lies within this layout's frequency ranges."""
    return all(lo <= band.freq_hz <= hi
               for band, (lo, hi) in zip(eq.bands, (b.freq_hz for b in self.bands)))

  # --- [0, 1]^n <-> physical ---------------------------------------------------------

  def from_unit(self, unit: jax.Array, xp=jnp) -> Settings:
    """Physical settings from `(..., num_controls)` values in [0, 1]; `xp` is the array module
    (`jax.numpy`, differentiable, or `numpy`, as `eqs_from_unit` runs it)."""
    unit = xp.asarray(unit)
    if unit.shape[-1] != self.num_controls:
      raise ValueError(f"layout {self.name} has {self.num_controls} controls, got {unit.shape[-1]}")
    values = []
    for n in CONTROLS:
      u = unit[..., self._column[n]]
      lo, hi = self._lo[n], self._hi[n]
      if _LOG_SCALE[n]:
        values.append(xp.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u))
      else:
        values.append(lo + (hi - lo) * u)
    return Settings(*values)

  def eqs_from_unit(self, unit) -> list[EQ]:
    """`to_eqs` of `from_unit(unit)`, run on the host in float64: a matcher's answer made
    EQs without an XLA program per control (each a trace and a compilation-cache load)."""
    return self.to_eqs(self.from_unit(np.asarray(unit, np.float64), xp=np))

  def to_unit(self, settings: Settings) -> jax.Array:
    """`(..., num_controls)` values in [0, 1] for physical settings (clipped into range)."""
    columns = []
    for i, n in self.free_controls:
      value, lo, hi = getattr(settings, n)[..., i], self._lo[n][i], self._hi[n][i]
      if _LOG_SCALE[n]:
        u = (jnp.log(value) - np.log(lo)) / (np.log(hi) - np.log(lo))
      else:
        u = (value - lo) / (hi - lo)
      columns.append(jnp.clip(u, 0.0, 1.0))
    return jnp.stack(columns, axis=-1)

  def bounds(self, control: str) -> tuple[np.ndarray, np.ndarray]:
    """`(low, high)`: the ends of `control`'s range (one of `CONTROLS`), `(bands,)` arrays."""
    return self._lo[control], self._hi[control]

  def clip(self, settings: Settings) -> Settings:
    return Settings(*(jnp.clip(getattr(settings, n), self._lo[n], self._hi[n]) for n in CONTROLS))

  # --- responses ---------------------------------------------------------------------

  def response_db(self, settings: Settings, freqs_hz, sample_rate: float) -> jax.Array:
    """dB response `(..., len(freqs_hz))` of a batch of settings: the bands' sum."""
    freqs = jnp.asarray(freqs_hz)
    total = 0.0
    for i, kind in enumerate(self.kinds):
      total = total + biquad.magnitude_db(kind, settings.freq_hz[..., i, None],
                                          settings.gain_db[..., i, None],
                                          settings.q[..., i, None], sample_rate, freqs)
    return total

  # --- to and from the user-facing EQ ------------------------------------------------

  def to_eqs(self, settings: Settings) -> list[EQ]:
    """One `EQ` per row of a `(N, bands)` batch (a single `(bands,)` gives a list of one),
    each control within its range (float32 rounding can step past an end)."""
    f, g, q = (np.clip(np.asarray(x, dtype=np.float64).reshape(-1, len(self.bands)),
                       self._lo[n], self._hi[n]) for n, x in zip(CONTROLS, settings))
    return [eq_from_arrays(self.kinds, *row) for row in zip(f, g, q)]

  def from_eq(self, eq: EQ) -> Settings:
    """Settings `(bands,)` of an EQ whose bands have this layout's kinds, in order."""
    kinds = tuple(b.kind for b in eq.bands)
    if kinds != self.kinds:
      raise ValueError(f"EQ bands {'/'.join(kinds)} do not fit layout {self!r}")
    return Settings(*(jnp.array([getattr(b, n) for b in eq.bands], jnp.float32) for n in CONTROLS))


def _peaks(freq_ranges, q) -> list[dict]:
  return [{"kind": "peak", "freq_hz": f, "gain_db": [-12, 12], "q": q} for f in freq_ranges]


BUILTIN = {
    # DESIGN.md §2: two shelves of fixed slope and two peaks whose frequency ranges overlap
    # little, so that the network cannot swap them.
    "paper4": {"name": "paper4", "bands": [
        {"kind": "low_shelf", "freq_hz": [20, 800], "gain_db": [-12, 12], "q": _SHELF_Q},
        *_peaks([[40, 2000], [400, 16000]], [0.3, 6.0]),
        {"kind": "high_shelf", "freq_hz": [1000, 18000], "gain_db": [-12, 12], "q": _SHELF_Q},
    ]},
    "six_band": {"name": "six_band", "bands": [
        {"kind": "low_shelf", "freq_hz": [20, 500], "gain_db": [-12, 12], "q": _SHELF_Q},
        *_peaks([[40, 500], [150, 2500], [800, 8000], [2500, 16000]], [0.3, 6.0]),
        {"kind": "high_shelf", "freq_hz": [2000, 18000], "gain_db": [-12, 12], "q": _SHELF_Q},
    ]},
    # Nercessian 2020: 20 Hz - 20 kHz, +-10 dB, Q on every band.
    "nercessian12": {"name": "nercessian12", "bands": [
        {"kind": "low_shelf", "freq_hz": [20, 20000], "gain_db": [-10, 10], "q": [0.1, 1.0]},
        *[{"kind": "peak", "freq_hz": [20, 20000], "gain_db": [-10, 10], "q": [0.1, 3.0]}
          for _ in range(10)],
        {"kind": "high_shelf", "freq_hz": [20, 20000], "gain_db": [-10, 10], "q": [0.1, 1.0]},
    ]},
}


def get_layout(layout: str | Mapping | Layout) -> Layout:
  """A built-in layout by name, or a layout from its config."""
  if isinstance(layout, Layout):
    return layout
  if isinstance(layout, str):
    if layout not in BUILTIN:
      raise ValueError(f"unknown layout {layout!r}; built in: {', '.join(BUILTIN)}")
    return Layout.from_config(BUILTIN[layout])
  return Layout.from_config(layout)
