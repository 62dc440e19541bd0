"""Target banks: built from reference tracks, saved without pickle, loaded, plotted."""

import numpy as np
import pytest
import soundfile as sf

import jaxeq
from jaxeq import EQ, Band
from jaxeq.plots import plot_targets
from jaxeq.targets import (REFERENCE_TRACKS, SHIPPED_FALLBACK, TargetBank, bank_from_spectra,
                           build_target_bank, load_targets)


def _coloured_noise(path, eq, seed, rate=44100, seconds=2.0):
  noise = 0.1 * np.random.default_rng(seed).standard_normal(int(rate * seconds))
  sf.write(path, jaxeq.apply_eq(noise, rate, eq), rate, subtype="FLOAT")
  return path


def test_bank_holds_the_mean_zero_mean_spectrum_of_each_class(tmp_path):
  dark, bright = EQ([Band("high_shelf", 2000, -9.0)]), EQ([Band("high_shelf", 2000, 9.0)])
  tracks = {"cello": [_coloured_noise(tmp_path / f"c{i}.wav", dark, i) for i in range(3)],
            "flute": [_coloured_noise(tmp_path / f"f{i}.wav", bright, 10 + i) for i in range(2)]}
  (tmp_path / "bad.wav").write_bytes(b"junk")
  tracks["flute"].append(tmp_path / "bad.wav")
  errors = []
  bank = build_target_bank(tracks, jaxeq.load_audio, source="test", on_error=errors.append)
  assert bank.classes == ("cello", "flute") and list(bank.counts) == [3, 2]
  assert len(errors) == 1 and "bad.wav" in errors[0]
  np.testing.assert_allclose(bank.curves.mean(axis=1), 0.0, atol=1e-4)
  # The flute target is the cello target tilted up by the two shelves' 18 dB difference.
  tilt = bank.target("flute") - bank.target("cello")
  top, bottom = jaxeq.FREQS > 10000, jaxeq.FREQS < 500
  assert tilt[top].mean() - tilt[bottom].mean() == pytest.approx(18.0, abs=1.0)
  with pytest.raises(ValueError, match="no target in this bank.*'tuba'"):
    bank.target("tuba")
  np.testing.assert_array_equal(bank.target("Cello"), bank.target("cello"))

  path = tmp_path / "bank.npz"
  bank.save(path)
  loaded = TargetBank.load(path)
  assert loaded.classes == bank.classes and loaded.provenance["source"] == "test"
  np.testing.assert_array_equal(loaded.curves, bank.curves)
  plot_targets(bank, tmp_path / "targets.png")
  assert (tmp_path / "targets.png").read_bytes()[:4] == b"\x89PNG"


def test_blended_target_weighs_the_likeliest_classes_by_probability():
  curves = np.stack([np.full(256, v, np.float32) for v in (1.0, 2.0, 4.0, 8.0)])
  curves -= curves.mean(axis=1, keepdims=True)
  curves[:, :128] += np.arange(4)[:, None]  # tell the four apart after zero-centring
  bank = TargetBank(("a", "b", "c", "d"), curves, np.ones(4, int), {})
  target, mix = bank.blend({"a": 0.6, "b": 0.3, "c": 0.08, "d": 0.02})
  # At most three classes; one under a tenth of the winner's probability is left out.
  assert list(mix) == ["a", "b", "c"] and sum(mix.values()) == pytest.approx(1.0)
  assert mix["a"] == pytest.approx(0.6 / 0.98)
  np.testing.assert_allclose(target, sum(w * bank.target(c) for c, w in mix.items()), atol=1e-6)
  confident, mix = bank.blend({"a": 0.02, "b": 0.95, "c": 0.03})
  assert list(mix) == ["b"]
  np.testing.assert_array_equal(confident, bank.target("b"))
  argmax, mix = bank.blend({"a": 0.5, "b": 0.45}, top=1)
  assert list(mix) == ["a"]


def test_real_recordings_make_a_class_target_where_there_are_some():
  spectra = np.stack([np.linspace(0, v, 256) for v in (1.0, 3.0, 5.0, 7.0)]).astype(np.float32)
  labels, recorded = [0, 0, 1, 1], [False, True, False, False]
  bank = bank_from_spectra(("cello", "flute"), labels, spectra, {},
                                         recorded=recorded)
  assert bank.origin("cello") == "real recordings" and bank.origin("flute") == "renders"
  assert list(bank.counts) == [1, 2]  # the cello's render is left out
  np.testing.assert_allclose(bank.target("cello"), spectra[1] - spectra[1].mean(), atol=1e-5)


def test_bad_bank_files(tmp_path):
  with pytest.raises(ValueError, match="no such target bank"):
    TargetBank.load(tmp_path / "missing.npz")
  (tmp_path / "junk.npz").write_bytes(b"junk")
  with pytest.raises(ValueError, match="junk.npz: not a jaxeq target bank"):
    TargetBank.load(tmp_path / "junk.npz")
  np.savez(tmp_path / "other.npz", x=np.zeros(3))
  with pytest.raises(ValueError, match="other.npz: not a jaxeq target bank"):
    TargetBank.load(tmp_path / "other.npz")
  with pytest.raises(ValueError, match="no usable reference tracks"):
    build_target_bank({"cello": []}, jaxeq.load_audio)


def test_dataset_bank_takes_real_recordings_where_a_class_has_them(tmp_path, smoke_dataset):
  from data_prep import recordings
  from experiments import targets
  config = targets.get_config("smoke")
  config.data_dir = str(smoke_dataset)
  bank = targets.train_and_evaluate(config, tmp_path / "run")
  recorded_classes = {c for c in jaxeq.CLASSES if recordings.recorded_sources(c, "train")}
  # Voices and whole kits: real sound only; distorted guitar: four produced songs' guitar tracks.
  recorded_classes |= set(targets.FROM_RECORDINGS)
  assert bank.classes == jaxeq.CLASSES and len(recorded_classes) == 27
  assert all(song in bank.provenance["sources"]["electric_guitar_distorted"]
             for song in ("armygeddon", "chaos_god", "internal_degeneration", "mutilated_mime"))
  for name in bank.classes:
    assert bank.origin(name) == ("real recordings" if name in recorded_classes else "renders")
  loaded = TargetBank.load(tmp_path / "run" / "targets.npz")
  assert loaded.provenance["origin"] == bank.provenance["origin"]
  assert (tmp_path / "run" / "targets.png").read_bytes()[:4] == b"\x89PNG"
  targets.export(config, tmp_path / "run", tmp_path / "export", "test")
  assert TargetBank.load(tmp_path / "export" / "targets.npz").classes == bank.classes


def test_a_partial_bank_is_completed_from_the_shipped_one_and_says_which(tmp_path):
  dark = EQ([Band("high_shelf", 2000, -9.0)])
  partial = build_target_bank({"cello": [_coloured_noise(tmp_path / "c.wav", dark, 0)]},
                              jaxeq.load_audio, source="mine")
  assert partial.classes == ("cello",) and partial.origin("cello") == REFERENCE_TRACKS
  partial.save(tmp_path / "partial.npz")
  shipped = load_targets()
  bank = load_targets(tmp_path / "partial.npz")  # what --targets and from_pretrained load
  assert bank.classes == shipped.classes and bank.provenance["source"] == "mine"
  np.testing.assert_array_equal(bank.target("cello"), partial.target("cello"))
  for name in bank.classes:
    if name != "cello":
      assert bank.origin(name) == SHIPPED_FALLBACK
      np.testing.assert_array_equal(bank.target(name), shipped.target(name))
  assert shipped.completed(shipped) is shipped


def _note(path, f0, rate=44100, seconds=2.0, brightness=1.0):
  """A harmonic note at `f0`, its partials falling by 6 dB per octave (`brightness` < 1: faster)."""
  t = np.arange(int(rate * seconds)) / rate
  partials = [k for k in range(1, 40) if k * f0 < rate / 2]
  note = sum(np.sin(2 * np.pi * k * f0 * t) * k ** -(1 / brightness) for k in partials)
  sf.write(path, 0.2 * note / np.max(np.abs(note)), rate, subtype="FLOAT")
  return path


def test_the_target_follows_the_register_the_track_plays_in(tmp_path):
  low, high = _note(tmp_path / "low.wav", 110.0), _note(tmp_path / "high.wav", 880.0, brightness=0.5)
  bank = build_target_bank({"violin": [low, high]}, jaxeq.load_audio)
  np.testing.assert_allclose(bank.reference_pitches_hz, [110.0, 880.0], rtol=0.01)
  spectra = [np.asarray(jaxeq.zero_centre(jaxeq.long_term_spectrum(*jaxeq.load_audio(p))))
             for p in (low, high)]
  # At a reference's pitch the target is that reference (the other, 3 octaves away, weighs
  # exp(-18)); between them, both alike; with no pitch, the class's mean.
  np.testing.assert_allclose(bank.target("violin", 110.0), spectra[0], atol=1e-3)
  np.testing.assert_allclose(bank.target("violin", 880.0), spectra[1], atol=1e-3)
  between = np.sqrt(np.prod(bank.reference_pitches_hz))
  np.testing.assert_allclose(bank.target("violin", between), (spectra[0] + spectra[1]) / 2,
                             atol=1e-3)
  np.testing.assert_allclose(bank.target("violin"), bank.curves[0])
  np.testing.assert_allclose(bank.target("violin", float("nan")), bank.curves[0])
  np.testing.assert_allclose(bank.register_hz("violin", (0.0, 1.0)), [110.0, 880.0], rtol=0.01)
  target, mix = bank.blend({"violin": 1.0}, pitch_hz=110.0)
  np.testing.assert_array_equal(target, bank.target("violin", 110.0))

  bank.save(tmp_path / "bank.npz")
  loaded = TargetBank.load(tmp_path / "bank.npz")
  np.testing.assert_array_equal(loaded.target("violin", 220.0), bank.target("violin", 220.0))
  # Completed from the shipped bank, the classes keep their own references.
  completed = loaded.completed(load_targets())
  np.testing.assert_array_equal(completed.target("violin", 220.0), bank.target("violin", 220.0))
  shipped = load_targets()
  np.testing.assert_array_equal(completed.target("cello", 150.0), shipped.target("cello", 150.0))
  assert len(shipped.register_hz("cello")) == 2


def test_a_mostly_unpitched_class_follows_no_register():
  """A distorted guitar's chords or a drum are mostly unpitched: the one reference YIN happened
  to pitch must not become the target of every pitched track of the class."""
  rng = np.random.default_rng(0)
  spectra = rng.normal(0, 6, (8, 256)).astype(np.float32)
  pitches = [90.0, np.nan, np.nan, np.nan, 200.0, 400.0, np.nan, 800.0]
  bank = bank_from_spectra(["kick", "violin"], [0, 0, 0, 0, 1, 1, 1, 1], spectra, {},
                           pitches_hz=pitches)
  assert not bank.follows_register("kick") and bank.follows_register("violin")
  np.testing.assert_array_equal(bank.target("kick", 90.0), bank.target("kick"))
  assert len(bank.register_hz("kick")) == 0 and len(bank.register_hz("violin")) == 2
  assert not np.allclose(bank.target("violin", 200.0), bank.target("violin"), atol=0.5)


def test_a_bank_saved_before_registers_still_loads(tmp_path):
  bank = TargetBank(("cello",), np.zeros((1, 256), np.float32), np.array([3]), {"source": "old"})
  with open(tmp_path / "old.npz", "wb") as f:
    np.savez(f, format=np.array("jaxeq.targets/1"), classes=np.array(bank.classes),
             freqs=jaxeq.FREQS, curves=bank.curves, counts=bank.counts,
             provenance=np.array('{"source": "old"}'))
  old = TargetBank.load(tmp_path / "old.npz")
  assert old.provenance["source"] == "old" and len(old.references) == 0
  np.testing.assert_array_equal(old.target("cello", 200.0), old.curves[0])  # no register
