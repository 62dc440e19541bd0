"""Random-EQ curves: deterministic by example and step, the exact responses of their settings."""

import numpy as np
import pytest

from jaxeq import FREQS, SAMPLE_RATE, get_layout, synthetic

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
