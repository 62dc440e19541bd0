"""Layouts: the [0, 1]^n mapping, batched responses, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxeq
from jaxeq import layouts
from jaxeq.layouts import get_layout
from jaxeq.training import synthetic


@pytest.mark.parametrize("name, bands, controls", [
    ("paper4", 4, 10), ("six_band", 6, 16), ("nercessian12", 12, 36)])
def test_builtin_layouts(name, bands, controls):
  layout = get_layout(name)
  assert len(layout.bands) == bands and layout.num_controls == controls
  assert layout.kinds[0] == "low_shelf" and layout.kinds[-1] == "high_shelf"
  assert get_layout(layout.to_config()).to_config() == layout.to_config()


@pytest.mark.parametrize("name", list(layouts.BUILTIN))
def test_unit_mapping_round_trip_and_ranges(name):
  layout = get_layout(name)
  unit = jax.random.uniform(jax.random.key(0), (64, layout.num_controls))
  settings = layout.from_unit(unit)
  np.testing.assert_allclose(layout.to_unit(settings), unit, atol=2e-5)
  for n in layouts.CONTROLS:
    lo = np.array([getattr(b, n)[0] for b in layout.bands])
    hi = np.array([getattr(b, n)[1] for b in layout.bands])
    values = np.asarray(getattr(settings, n))
    assert np.all(values >= lo * (1 - 1e-5) - 1e-5) and np.all(values <= hi * (1 + 1e-5) + 1e-5)


@pytest.mark.parametrize("name", list(layouts.BUILTIN))
def test_a_matchers_eqs_made_on_the_host_are_the_jax_mapping(name):
  """`eqs_from_unit` (NumPy, float64: how a matcher's answer becomes EQs) gives the settings
  `from_unit` gives in JAX (float32)."""
  layout = get_layout(name)
  unit = jax.random.uniform(jax.random.key(2), (8, layout.num_controls))
  for host, traced in zip(layout.eqs_from_unit(unit), layout.to_eqs(layout.from_unit(unit)),
                          strict=True):
    for a, b in zip(host.bands, traced.bands, strict=True):
      assert a.kind == b.kind
      np.testing.assert_allclose([a.freq_hz, a.q], [b.freq_hz, b.q], rtol=1e-5)
      assert a.gain_db == pytest.approx(b.gain_db, abs=1e-4)


def test_paper4_fixed_shelf_q_and_log_frequency():
  layout = get_layout("paper4")
  half = layout.from_unit(jnp.full((10,), 0.5))
  np.testing.assert_allclose(half.q[jnp.array([0, 3])], 1 / np.sqrt(2), rtol=1e-3)
  # 0.5 is the geometric middle of the low shelf's 20-800 Hz range, and 0 dB gain.
  assert float(half.freq_hz[0]) == pytest.approx(np.sqrt(20 * 800), rel=1e-4)
  np.testing.assert_allclose(half.gain_db, 0.0, atol=1e-5)


def test_batched_response_equals_the_eqs_response():
  layout = get_layout("six_band")
  settings = synthetic.sample_settings(layout, jax.random.key(1), (5,))
  batch = layout.response_db(settings, jaxeq.FREQS, 48000)
  assert batch.shape == (5, 256)
  for row, eq in zip(np.asarray(batch), layout.to_eqs(settings)):
    np.testing.assert_allclose(row, eq.response_db(jaxeq.FREQS, 48000), atol=1e-3)
  back = layout.from_eq(layout.to_eqs(settings)[2])
  np.testing.assert_allclose(back.gain_db, settings.gain_db[2], atol=1e-4)


def test_gradient_through_the_unit_mapping_is_finite():
  layout = get_layout("nercessian12")
  target = jnp.zeros(256)

  def loss(unit):
    return jnp.mean(jnp.abs(layout.response_db(layout.from_unit(unit), jaxeq.FREQS, 44100) - target))

  for unit in (jnp.zeros(36), jnp.ones(36), jnp.full(36, 0.3)):
    g = jax.grad(loss)(unit)
    assert bool(jnp.all(jnp.isfinite(g)))


@pytest.mark.parametrize("cfg, reason", [
    ({"bands": [{"kind": "bell", "freq_hz": [20, 100]}]}, "kind 'bell'"),
    ({"bands": [{"kind": "peak", "freq_hz": [200, 100]}]}, "low <= high"),
    ({"bands": [{"kind": "peak", "freq_hz": [0, 100]}]}, "must be positive"),
    ({"bands": [{"kind": "low_pass", "freq_hz": 100, "gain_db": [-3, 3]}]}, "has no gain"),
    ({"bands": [{"kind": "peak", "freq_hz": 100, "width": 2}]}, "unknown keys"),
    ({"bands": [{"kind": "peak"}]}, "needs freq_hz"),
    ({"bands": []}, "no bands"),
    ("paper5", "unknown layout 'paper5'"),
])
def test_bad_layout_configs(cfg, reason):
  with pytest.raises(ValueError, match=reason):
    get_layout(cfg)


def test_wrong_width_and_wrong_kinds():
  layout = get_layout("paper4")
  with pytest.raises(ValueError, match="10 controls, got 9"):
    layout.from_unit(jnp.zeros(9))
  with pytest.raises(ValueError, match="do not fit layout"):
    layout.from_eq(jaxeq.EQ([jaxeq.Band("peak", 100, 1)]))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 32000, 44100, 192000])
@pytest.mark.parametrize("name", list(layouts.BUILTIN))
def test_a_layout_for_a_rate_has_no_band_above_045_of_it(name, rate):
  full = get_layout(name)
  layout = full.for_sample_rate(rate)
  top = 0.45 * rate
  assert all(b.freq_hz[1] <= top for b in layout.bands) and layout.kinds == full.kinds
  if all(b.freq_hz[1] <= top for b in full.bands):
    assert layout is full
  for mine, theirs in zip(layout.bands, full.bands):  # clipped, never widened or moved down
    assert mine.freq_hz == (min(theirs.freq_hz[0], top), min(theirs.freq_hz[1], top))
  # Every EQ it gives stays there, even at the very top of a range (float32 rounding).
  for eq in layout.to_eqs(layout.from_unit(jnp.ones((1, layout.num_controls)))):
    assert max(b.freq_hz for b in eq.bands) <= top and layout.allows(eq)
  assert layout == full.for_sample_rate(rate) and hash(layout) == hash(full.for_sample_rate(rate))
