"""Random-EQ curves: deterministic by example and step, the exact responses of their settings;
the layouts' sampler."""

import jax
import numpy as np
import pytest

from jaxeq import FREQS, SAMPLE_RATE, get_layout
from jaxeq.training import synthetic

LAYOUT = get_layout("paper4")


def test_curves_are_zero_centred_bounded_and_are_responses_of_their_settings():
  data = synthetic.fixed_set(LAYOUT, seed=0, split="test", size=500)
  assert data.curve.shape == (500, len(FREQS)) and data.unit.shape == (500, LAYOUT.num_controls)
  np.testing.assert_allclose(data.curve.mean(axis=1), 0, atol=1e-4)
  # Scaled to within 12 dB by scaling the gains, so a little over is possible, never much.
  assert np.abs(data.curve).max() < 13.0
  response = LAYOUT.response_db(LAYOUT.from_unit(data.unit), FREQS, SAMPLE_RATE)
  response = response - response.mean(axis=-1, keepdims=True)
  np.testing.assert_allclose(data.curve, response, atol=2e-3)


def test_splits_are_fixed_by_the_seed_and_differ_from_each_other():
  val = synthetic.fixed_set(LAYOUT, seed=0, split="val", size=100)
  again = synthetic.fixed_set(LAYOUT, seed=0, split="val", size=100, chunk=30)
  test = synthetic.fixed_set(LAYOUT, seed=0, split="test", size=100)
  other_seed = synthetic.fixed_set(LAYOUT, seed=1, split="val", size=100)
  np.testing.assert_allclose(val.curve, again.curve, atol=1e-5)  # chunking changes only rounding
  assert not np.allclose(val.curve, test.curve)
  assert not np.allclose(val.curve, other_seed.curve)


def test_training_stream_is_a_function_of_the_step_and_visits_every_example_each_epoch():
  stream = synthetic.CurveStream(LAYOUT, seed=0, batch_size=10, size=100)
  assert stream.steps_per_epoch == 10
  epoch0 = np.concatenate([stream.ids(s) for s in range(10)])
  epoch1 = np.concatenate([stream.ids(s) for s in range(10, 20)])
  assert sorted(epoch0) == list(range(100)) == sorted(epoch1)
  assert not np.array_equal(epoch0, epoch1)  # reshuffled every epoch
  fresh = synthetic.CurveStream(LAYOUT, seed=0, batch_size=10, size=100)
  np.testing.assert_array_equal(stream(13).curve, fresh(13).curve)  # what exact resume relies on


def test_bad_arguments_are_clear_errors():
  with pytest.raises(ValueError, match="batch_size=0"):
    synthetic.CurveStream(LAYOUT, seed=0, batch_size=0)
  with pytest.raises(ValueError, match="unknown split 'dev'"):
    synthetic.split_key(0, "dev")


def test_paper_sampler_is_deterministic_in_range_and_favours_small_gains():
  layout = get_layout("paper4")
  a = synthetic.sample_settings(layout, jax.random.key(3), (20000,))
  b = synthetic.sample_settings(layout, jax.random.key(3), (20000,))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  gain = np.asarray(a.gain_db)
  assert np.all(np.abs(gain) <= 12)
  # g = 12 u^3 with u ~ U(-1, 1): the median |g| is 12 / 8 = 1.5 dB.
  assert np.median(np.abs(gain)) == pytest.approx(1.5, abs=0.1)
  # Log-uniform frequency: half of the low shelves lie below the geometric middle.
  assert np.mean(np.asarray(a.freq_hz[:, 0]) < np.sqrt(20 * 800)) == pytest.approx(0.5, abs=0.02)


def test_nercessian_sampler_switches_gains_on_and_off():
  layout = get_layout("nercessian12")
  s = synthetic.sample_settings(layout, jax.random.key(4), (20000,), scheme="nercessian")
  on = np.asarray(s.gain_db) != 0
  assert on[:, [0, -1]].mean() == pytest.approx(0.5, abs=0.02)
  assert on[:, 1:-1].mean() == pytest.approx(1 / 3, abs=0.02)
  f = np.asarray(s.freq_hz)
  # Peaks lie between the shelves; the low shelf crowds the low end (Beta(0.25, 5)).
  assert np.all((f[:, 1:-1] >= np.minimum(f[:, :1], f[:, -1:]) - 1e-2)
                & (f[:, 1:-1] <= np.maximum(f[:, :1], f[:, -1:]) + 1e-2))
  assert np.median(f[:, 0]) < np.median(f[:, -1])
  q = np.asarray(s.q)
  assert q.min() >= 0.1 - 1e-6 and q[:, 1:-1].max() <= 3.0 + 1e-5


def test_unknown_scheme_is_a_clear_error():
  with pytest.raises(ValueError, match="sampling scheme 'uniform'"):
    synthetic.sample_settings(LAYOUT, jax.random.key(0), (2,), scheme="uniform")
