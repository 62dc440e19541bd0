"""Trained EQ matchers: a dB curve in, a `jaxeq.EQ` out.

    matcher = jaxeq.load_matcher("cnn")           # or "mlp", or an exported directory
    eq, = matcher.predict(curve_db)               # (256,) dB on jaxeq.FREQS
    eqs = matcher.predict(curves_db)              # (N, 256)

Every matcher, a network or the per-curve optimiser (`jaxeq.OptimiserMatcher`), answers the
same calls (`EQMatcher`): `predict(curves_db, quiet=None)` and `for_sample_rate(rate)`.

A matcher directory holds `config.json` (model, layout, how it was trained), `params.npz`
(the parameters only, `jaxeq.exported`) and `MODEL_CARD.md`. The shipped ones live in
`jaxeq/assets/matchers/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import jax
import numpy as np

from jaxeq import exported, forward_store
from jaxeq.eq import EQ
from jaxeq.layouts import Layout, Settings, get_layout
from jaxeq.optimiser import RefinedMatcher
from jaxeq.spectrum import FREQS, zero_centre

FORMAT = "jaxeq.matcher/1"
ASSETS = Path(__file__).parent / "assets" / "matchers"


class EQMatcher(Protocol):
  """What the pipeline asks of a matcher, network or optimiser alike."""

  layout: Layout

  def predict(self, curves_db, quiet=None) -> list[EQ]:
    """One `EQ` per `(256,)` or `(N, 256)` dB curve on `jaxeq.FREQS`, boosting at most 3 dB
    where `quiet` (booleans like the curves, `jaxeq.spectrum.Correction.quiet`) is true."""

  def for_sample_rate(self, sample_rate: float, exact: bool = False) -> "EQMatcher":
    """The matcher for a track at `sample_rate`: its EQs within `layout.for_sample_rate`;
    `exact` asks for the closest match the layout can make. Made once and cached."""


class Matcher:
  """A matching network bound to its layout and parameters."""

  def __init__(self, model_name: str, layout: Layout, params, model_kwargs: dict | None = None):
    self.model_name = model_name
    self.layout = layout
    self.model_kwargs = exported.hashable(model_kwargs or {})
    self.params = params
    self._at_rate = {}
    self._network = None

  @property
  def model(self):
    """The Flax network (`jaxeq.matcher_networks`, imported here: a process that reads it from
    the store of exported networks never imports Flax)."""
    from jaxeq import matcher_networks
    return matcher_networks.make_model(self.model_name, self.layout.num_controls,
                                       **self.model_kwargs)

  @property
  def network(self) -> forward_store.Forward:
    """The network on zero-centred `(N, 256)` curves, and its parameters' shapes: traced once,
    or read from the store of exported networks (`jaxeq.forward_store`)."""
    if self._network is None:
      def trace() -> forward_store.Forward:
        from jaxeq import matcher_networks
        model = self.model
        return forward_store.Forward(
            jax.jit(lambda p, x: model.apply({"params": p}, zero_centre(x))),
            jax.eval_shape(lambda: matcher_networks.init_params(model, jax.random.PRNGKey(0),
                                                                len(FREQS))))

      config = {"model": self.model_name, "controls": self.layout.num_controls,
                "model_kwargs": self.model_kwargs}
      self._network = forward_store.forward("matcher", config, trace, (len(FREQS),))
    return self._network

  def predict_unit(self, curves_db) -> jax.Array:
    """`(N, num_controls)` settings in [0, 1] for `(256,)` or `(N, 256)` dB curves."""
    return self.network.fn(self.params, _check_curves(curves_db))

  def predict_settings(self, curves_db) -> Settings:
    return self.layout.from_unit(self.predict_unit(curves_db))

  def predict(self, curves_db, quiet=None) -> list[EQ]:
    """One `EQ` per curve. Curves are dB on `jaxeq.FREQS`; their mean level is ignored.

    The models were trained on curves within ±12 dB, as `jaxeq.spectrum.correction` makes
    them: zero outside the audible band, which is how a network reads it. The network sees
    the curve alone: a fine-tuned one learnt to keep its boosts out of the correction's
    `quiet` band from the curve, so `quiet` leaves its answer as it is (the optimiser, which
    answers the same call, fits within it).
    """
    del quiet
    return self.layout.eqs_from_unit(self.predict_unit(curves_db))

  def for_sample_rate(self, sample_rate: float, exact: bool = False) -> RefinedMatcher:
    """This network for a track at `sample_rate`: where it puts a band above what the rate
    allows (`Layout.for_sample_rate`), or for every curve with `exact` (matching a reference
    as closely as the EQ can), the per-curve optimiser refits from its settings. Made once
    per rate's layout and `exact`."""
    key = (self.layout.for_sample_rate(sample_rate), exact)
    if key not in self._at_rate:
      self._at_rate[key] = RefinedMatcher(self, *key)
    return self._at_rate[key]

  def save(self, directory, training: dict | None = None, card: str | None = None) -> None:
    """Writes the matcher directory (see the module docstring); `directory` must not exist."""
    exported.save(directory, self.params, card=card, config={
        "format": FORMAT, "model": self.model_name, "model_kwargs": self.model_kwargs,
        "layout": self.layout.to_config(), "training": training or {}})


def shipped_matchers() -> tuple[str, ...]:
  return tuple(sorted(p.name for p in ASSETS.iterdir() if (p / "config.json").is_file()))


def _matcher_config(name: str) -> tuple[Path, dict]:
  directory = ASSETS / name if name in shipped_matchers() else Path(name)
  if not (directory / "config.json").is_file():
    raise FileNotFoundError(f"no matcher {name!r}: not a shipped one "
                            f"({', '.join(shipped_matchers())}) nor a matcher directory")
  return directory, exported.load_config(directory, FORMAT)


def matcher_layout(name: str = "cnn") -> Layout:
  """The layout of matcher `name` (as `load_matcher` takes it), read without its network."""
  return get_layout(_matcher_config(name)[1]["layout"])


def load_matcher(name: str = "cnn") -> Matcher:
  """A shipped matcher (`cnn` or `mlp`, trained on the `paper4` layout, and `cnn_finetuned`)
  or a matcher directory."""
  directory, config = _matcher_config(name)
  matcher = Matcher(config["model"], get_layout(config["layout"]), None, config["model_kwargs"])
  matcher.params = exported.load_params(directory, matcher.network.params_like)
  return matcher


def _check_curves(curves_db) -> np.ndarray:
  curves = np.asarray(curves_db, dtype=np.float32)
  if curves.ndim == 1:
    curves = curves[None]
  if curves.ndim != 2 or curves.shape[1] != len(FREQS):
    raise ValueError(f"curves must have shape ({len(FREQS)},) or (N, {len(FREQS)}) on jaxeq.FREQS, "
                     f"got {np.shape(curves_db)}")
  if not np.all(np.isfinite(curves)):
    raise ValueError("curves contain NaN or inf values")
  return curves
