"""The fine-tuning experiment at smoke size, from the shipped models, on rendered tracks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxeq
from data_prep import plan
from experiments import finetune
from jaxeq import losses


def test_smoke_run_writes_the_comparison_and_exports_a_matcher(tmp_path, smoke_dataset):
  config = finetune.get_config("smoke")
  config.data_dir = str(smoke_dataset)
  config.progress = False
  results = finetune.train_and_evaluate(config, tmp_path / "run")

  methods = ["MLP, synthetic only", "CNN, synthetic only", "MLP, fine-tuned", "CNN, fine-tuned",
             "per-curve optimiser (floor)"]
  assert list(results["mae_db"]) == methods
  planned = plan.plan("smoke", 0)
  # Scored on the real recordings of the test split.
  assert results["test_curves"] == sum(c.split == "test" and c.recorded for c in planned)
  assert results["train_curves"] == sum(c.split == "train" for c in planned)
  assert all(np.isfinite(v) and v > 0 for v in results["mae_db"].values())
  assert results["change_vs_mlp_synthetic"]["MLP, synthetic only"] == 0.0
  assert results["ratio_to_floor"]["per-curve optimiser (floor)"] == 1.0
  # The floor fits each curve directly: no network does better than it by much.
  floor = results["mae_db"]["per-curve optimiser (floor)"]
  assert min(results["mae_db"].values()) >= floor * 0.9
  written = json.loads((tmp_path / "run" / "results.json").read_text())
  assert written["mae_db"] == results["mae_db"]
  assert list(results["applied"]["mae_db"]) == methods
  assert all(np.isfinite(v) and v > 0 for v in results["applied"]["mae_db"].values())
  assert "| CNN, fine-tuned |" in (tmp_path / "run" / "results.md").read_text()
  for png in ("mae.png", "examples.png"):
    assert (tmp_path / "run" / png).read_bytes()[:4] == b"\x89PNG"

  finetune.export(config, tmp_path / "run", tmp_path / "cnn_finetuned", "test")
  tuned = jaxeq.load_matcher(str(tmp_path / "cnn_finetuned"))
  assert tuned.layout.name == "paper4" and len(tuned.predict(np.zeros(256))[0].bands) == 4
  assert "fine-tuned" in (tmp_path / "cnn_finetuned" / "MODEL_CARD.md").read_text()


def test_a_share_of_training_clips_is_paired_with_another_target():
  rng = np.random.default_rng(0)
  spectra = rng.normal(0, 6, (200, 256)).astype(np.float32)
  own = rng.normal(0, 6, (200, 256)).astype(np.float32)
  bank = rng.normal(0, 6, (35, 256)).astype(np.float32)
  labels = np.zeros(200, np.int32)
  data = finetune.Curves(spectra, own, np.ones_like(own), own, labels, labels)
  stream = finetune.CurveStream(data, bank, batch_size=100, seed=3, other_target_probability=0.5)
  batch = stream(7)
  np.testing.assert_array_equal(batch["target"], stream(7)["target"])  # a function of the step

  def found_in(rows, candidates):
    return (rows[:, None, :] == candidates[None]).all(-1).any(-1)

  mine = found_in(batch["target"], own)
  from_bank = found_in(batch["target"], bank)
  from_clip = found_in(batch["target"], spectra)
  assert np.all(mine | from_bank | from_clip)
  assert 0.3 < np.mean(~mine) < 0.7 and from_bank.any() and from_clip.any()
  # Every spectrum keeps its own target unless it was paired with another.
  unchanged = finetune.CurveStream(data, bank, batch_size=100, seed=3)(7)
  np.testing.assert_array_equal(batch["spectrum"], unchanged["spectrum"])
  assert found_in(unchanged["target"], own).all()
  assert not unchanged["own_spectrum"].any()
  with pytest.raises(ValueError, match="other_target_probability=1.5"):
    finetune.CurveStream(data, bank, batch_size=100, seed=3, other_target_probability=1.5)
  with pytest.raises(ValueError, match="own_spectrum_probability=-0.1"):
    finetune.CurveStream(data, bank, batch_size=100, seed=3, own_spectrum_probability=-0.1)


def test_a_clip_marked_own_spectrum_is_trained_on_a_zero_difference():
  matcher = jaxeq.load_matcher("cnn")
  rng = np.random.default_rng(2)
  data = finetune.Curves(*[rng.normal(0, 6, (200, 256)).astype(np.float32)] * 4,
                         *[np.zeros(200, np.int32)] * 2)
  marked = finetune.CurveStream(data, data.spectra, batch_size=100, seed=3,
                                own_spectrum_probability=0.2)(5)["own_spectrum"]
  assert 0.1 < marked.mean() < 0.3
  # Its target is its own spectrum as the loss colours it: whatever target the batch holds,
  # the loss is the same.
  spectrum = rng.normal(0, 4, (4, 256)).astype(np.float32) - 20
  key = jax.random.PRNGKey(0)
  loss_fn = finetune.make_loss_fn(matcher, 6.0, 0.1, consistency_weight=1.0)

  def loss(target, own_spectrum):
    return loss_fn(matcher.params, {"spectrum": spectrum, "target": target,
                                    "own_spectrum": np.full(4, own_spectrum)}, key)[0]

  first, second = rng.normal(0, 6, (2, 4, 256)).astype(np.float32)
  np.testing.assert_allclose(loss(first, True), loss(second, True), rtol=1e-6)
  assert abs(float(loss(first, False)) - float(loss(second, False))) > 0.1


def test_consistency_term_counts_how_far_an_eq_is_from_undoing_a_colouration():
  matcher = jaxeq.load_matcher("cnn")
  rng = np.random.default_rng(1)
  batch = {"spectrum": rng.normal(0, 4, (8, 256)).astype(np.float32) - 20,
           "target": rng.normal(0, 4, (8, 256)).astype(np.float32),
           "own_spectrum": np.zeros(8, bool)}
  key = jax.random.PRNGKey(0)
  plain = finetune.make_loss_fn(matcher, 6.0, 0.1)
  consistent = finetune.make_loss_fn(matcher, 6.0, 0.1, consistency_weight=1.0)
  loss, metrics = plain(matcher.params, batch, key)
  both, with_term = consistent(matcher.params, batch, key)
  assert "consistency_db" not in metrics and with_term["consistency_db"] > 0
  np.testing.assert_allclose(both, loss + with_term["consistency_db"], rtol=1e-5)
  # A network predicting the same EQ whatever its input undoes nothing: its consistency error
  # is the colouration itself, larger than the trained CNN's.
  frozen = jax.tree_util.tree_map(jnp.zeros_like, matcher.params)
  _, flat = consistent(frozen, batch, key)
  assert flat["consistency_db"] > with_term["consistency_db"]


def test_quiet_boost_term_counts_boosts_over_3_db_where_the_track_has_no_energy():
  matcher = jaxeq.load_matcher("cnn")
  layout = matcher.layout
  # A dark track: nothing to speak of above 8 kHz (60 dB under the rest).
  spectrum = np.where(jaxeq.FREQS < 8000, 0.0, -60.0).astype(np.float32)[None]
  settings = layout.from_unit(jnp.full((1, layout.num_controls), 0.5))
  flat = settings._replace(gain_db=jnp.zeros_like(settings.gain_db))
  shelf = flat._replace(gain_db=flat.gain_db.at[:, -1].set(10.0),
                        freq_hz=flat.freq_hz.at[:, -1].set(4000.0))
  excess = finetune.quiet_boost_excess(layout, layout.to_unit(shelf), spectrum)
  np.testing.assert_allclose(excess, [10.0 - 3.0], atol=0.3)
  # Cutting there, or boosting where the track has energy, is not counted.
  cut = shelf._replace(gain_db=-shelf.gain_db)
  low = flat._replace(gain_db=flat.gain_db.at[:, 0].set(10.0),
                      freq_hz=flat.freq_hz.at[:, 0].set(100.0))
  for ok in (flat, cut, low):
    assert float(finetune.quiet_boost_excess(layout, layout.to_unit(ok), spectrum)[0]) < 0.1
  # Asked for that shelf, the EQ matches it, but not as AutoEQ applies it (boost scaled down).
  asked = layout.response_db(shelf, jaxeq.FREQS, jaxeq.SAMPLE_RATE)
  curves = finetune.Curves(spectrum, spectrum, np.ones_like(spectrum), np.asarray(asked),
                           *[np.zeros(1, np.int32)] * 2)
  assert float(losses.response_mae(layout, layout.to_unit(shelf), asked)[0]) < 0.05
  assert float(finetune.applied_mae(layout, layout.to_unit(shelf), curves)[0]) > 1.0
  # The loss adds it, by its weight.
  batch = {"spectrum": np.repeat(spectrum, 4, axis=0), "target": np.zeros((4, 256), np.float32),
           "own_spectrum": np.zeros(4, bool)}
  key = jax.random.PRNGKey(0)
  plain, _ = finetune.make_loss_fn(matcher, 6.0, 0.1)(matcher.params, batch, key)
  loss, metrics = finetune.make_loss_fn(matcher, 6.0, 0.1, quiet_boost_weight=2.0)(
      matcher.params, batch, key)
  np.testing.assert_allclose(loss, plain + 2.0 * metrics["quiet_boost_db"], rtol=1e-5)
