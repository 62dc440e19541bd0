"""`jaxeq.load_matcher`: the shipped matchers and the matcher-directory round trip."""

import jax
import numpy as np
import pytest

import jaxeq
from jaxeq import exported, losses, matcher_networks
from jaxeq.matcher import Matcher
from jaxeq.training import synthetic


def test_save_and_load_round_trip_predicts_the_same_eqs(tmp_path):
  layout = jaxeq.get_layout("six_band")
  model = matcher_networks.make_model("mlp", layout.num_controls, width=32, depth=2)
  params = matcher_networks.init_params(model, jax.random.PRNGKey(4))
  Matcher("mlp", layout, params, {"width": 32, "depth": 2}).save(tmp_path / "m", card="# card\n")
  loaded = jaxeq.load_matcher(str(tmp_path / "m"))
  curves = synthetic.fixed_set(layout, 0, "val", 5).curve
  assert loaded.layout.to_config() == layout.to_config()
  assert loaded.predict(curves) == Matcher("mlp", layout, params, {"width": 32, "depth": 2}).predict(curves)
  with pytest.raises(FileExistsError, match="already exists"):
    loaded.save(tmp_path / "m")


def test_exported_params_are_plain_arrays_read_back_exactly_and_checked(tmp_path):
  params = {"dense": {"kernel": np.arange(6.0, dtype=np.float32).reshape(2, 3),
                      "bias": np.ones(3, np.float32)}}
  exported.save(tmp_path / "m", params, {"format": "test"})
  with np.load(tmp_path / "m" / "params.npz", allow_pickle=False) as data:
    assert sorted(data.files) == ["dense/bias", "dense/kernel"]
  like = jax.eval_shape(lambda: params)
  loaded = exported.load_params(tmp_path / "m", like)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  wrong = {"dense": {"kernel": jax.ShapeDtypeStruct((3, 3), np.float32), "bias": like["dense"]["bias"]}}
  with pytest.raises(ValueError, match="dense/kernel"):
    exported.load_params(tmp_path / "m", wrong)
  with pytest.raises(FileNotFoundError, match="params.npz"):
    exported.load_params(tmp_path, like)


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_shipped_matchers_match_fresh_synthetic_curves(name):
  matcher = jaxeq.load_matcher(name)
  assert matcher.layout.name == "paper4"
  data = synthetic.fixed_set(matcher.layout, seed=1234, split="test", size=256)
  one = matcher.predict(data.curve[0])
  many = matcher.predict(data.curve)
  assert len(one) == 1 and len(many) == 256
  # One curve alone or in a batch: the same EQ, up to float32 rounding.
  np.testing.assert_allclose([[b.freq_hz, b.gain_db, b.q] for b in one[0].bands],
                             [[b.freq_hz, b.gain_db, b.q] for b in many[0].bands], rtol=1e-4, atol=1e-4)
  assert [b.kind for b in many[0].bands] == ["low_shelf", "peak", "peak", "high_shelf"]
  # The EQs' own responses (float64, per band) match the curves.
  responses = np.stack([eq.response_db(jaxeq.FREQS, jaxeq.SAMPLE_RATE) for eq in many])
  mae = np.mean(np.abs(jaxeq.zero_centre(data.curve) - jaxeq.zero_centre(responses)))
  assert mae < 0.5
  np.testing.assert_allclose(
      mae, np.mean(losses.response_mae(matcher.layout, matcher.predict_unit(data.curve), data.curve)),
      atol=1e-3)


def test_bad_curves_and_names_are_clear_errors():
  matcher = jaxeq.load_matcher("mlp")
  with pytest.raises(ValueError, match=r"curves must have shape \(256,\) or \(N, 256\).*got \(100,\)"):
    matcher.predict(np.zeros(100))
  with pytest.raises(ValueError, match="NaN"):
    matcher.predict(np.full(256, np.nan))
  with pytest.raises(FileNotFoundError, match="no matcher 'gru'"):
    jaxeq.load_matcher("gru")


def test_network_and_optimiser_answer_the_same_calls_and_are_made_once_per_rate():
  network = jaxeq.load_matcher("cnn")
  optimiser = jaxeq.OptimiserMatcher(network.layout, starts=1, steps=20)
  curve = synthetic.fixed_set(network.layout, 0, "val", 1).curve[0]
  quiet = np.asarray(jaxeq.FREQS > 8000)
  assert network.for_sample_rate(44100) is network.for_sample_rate(44100)
  assert optimiser.for_sample_rate(44100) is optimiser  # the layout holds at 44.1 kHz
  narrow = optimiser.for_sample_rate(16000)
  assert narrow is optimiser.for_sample_rate(16000)
  assert narrow.layout == network.layout.for_sample_rate(16000) != network.layout
  for matcher in (network, optimiser, network.for_sample_rate(44100), narrow):
    eqs = matcher.predict(curve, quiet)
    assert len(eqs) == 1 and [b.kind for b in eqs[0].bands] == list(matcher.layout.kinds)
    assert matcher.layout.allows(eqs[0])
