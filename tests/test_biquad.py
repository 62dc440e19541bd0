"""The biquads against float64 scipy, over the whole range a user can set."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from jaxeq import biquad
from rbj_reference import rbj_ba

RATES = (8000, 22050, 44100, 48000, 96000, 192000)


def _random_filters(rng, n):
  """Settings over the full user range: 20 Hz .. 0.45 fs, +-24 dB, Q 0.1 .. 10."""
  for _ in range(n):
    fs = float(rng.choice(RATES))
    f0 = float(np.exp(rng.uniform(np.log(20), np.log(0.45 * fs))))
    yield fs, f0, float(rng.uniform(-24, 24)), float(np.exp(rng.uniform(np.log(0.1), np.log(10))))


def _eval_freqs(rng, fs, f0):
  # A log grid over the audible band plus points crowded around the corner frequency.
  grid = np.geomspace(10, 0.499 * fs, 200)
  near = f0 * np.exp(rng.normal(0, 0.05, 50))
  return np.concatenate([grid, near[(near > 1) & (near < 0.499 * fs)]])


@pytest.mark.parametrize("kind", biquad.KINDS)
def test_float32_response_matches_float64_scipy(kind):
  rng = np.random.default_rng(list(biquad.KINDS).index(kind))
  worst = 0.0
  for fs, f0, gain, q in _random_filters(rng, 200):
    at = _eval_freqs(rng, fs, f0)
    b, a = rbj_ba(kind, f0, gain, q, fs)
    _, h = signal.freqz(b, a, worN=at, fs=fs)
    want = 20 * np.log10(np.abs(h))
    got = np.asarray(biquad.magnitude_db(kind, jnp.float32(f0), jnp.float32(gain),
                                         jnp.float32(q), fs, jnp.asarray(at, jnp.float32)))
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    # Deep in a notch or a stop band float32 cannot resolve the depth; the floor is -120 dB.
    meaningful = want > -60
    worst = max(worst, float(np.max(np.abs(got - want)[meaningful])))
  assert worst <= 0.05, f"{kind}: max error {worst:.4f} dB"


@pytest.mark.parametrize("kind", biquad.KINDS)
def test_coefficients_are_the_cookbook_ones(kind):
  rng = np.random.default_rng(7)
  for fs, f0, gain, q in _random_filters(rng, 50):
    b, a = rbj_ba(kind, f0, gain, q, fs)
    got = biquad.coefficients(kind, f0, gain, q, fs, xp=np)
    np.testing.assert_allclose(got, [*(b / a[0]), *(a[1:] / a[0])], rtol=1e-12, atol=1e-12)
    sos = biquad.sos_section(kind, f0, gain, q, fs)
    assert sos.dtype == np.float64 and sos[3] == 1.0


def test_jax_coefficients_give_the_same_filter_in_float32():
  b0, b1, b2, a1, a2 = biquad.coefficients("peak", jnp.float32(1000.0), jnp.float32(6.0),
                                           jnp.float32(2.0), 48000)
  b, a = rbj_ba("peak", 1000.0, 6.0, 2.0, 48000)
  np.testing.assert_allclose([b0, b1, b2, a1, a2], [*(b / a[0]), *(a[1:] / a[0])], rtol=1e-5)


@pytest.mark.parametrize("kind", biquad.KINDS)
def test_finite_values_and_gradients_at_the_edges(kind):
  fs = 44100.0
  # Extremes of every control, evaluated at DC, at Nyquist and exactly at the corner.
  f0 = jnp.array([20.0, 20.0, 1000.0, 0.45 * fs, 0.45 * fs])
  gain = jnp.array([-24.0, 24.0, 0.0, -24.0, 24.0])
  q = jnp.array([0.1, 10.0, 1.0, 10.0, 0.1])
  at = jnp.concatenate([jnp.array([0.0, fs / 2]), f0, jnp.geomspace(1.0, fs / 2, 64)])

  def total(f0, gain, q):
    return jnp.sum(biquad.magnitude_db(kind, f0[:, None], gain[:, None], q[:, None], fs, at))

  values = biquad.magnitude_db(kind, f0[:, None], gain[:, None], q[:, None], fs, at)
  assert values.shape == (5, at.shape[0]) and bool(jnp.all(jnp.isfinite(values)))
  assert float(values.min()) >= 10 * np.log10(biquad.MIN_POWER_RATIO) - 1e-3
  grads = jax.grad(total, argnums=(0, 1, 2))(f0, gain, q)
  for g in grads:
    assert bool(jnp.all(jnp.isfinite(g)))


def test_jit_vmap_and_batch_shapes():
  f0 = jnp.full((3, 4), 1000.0)
  gain = jnp.linspace(-12, 12, 12).reshape(3, 4)
  at = jnp.geomspace(20, 20000, 256)
  jitted = jax.jit(lambda f, g: biquad.magnitude_db("peak", f[..., None], g[..., None], 1.0,
                                                    44100, at))
  out = jitted(f0, gain)
  assert out.shape == (3, 4, 256)
  vmapped = jax.vmap(lambda g: biquad.magnitude_db("peak", 1000.0, g, 1.0, 44100, at))(gain[0])
  np.testing.assert_allclose(vmapped, out[0], atol=1e-5)
  # The gain at the centre frequency of a peak is its gain.
  np.testing.assert_allclose(biquad.magnitude_db("peak", 1000.0, gain, 1.0, 44100, 1000.0),
                             gain, atol=1e-3)


def test_unknown_kind_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown filter kind 'bell'"):
    biquad.magnitude_db("bell", 1000.0, 0.0, 1.0, 44100, 100.0)
