"""Recognition on sources never heard (issue 27): the recorded-only clips, the classifier of
frozen backbones and a head, and the leave-one-source-out experiment, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

from data_prep import recognition, recordings
from data_prep.sound_source import SAMPLE_RATE
from jaxeq.classes import CLASSES
from jaxeq.classifier import (Classifier, FusedClassifier, InstrumentCNN, init_params,
                              load_classifier, spectrogram_cnn)
from jaxeq.targets import TargetBank

ONE_EACH = {name: 1 for name in recognition.CLIPS}
SMALL = {"stem_features": 8, "features": (8, 8)}


@pytest.fixture(scope="module")
def clips():
  return recognition.clips(0, ONE_EACH)


def test_recorded_only_clips_hold_voices_whole_kits_and_the_new_instruments(clips):
  names = {c.class_name for c in clips}
  assert {"vocals", "drum_kit", "organ", "electric_guitar_distorted", "viola", "kick",
          "snare", "hihat"} <= names
  for clip in clips:
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert len(clip.audio) in {int(s * SAMPLE_RATE) for s in recognition.SECONDS}
    assert np.all(np.isfinite(clip.audio)) and 0 < np.max(np.abs(clip.audio)) <= 0.9 + 1e-6
    held_out = clip.identity in recognition.TEST_IDENTITIES | set(recordings.TEST_KITS)
    assert clip.split == ("test" if held_out else "train"), clip.identity
  kits = {c.identity for c in clips if c.class_name == "drum_kit" and c.kind == "kit_track"}
  assert kits == set(recordings.TRAIN_KITS + recordings.TEST_KITS)
  # Held-out speakers are whole identities: none of them trains.
  train_voices = {c.identity for c in clips if c.class_name == "vocals" and c.split == "train"}
  assert train_voices and not train_voices & recognition.TEST_IDENTITIES
  again = recognition.clips(0, ONE_EACH)
  assert all(np.array_equal(a.audio, b.audio) for a, b in zip(clips, again))


def test_a_voice_through_a_phone_band_keeps_nothing_above_it():
  noise = np.random.default_rng(0).normal(size=SAMPLE_RATE).astype(np.float32)
  freqs, power = signal.welch(recognition.phone_band(noise), SAMPLE_RATE, nperseg=4096)
  inside = power[(freqs > 600) & (freqs < 3000)].mean()
  assert power[freqs > 8000].mean() < inside * 1e-4 and power[freqs < 80].mean() < inside * 1e-3


@pytest.fixture(scope="module")
def fused():
  import jax
  cnn = Classifier(CLASSES[:35], init_params(InstrumentCNN(35, **SMALL), jax.random.key(0)),
                   SMALL)
  width = 16 + 200  # the small CNN's pooled features, musicnn MSD's penultimate layer
  rng = np.random.default_rng(0)
  head = {"mean": rng.normal(size=width).astype(np.float32),
          "scale": rng.uniform(0.5, 2, width).astype(np.float32),
          "kernel": rng.normal(size=(width, len(CLASSES))).astype(np.float32),
          "bias": rng.normal(size=len(CLASSES)).astype(np.float32)}
  return FusedClassifier(CLASSES, cnn, head, ("cnn", "msd/penultimate"), temperature=1.5)


def test_fused_classifier_round_trips_and_answers_any_rate_and_length(tmp_path, fused):
  fused.save(tmp_path / "clf", card="# card\n")
  loaded = load_classifier(tmp_path / "clf")
  assert isinstance(loaded, FusedClassifier) and loaded.classes == CLASSES
  assert loaded.temperature == 1.5 and loaded.features == fused.features
  assert spectrogram_cnn(tmp_path / "clf").classes == CLASSES[:35]
  rng = np.random.default_rng(1)
  for rate, seconds in [(44100, 10.0), (22050, 0.4), (96000, 2.0)]:
    audio = rng.normal(size=(int(rate * seconds), 2)).astype(np.float32) * 0.1
    want, got = fused.predict(audio, rate), loaded.predict(audio, rate)
    assert list(got) == list(want) and sum(got.values()) == pytest.approx(1.0)
    np.testing.assert_allclose(list(got.values()), list(want.values()), atol=1e-5)


def test_experiment_smoke_measures_left_out_sources_and_exports_a_classifier_and_bank(
    tmp_path, smoke_dataset):
  from experiments import recognition as experiment
  config = experiment.get_config("smoke")
  config.data_dir = str(smoke_dataset)
  results = experiment.train_and_evaluate(config, tmp_path / "run")
  result = results["sets"][results["best"]]
  loso = result["leave one source out"]
  # Every real source is scored by a head that never saw it; voices and kits among them.
  assert loso["vocals"]["clips"] >= 20 and loso["drum_kit"]["clips"] >= 14
  assert "klettres/en" in loso["per source"] and "grandorgue-demo" in loso["per source"]
  for group in experiment.LOSO_ROWS:
    assert 0.0 <= loso[group]["top1"] <= 1.0, group
  assert result["temperature"] > 0 and 0.0 <= result["test: wrong at >= 80 %"] <= 1.0
  assert "hydrogen/BJA_Pacific" in results["heard by the CNN"]
  assert "klettres/en" not in results["heard by the CNN"]
  saved = json.loads((tmp_path / "run" / "evaluation.json").read_text())
  assert saved["best"] == results["best"]

  experiment.export(config, tmp_path / "run", tmp_path / "export", "test")
  classifier = load_classifier(tmp_path / "export" / "classifier")
  assert isinstance(classifier, FusedClassifier) and classifier.classes == CLASSES
  assert classifier.temperature == pytest.approx(result["temperature"])
  card = (tmp_path / "export" / "classifier" / "MODEL_CARD.md").read_text()
  assert "| vocals |" in card and "command: `test`" in card
  bank = TargetBank.load(tmp_path / "export" / "targets.npz")
  assert bank.classes == CLASSES and bank.origin("vocals") == "real recordings"
  voice = clips_of(recognition.clips(0, ONE_EACH), "vocals")[0]
  assert set(classifier.predict(voice, SAMPLE_RATE)) == set(CLASSES)


def clips_of(clips, name):
  return [c.audio for c in clips if c.class_name == name]
