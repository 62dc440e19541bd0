"""The fine-tuning experiment at smoke size, from the shipped models, on rendered tracks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxeq
from data_prep import plan
from experiments import finetune
from jaxeq import losses, optimiser, spectrum as spectrum_lib
from jaxeq.training import checkpoints


def test_smoke_run_writes_the_comparison_and_exports_a_matcher(training_walkthrough, tmp_path):
  # The smoke run is the training walkthrough's (conftest.py runs the notebook once):
  # `finetune.get_config("smoke")` on the smoke dataset, from the matchers it base-trained.
  work = training_walkthrough.work
  config = finetune.get_config("smoke")
  config.base.cnn, config.base.mlp = str(work / "matcher_cnn"), str(work / "matcher_mlp")
  results = json.loads((work / "finetune" / "results.json").read_text())

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
  for table in ("applied", "applied_shape"):
    assert list(results[table]["mae_db"]) == methods
    assert all(np.isfinite(v) and v > 0 for v in results[table]["mae_db"].values())
  # What `train_and_evaluate` returned (the notebook shows it) is what it wrote.
  markdown = (work / "finetune" / "results.md").read_text()
  assert "| CNN, fine-tuned |" in markdown
  shown = [o["data"]["text/markdown"] for o in training_walkthrough.outputs
           if "text/markdown" in o.get("data", {})]
  assert shown == [finetune.results_markdown(results)] and markdown == shown[0]
  for png in ("mae.png", "examples.png"):
    assert (work / "finetune" / png).read_bytes()[:4] == b"\x89PNG"

  finetune.export(config, work / "finetune", tmp_path / "cnn_finetuned", "test")
  tuned = jaxeq.load_matcher(str(tmp_path / "cnn_finetuned"))
  assert tuned.layout.name == "paper4" and len(tuned.predict(np.zeros(256))[0].bands) == 4
  assert "fine-tuned" in (tmp_path / "cnn_finetuned" / "MODEL_CARD.md").read_text()


def test_fine_tuning_starts_from_the_shipped_matchers_and_keeps_the_best(tmp_path):
  # `make finetune` fine-tunes the shipped MLP and CNN (the smoke run above starts from the
  # notebook's): a few smoke steps from the shipped CNN, on curves of random tracks.
  config = finetune.get_config()
  assert config.base.to_dict() == {"mlp": "mlp", "cnn": "cnn"}
  smoke = finetune.get_config("smoke")
  assert smoke.base.to_dict() == config.base.to_dict()
  base = jaxeq.load_matcher(smoke.base.cnn)
  rng = np.random.default_rng(5)

  def curves(n):
    spectra = rng.normal(0, 6, (n, 256)).astype(np.float32) - 20
    targets = rng.normal(0, 6, (n, 256)).astype(np.float32)
    fix = spectrum_lib.correction(targets, spectra, spectra - 60)
    labels = np.zeros(n, np.int32)
    return finetune.Curves(spectra, spectra - 60, targets, np.asarray(fix.weight),
                           np.asarray(fix.curve), np.asarray(fix.quiet), labels, labels,
                           np.full(n, np.nan), np.zeros(n))

  train, val = curves(32), curves(8)
  tuned = finetune.finetune(smoke, tmp_path / "cnn", "cnn", base, train, val,
                            rng.normal(0, 6, (4, 256)).astype(np.float32))
  assert tuned.model_name == base.model_name and tuned.layout.name == base.layout.name
  like = jax.tree_util.tree_map(jnp.zeros_like, base.params)
  best, step = checkpoints.restore_params(tmp_path / "cnn", like, "best")
  assert 0 < step <= smoke.num_epochs * 2  # two batches of 16 an epoch
  for a, b, start in zip(jax.tree.leaves(tuned.params), jax.tree.leaves(best),
                         jax.tree.leaves(base.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # the best checkpoint
  # Trained from the shipped parameters: moved, not far, and nothing like a fresh network.
  moved = [float(np.max(np.abs(np.asarray(a) - np.asarray(s))))
           for a, s in zip(jax.tree.leaves(tuned.params), jax.tree.leaves(base.params))]
  assert 0 < max(moved) < 0.1


def test_a_share_of_training_clips_is_paired_with_another_target():
  rng = np.random.default_rng(0)
  spectra = rng.normal(0, 6, (200, 256)).astype(np.float32)
  own = rng.normal(0, 6, (200, 256)).astype(np.float32)
  bank = rng.normal(0, 6, (35, 256)).astype(np.float32)
  labels = np.zeros(200, np.int32)
  keep = (np.arange(200) % 2).astype(np.float32)  # every other clip a drum's or a bass's
  data = finetune.Curves(spectra, spectra - 60, own, np.ones_like(own), own,
                         np.zeros_like(own, bool), labels, labels, np.full(200, 80.0), keep)
  bank_keep = (np.arange(35) < 5).astype(np.float32)
  stream = finetune.SpectrumTargetStream(data, bank, batch_size=100, seed=3,
                                         other_target_probability=0.5, bank_keep=bank_keep)
  batch = stream(7)
  np.testing.assert_array_equal(batch["target"], stream(7)["target"])  # a function of the step

  def found_in(rows, candidates):
    return (rows[:, None, :] == candidates[None]).all(-1).any(-1)

  mine = found_in(batch["target"], own)
  from_bank = found_in(batch["target"], bank)
  from_clip = found_in(batch["target"], spectra)
  assert np.all(mine | from_bank | from_clip)
  assert 0.3 < np.mean(~mine) < 0.7 and from_bank.any() and from_clip.any()
  # Its fundamental is kept as its target's class says: its own, the bank class's, and never
  # for another track's spectrum (a reference is matched as it is).
  ids = [int(np.flatnonzero((own == row).all(-1))[0]) for row in batch["target"][mine]]
  np.testing.assert_array_equal(batch["keep"][mine], keep[ids])
  rows = [int(np.flatnonzero((bank == row).all(-1))[0]) for row in batch["target"][from_bank]]
  np.testing.assert_array_equal(batch["keep"][from_bank], bank_keep[rows])
  assert np.all(batch["keep"][from_clip] == 0) and np.all(batch["pitch"] == 80.0)
  # Every spectrum keeps its own target unless it was paired with another.
  unchanged = finetune.SpectrumTargetStream(data, bank, batch_size=100, seed=3)(7)
  np.testing.assert_array_equal(batch["spectrum"], unchanged["spectrum"])
  assert found_in(unchanged["target"], own).all()
  assert not unchanged["own_spectrum"].any()
  with pytest.raises(ValueError, match="other_target_probability=1.5"):
    finetune.SpectrumTargetStream(data, bank, batch_size=100, seed=3,
                                  other_target_probability=1.5)
  with pytest.raises(ValueError, match="own_spectrum_probability=-0.1"):
    finetune.SpectrumTargetStream(data, bank, batch_size=100, seed=3,
                                  own_spectrum_probability=-0.1)


def test_a_clip_marked_own_spectrum_is_trained_on_a_zero_difference():
  matcher = jaxeq.load_matcher("cnn")
  rng = np.random.default_rng(2)
  data = finetune.Curves(*[rng.normal(0, 6, (200, 256)).astype(np.float32)] * 6,
                         *[np.zeros(200, np.int32)] * 2, np.full(200, np.nan), np.zeros(200))
  marked = finetune.SpectrumTargetStream(data, data.spectra, batch_size=100, seed=3,
                                         own_spectrum_probability=0.2)(5)["own_spectrum"]
  assert 0.1 < marked.mean() < 0.3
  # Its target is its own spectrum as the loss colours it: whatever target the batch holds,
  # the loss is the same.
  spectrum = rng.normal(0, 4, (4, 256)).astype(np.float32) - 20
  key = jax.random.PRNGKey(0)
  loss_fn = finetune.make_loss_fn(matcher, 6.0, consistency_weight=1.0)

  def loss(target, own_spectrum):
    return loss_fn(matcher.params, {"spectrum": spectrum, "noise_floor": spectrum - 50,
                                    "target": target, "own_spectrum": np.full(4, own_spectrum),
                                    "pitch": np.full(4, np.nan), "keep": np.zeros(4)}, key)[0]

  first, second = rng.normal(0, 6, (2, 4, 256)).astype(np.float32)
  np.testing.assert_allclose(loss(first, True), loss(second, True), rtol=1e-6)
  assert abs(float(loss(first, False)) - float(loss(second, False))) > 0.1


def test_consistency_term_counts_how_far_an_eq_is_from_undoing_a_colouration():
  matcher = jaxeq.load_matcher("cnn")
  rng = np.random.default_rng(1)
  spectrum = rng.normal(0, 4, (8, 256)).astype(np.float32) - 20
  batch = {"spectrum": spectrum, "noise_floor": spectrum - 50,
           "target": rng.normal(0, 4, (8, 256)).astype(np.float32),
           "own_spectrum": np.zeros(8, bool), "pitch": np.full(8, np.nan), "keep": np.zeros(8)}
  key = jax.random.PRNGKey(0)
  plain = finetune.make_loss_fn(matcher, 6.0)
  consistent = finetune.make_loss_fn(matcher, 6.0, consistency_weight=1.0)
  loss, metrics = plain(matcher.params, batch, key)
  both, with_term = consistent(matcher.params, batch, key)
  assert "consistency_db" not in metrics and with_term["consistency_db"] > 0
  np.testing.assert_allclose(both, loss + with_term["consistency_db"], rtol=1e-5)
  # A network predicting the same EQ whatever its input undoes nothing: its consistency error
  # is the colouration itself, larger than the trained CNN's.
  frozen = jax.tree_util.tree_map(jnp.zeros_like, matcher.params)
  _, flat = consistent(frozen, batch, key)
  assert flat["consistency_db"] > with_term["consistency_db"]


def test_fine_tuning_builds_its_curves_with_the_function_inference_uses(monkeypatch):
  # One correction, one function: the loss calls `jaxeq.spectrum.correction` with the track's
  # noise floor, coloured as the track is, and so does AutoEQ (tests/test_autoeq.py).
  calls = []

  def spy(target, track, floor=None, pitch=None, keep=0.0):
    calls.append((floor is not None, pitch is not None, keep is batch["keep"]))
    return spectrum_lib.correction(target, track, floor, pitch, keep)

  monkeypatch.setattr(finetune, "correction", spy)
  matcher = jaxeq.load_matcher("cnn")
  rng = np.random.default_rng(4)
  track = rng.normal(0, 4, (4, 256)).astype(np.float32) - 20
  batch = {"spectrum": track, "noise_floor": track - 8.0,
           "target": rng.normal(0, 4, (4, 256)).astype(np.float32),
           "own_spectrum": np.zeros(4, bool), "pitch": np.full(4, 60.0),
           "keep": np.ones(4, np.float32)}
  finetune.make_loss_fn(matcher, 6.0, consistency_weight=1.0)(matcher.params, batch,
                                                                jax.random.PRNGKey(0))
  # The curve and the re-coloured curve, each with its floor, its pitch and the rule's share.
  assert calls == [(True, True, True)] * 2
  # A track standing only 8 dB out of its noise is mostly noise: nothing is asked there.
  fix = spectrum_lib.correction(batch["target"], track, track - 4.0)
  assert np.all(np.asarray(fix.curve) == 0) and np.all(np.asarray(fix.quiet))


def test_the_loss_is_the_paper_mae_plus_the_quiet_boost_rule_and_no_gain_penalty():
  matcher = jaxeq.load_matcher("cnn")
  layout = matcher.layout
  # A dark track: nothing to speak of above 8 kHz (60 dB under the rest).
  spectrum = np.where(jaxeq.FREQS < 8000, 0.0, -60.0).astype(np.float32)[None]
  quiet = np.asarray(spectrum_lib.quiet_band(spectrum))
  settings = layout.from_unit(jnp.full((1, layout.num_controls), 0.5))
  flat = settings._replace(gain_db=jnp.zeros_like(settings.gain_db))
  shelf = flat._replace(gain_db=flat.gain_db.at[:, -1].set(10.0),
                        freq_hz=flat.freq_hz.at[:, -1].set(4000.0))
  response = layout.response_db(shelf, jaxeq.FREQS, jaxeq.SAMPLE_RATE)
  np.testing.assert_allclose(losses.quiet_boost_excess(response, quiet), [10.0 - 3.0], atol=0.3)
  # Cutting there, or boosting where the track has energy, breaks no rule.
  for ok in (flat._replace(gain_db=-shelf.gain_db),
             flat._replace(gain_db=flat.gain_db.at[:, 0].set(10.0),
                           freq_hz=flat.freq_hz.at[:, 0].set(100.0))):
    ok_response = layout.response_db(ok, jaxeq.FREQS, jaxeq.SAMPLE_RATE)
    assert float(losses.quiet_boost_excess(ok_response, quiet)[0]) < 0.1
    # ... and a curve asking for exactly that EQ costs nothing: large gains are not penalised.
    assert float(losses.correction_error(ok_response, ok_response, quiet)[0]) < 1e-4
    # The level counts: the same EQ 6 dB down everywhere, for the make-up gain to restore,
    # matches the curve 6 dB worse.
    np.testing.assert_allclose(losses.correction_error(ok_response - 6.0, ok_response, quiet),
                               [6.0], atol=1e-4)
  # Asked for the shelf, the EQ matches it, but not as AutoEQ applies it (boost scaled down),
  # and the objective says so.
  curves = finetune.Curves(spectrum, spectrum - 100, spectrum, np.ones_like(spectrum),
                           np.asarray(response), quiet, *[np.zeros(1, np.int32)] * 2,
                           np.full(1, np.nan), np.zeros(1))
  assert float(finetune.mae(layout, layout.to_unit(shelf), curves)[0]) < 0.05
  assert float(finetune.mae(layout, layout.to_unit(shelf), curves, applied=True)[0]) > 1.0
  np.testing.assert_allclose(losses.correction_error(response, response, quiet), [7.0], atol=0.3)
  # The per-curve optimiser, given the quiet band, keeps its boost there within the rule.
  unit, _ = optimiser.fit_curves(layout, np.asarray(response), starts=2, steps=300,
                                     quiet=quiet)
  fitted = layout.response_db(layout.from_unit(unit), jaxeq.FREQS, jaxeq.SAMPLE_RATE)
  assert float(losses.quiet_boost_excess(fitted, quiet)[0]) < 0.5


def test_the_applied_loss_sees_the_eq_as_autoeq_applies_it():
  # `applied_response` is `limit_quiet_boosts` in JAX: the same response where the boosts are
  # scaled down, and a gradient that sees that boosting into the quiet band is scaled away.
  matcher = jaxeq.load_matcher("cnn")
  layout = matcher.layout
  spectrum = np.where(jaxeq.FREQS < 8000, 0.0, -60.0).astype(np.float32)[None].repeat(2, 0)
  quiet = np.asarray(spectrum_lib.quiet_band(spectrum))
  settings = layout.from_unit(jnp.full((2, layout.num_controls), 0.5))
  gains = np.array([[6.0, -4.0, 2.0, 10.0], [3.0, -2.0, 1.0, -5.0]], np.float32)
  freqs = np.asarray(settings.freq_hz).copy()
  freqs[:, -1] = 4000.0
  settings = settings._replace(gain_db=jnp.asarray(gains), freq_hz=jnp.asarray(freqs))
  unit = layout.to_unit(settings)
  curves = finetune.Curves(spectrum, spectrum - 100, spectrum, np.ones_like(spectrum),
                           np.zeros_like(spectrum), quiet, *[np.zeros(2, np.int32)] * 2,
                           np.full(2, np.nan), np.zeros(2))
  expected = finetune.eq_responses(layout, unit, curves, applied=True)
  got = np.asarray(finetune.applied_response(layout, layout.from_unit(unit), quiet))
  np.testing.assert_allclose(got, expected, atol=1e-3)
  # The first EQ breaks the rule and is scaled; the second keeps it and is left as it is.
  predicted = finetune.eq_responses(layout, unit, curves)
  assert np.abs(got[0] - predicted[0]).max() > 1.0
  np.testing.assert_allclose(got[1], predicted[1], atol=1e-4)
  # Its gradient is the finite difference of the applied response (the scale moves too).
  def loss(u):
    return jnp.mean(finetune.applied_response(layout, layout.from_unit(u), quiet) ** 2)

  grad = np.asarray(jax.grad(loss)(unit))
  assert np.all(np.isfinite(grad))
  for j in range(layout.num_controls):
    step = np.zeros_like(np.asarray(unit))
    step[0, j] = 1e-2  # float32: a smaller step is mostly rounding
    numeric = (loss(unit + step) - loss(unit - step)) / 2e-2
    np.testing.assert_allclose(grad[0, j], numeric, rtol=0.02, atol=5e-3)
  # The loss counts it with `applied_weight`, and says so in its metrics.
  batch = {"spectrum": spectrum - 20, "noise_floor": spectrum - 120,
           "target": np.zeros_like(spectrum), "own_spectrum": np.zeros(2, bool),
           "pitch": np.full(2, np.nan), "keep": np.zeros(2)}
  key = jax.random.PRNGKey(0)
  plain, metrics = finetune.make_loss_fn(matcher, 6.0)(matcher.params, batch, key)
  both, with_term = finetune.make_loss_fn(matcher, 6.0, applied_weight=2.0)(matcher.params,
                                                                          batch, key)
  assert "applied_mae_db" not in metrics
  np.testing.assert_allclose(both, plain + 2.0 * with_term["applied_mae_db"], rtol=1e-5)
