"""`jaxeq.load_matcher`: the shipped matchers and the matcher-directory round trip."""

import jax
import numpy as np
import pytest

import jaxeq
from jaxeq import losses, models, synthetic
from jaxeq.matcher import Matcher


def test_save_and_load_round_trip_predicts_the_same_eqs(tmp_path):
  layout = jaxeq.get_layout("six_band")
  model = models.make_model("mlp", layout.num_controls, width=32, depth=2)
  params = models.init_params(model, jax.random.PRNGKey(4))
  Matcher("mlp", layout, params, {"width": 32, "depth": 2}).save(tmp_path / "m", card="# card\n")
  loaded = jaxeq.load_matcher(str(tmp_path / "m"))
  curves = synthetic.fixed_set(layout, 0, "val", 5).curve
  assert loaded.layout.to_config() == layout.to_config()
  assert loaded.predict(curves) == Matcher("mlp", layout, params, {"width": 32, "depth": 2}).predict(curves)
  with pytest.raises(FileExistsError, match="already exists"):
    loaded.save(tmp_path / "m")


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
