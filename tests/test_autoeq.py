"""Automatic EQ end to end with the shipped models: the library and the `jaxeq` command."""

import copy
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import jaxeq
from jaxeq import AudioError, AutoEQ
from jaxeq import autoeq
from jaxeq.autoeq import NoCommonBand
from jaxeq.classes import CLASSES, KEEPS_FUNDAMENTAL
from jaxeq.classifier import softmax
from jaxeq.limiter import MAX_PEAK
from jaxeq.loudness import integrated_loudness
from jaxeq.spectrum import (analysis_signal, correction, fundamental_octave, long_term_spectrum,
                            nothing_to_equalise, smooth, zero_centre)


@pytest.fixture(scope="module")
def auto():
  return AutoEQ.from_pretrained()


@pytest.fixture(scope="module")
def tracks(smoke_dataset):
  """Coloured test clips (the unseen bank), by class."""
  with open(smoke_dataset / "manifest.csv") as f:
    rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
  return {r["class"]: smoke_dataset / r["path"] for r in rows}


def _mismatch(audio, rate, target):
  """How far a track's spectrum is from `target` (dB, smoothed like the difference)."""
  spectrum = long_term_spectrum(audio, rate)
  return float(np.mean(np.abs(np.asarray(smooth(zero_centre(target) - zero_centre(spectrum), 1 / 3)))))


def test_analysis_of_a_track(auto, tracks):
  audio, rate = jaxeq.load_audio(tracks["snare"])
  analysis = auto.analyze(audio, rate)
  assert analysis.instrument in CLASSES
  assert sum(analysis.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
  assert analysis.confidence == max(analysis.probabilities.values())
  for curve in (analysis.spectrum, analysis.target, analysis.difference):
    assert curve.shape == (256,) and np.all(np.isfinite(curve))
  assert np.max(np.abs(analysis.difference)) <= 12.0 + 1e-4
  # The target is the probability-weighted mix of the likeliest classes' targets, each at the
  # track's register.
  mix, pitch = analysis.target_mix, analysis.pitch_hz
  assert next(iter(mix)) == analysis.instrument and sum(mix.values()) == pytest.approx(1.0)
  np.testing.assert_allclose(analysis.target,
                             sum(w * auto.targets.target(c, pitch) for c, w in mix.items()),
                             atol=1e-4)
  assert analysis.weight.shape == (256,) and 0 <= analysis.weight.min() <= analysis.weight.max() <= 1
  # The one correction fine-tuning also trains on: the track's spectrum and noise floor, and
  # its fundamental kept as far as drums and basses make its target.
  keep = sum(w for c, w in mix.items() if c in KEEPS_FUNDAMENTAL)
  fix = correction(analysis.target, analysis.spectrum, analysis.noise_floor, pitch, keep)
  np.testing.assert_allclose(analysis.difference, fix.curve, atol=1e-5)
  np.testing.assert_allclose(analysis.weight, fix.weight, atol=1e-6)
  assert [b.kind for b in analysis.eq.bands] == ["low_shelf", "peak", "peak", "high_shelf"]
  assert json.loads(json.dumps(analysis.to_dict()))["instrument"] == analysis.instrument


@pytest.mark.parametrize("name", ["acoustic_guitar_steel", "electric_bass", "snare", "violin"])
def test_processing_moves_the_track_towards_its_target(auto, tracks, name):
  audio, rate = jaxeq.load_audio(tracks[name])
  processed, analysis = auto.process(audio, rate, instrument=name)
  assert analysis.probabilities is None and analysis.instrument == name
  assert processed.shape == audio.shape and processed.dtype == audio.dtype
  target = analysis.target  # the class's target at the track's register
  np.testing.assert_allclose(target, auto.targets.target(name, analysis.pitch_hz), atol=1e-5)
  assert _mismatch(processed, rate, target) < _mismatch(audio, rate, target)
  assert integrated_loudness(processed, rate) == pytest.approx(integrated_loudness(audio, rate),
                                                               abs=0.1)


def test_amount_scales_the_correction(auto, tracks):
  audio, rate = jaxeq.load_audio(tracks["cello"])
  untouched, none = auto.process(audio, rate, amount=0.0)
  np.testing.assert_allclose(untouched, audio, atol=1e-4)  # flat EQ, same loudness
  _, full = auto.process(audio, rate, amount=1.0)
  _, double = auto.process(audio, rate, amount=2.0)
  for a, b, c in zip(none.eq.bands, full.eq.bands, double.eq.bands):
    assert a.gain_db == 0.0 and c.gain_db == pytest.approx(2 * b.gain_db)
    assert c.freq_hz == b.freq_hz
  with pytest.raises(ValueError, match="amount=2.5"):
    auto.process(audio, rate, amount=2.5)


def test_matching_a_track_to_itself_changes_little(auto, tracks):
  audio, rate = jaxeq.load_audio(tracks["flute"])
  stereo = np.stack([audio, audio], axis=1)
  analysis = auto.analyze(stereo, rate, reference=audio)
  assert analysis.instrument is None and analysis.probabilities is None
  assert np.max(np.abs(analysis.difference)) < 0.05
  assert max(abs(b.gain_db) for b in analysis.eq.bands) < 1.5


def test_matching_a_coloured_real_recording_to_its_original_undoes_most_of_the_colouration(auto):
  # A real cello note through a bad microphone: its original, as the reference, is a request
  # to match it as closely as the EQ can (the network's EQ refined per track).
  from benchmarks.consistency import after_eq, audible_distance
  from data_prep import fetch
  cello, rate = jaxeq.load_audio(fetch.source_dir("tonejs-cello") / "C3.mp3")
  colour = jaxeq.EQ([jaxeq.Band("low_shelf", 150, 6.0), jaxeq.Band("peak", 800, -5.0, 1.5),
                     jaxeq.Band("high_shelf", 4000, -6.0)])
  coloured = jaxeq.apply_eq(cello, rate, colour)
  analysis = auto.analyze(coloured, rate, reference=cello)
  original, before = long_term_spectrum(cello, rate), long_term_spectrum(coloured, rate)
  weight = np.asarray(jaxeq.audible_weight(original))
  removed = 1 - (audible_distance(original, after_eq(before, analysis.eq), weight)
                 / audible_distance(original, before, weight))
  network = auto.matcher.predict(analysis.difference)[0]
  by_network = 1 - (audible_distance(original, after_eq(before, network), weight)
                    / audible_distance(original, before, weight))
  assert removed > 0.75 and removed >= by_network - 0.01
  # A reference with no audible band in common with the track is refused.
  noise = np.random.default_rng(5).standard_normal(4 * rate) * 0.1
  hiss = np.fft.irfft(np.fft.rfft(noise) * (np.fft.rfftfreq(len(noise), 1 / rate) > 10000))
  with pytest.raises(NoCommonBand, match="octaves of audible band"):
    auto.analyze(_band_limited_noise(rate, 60), rate, reference=hiss.astype(np.float32))


def test_loud_input_never_clips(auto, tracks):
  audio, rate = jaxeq.load_audio(tracks["electric_guitar_distorted"])
  loud = (audio / np.max(np.abs(audio)) * 0.999).astype(np.float32)
  processed, _ = auto.process(loud, rate, amount=2.0)
  assert np.max(np.abs(processed)) <= MAX_PEAK + 1e-6


def _band_limited_noise(rate, cutoff_hz, seconds=4.0):
  """White noise low-passed hard at `cutoff_hz`: nothing above it but a -100 dB floor."""
  rng = np.random.default_rng(3)
  noise = rng.standard_normal(int(seconds * rate)).astype(np.float32) * 0.1
  spectrum = np.fft.rfft(noise)
  spectrum[np.fft.rfftfreq(len(noise), 1 / rate) > cutoff_hz] *= 1e-5
  return np.fft.irfft(spectrum, len(noise)).astype(np.float32)


def test_no_boost_where_the_track_has_no_energy(auto):
  rate = 44100
  audio = _band_limited_noise(rate, 4000)
  bright = 2.0 * np.log2(jaxeq.FREQS / 1000)  # a target that asks for ever more treble
  analysis = auto.analyze(audio, rate, target=bright)
  quiet = jaxeq.FREQS > 8000
  assert np.all(analysis.weight[quiet] == 0) and np.all(analysis.difference[quiet] == 0)
  assert np.max(analysis.eq_curve()[quiet]) <= 3.0 + 1e-3
  # The optimiser as the matcher obeys the same rule.
  fitted = AutoEQ(auto.classifier, jaxeq.OptimiserMatcher(auto.matcher.layout, starts=2, steps=150),
                  auto.targets).analyze(audio, rate, target=bright)
  assert np.max(fitted.eq_curve()[quiet]) <= 3.0 + 1e-3


def test_no_boost_into_the_hiss_under_a_track(auto):
  # Three seconds of a band-limited instrument, then a second's gap; white hiss all along,
  # 40 dB under the instrument per Hz: within 45 dB of its peak, but only noise above 8 kHz.
  rate = 44100
  playing = np.concatenate([_band_limited_noise(rate, 4000, seconds=3.0), np.zeros(rate, np.float32)])
  hiss_rms = np.sqrt(np.mean(playing[:3 * rate] ** 2) * (rate / 2) / 4000) * 10 ** (-40 / 20)
  hiss = (hiss_rms * np.random.default_rng(4).standard_normal(len(playing))).astype(np.float32)
  bright = 2.0 * np.log2(jaxeq.FREQS / 1000)
  analysis = auto.analyze(playing + hiss, rate, target=bright)
  hissy = jaxeq.FREQS > 8000
  assert np.all(jaxeq.audible_weight(analysis.spectrum)[hissy] > 0)  # the peak rule lets it in
  assert np.all(analysis.weight[hissy] == 0) and np.all(analysis.difference[hissy] == 0)
  assert np.max(analysis.eq_curve()[hissy]) <= 3.0 + 1e-3
  assert analysis.noise_floor.shape == (256,)
  assert "noise_floor" in analysis.to_dict()


def _tone(rate, hz, seconds=3.0):
  return 0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate).astype(np.float32)


def _near_silent(rate):
  return (1e-4 * np.random.default_rng(6).standard_normal(3 * rate)).astype(np.float32)


def _click(rate):
  return np.concatenate([np.zeros(rate), [0.9, -0.5, 0.2], np.zeros(rate)]).astype(np.float32)


@pytest.mark.parametrize("make, why", [
    (lambda rate: _tone(rate, 60), "one sustained tone (60 Hz)"),
    (lambda rate: _tone(rate, 440), "one sustained tone (440 Hz)"),
    (lambda rate: _tone(rate, 12000), "one sustained tone (12000 Hz)"),
    (_click, "a click"),
    (_near_silent, "near-silent")])
def test_a_tone_a_click_or_near_silence_gets_a_flat_eq_and_says_why(auto, make, why):
  rate = 44100
  processed, analysis = auto.process(make(rate), rate)
  assert all(b.gain_db == 0.0 for b in analysis.eq.bands)
  assert analysis.note.startswith("EQ left flat") and why in analysis.note
  assert "flat EQ" in analysis.summary() and why in analysis.summary()
  assert analysis.makeup_gain_db == pytest.approx(0.0, abs=0.05)


def test_real_one_shots_are_not_taken_for_a_tone_or_a_click():
  # The notes and hits whose power is most in one partial (RESULTS: none of 960 real test
  # recordings is taken for a tone, a click or silence).
  from data_prep import fetch
  kick = fetch.source_dir("hydrogen-drumkits") / "HardElectro1" / "HardHse_K_02.flac"
  for path in (kick, fetch.source_dir("tonejs-contrabass") / "E2.mp3",
               fetch.source_dir("tonejs-clarinet") / "D3.mp3",
               fetch.source_dir("tonejs-flute") / "C5.mp3"):
    audio, rate = jaxeq.load_audio(path)
    assert nothing_to_equalise(analysis_signal(audio, rate)) is None, path


def test_a_track_with_too_little_band_in_common_with_its_target_stays_flat(auto):
  rate = 44100
  analysis = auto.analyze(_band_limited_noise(rate, 150), rate, instrument="Flute")
  assert analysis.instrument == "flute"
  assert all(b.gain_db == 0.0 for b in analysis.eq.bands)
  assert "flat" in analysis.note and "octaves" in analysis.note


def test_summary_line_names_instrument_bands_and_loudness(auto, tracks):
  audio, rate = jaxeq.load_audio(tracks["violin"])
  _, analysis = auto.process(audio, rate)
  line = analysis.summary()
  assert "\n" not in line and line.startswith(analysis.instrument)
  assert f"{analysis.confidence:.0%}" in line and "loudness" in line
  for band in analysis.eq.bands:
    if abs(band.gain_db) >= 0.05:
      assert f"{band.freq_hz:.0f} Hz {band.gain_db:+.1f} dB Q {band.q:.2f}" in line
  assert abs(analysis.loudness_change_lu) < 0.1
  close = type(analysis)(**{**analysis.__dict__, "probabilities": {
      "violin": 0.4, "viola": 0.35, "cello": 0.25}, "instrument": "violin"})
  assert "violin 40% (or viola 35%)" in close.summary()


def _classifier_at(auto, audio, rate, confidence: float):
  """The shipped classifier with its temperature set so that its top class on `audio` gets
  `confidence`."""
  logits = auto.classifier.logits(audio, rate)
  lo, hi = 1e-2, 1e4  # the top probability falls as the temperature rises
  for _ in range(100):
    mid = np.sqrt(lo * hi)
    lo, hi = (mid, hi) if softmax(logits, mid).max() > confidence else (lo, mid)
  unsure = copy.copy(auto.classifier)
  unsure.temperature = float(np.sqrt(lo * hi))
  return AutoEQ(unsure, auto.matcher, auto.targets)


def test_a_track_the_classifier_cannot_name_gets_the_generic_target_and_a_gentler_eq(
    auto, tracks, monkeypatch):
  audio, rate = jaxeq.load_audio(tracks["violin"])
  unsure = _classifier_at(auto, audio, rate, 0.1)  # under UNSURE_CONFIDENCE: generic alone
  analysis = unsure.analyze(audio, rate)
  assert analysis.confidence == pytest.approx(0.1, abs=1e-3)
  assert analysis.generic_share == 1.0
  np.testing.assert_allclose(analysis.target, auto.targets.generic(), atol=1e-6)
  assert analysis.target_mix is None
  assert "not sure what this is" in analysis.summary() and "100% generic" in analysis.note
  monkeypatch.setattr(autoeq, "UNSURE_AMOUNT", 1.0)
  full = unsure.analyze(audio, rate)
  assert any(abs(b.gain_db) > 0.5 for b in full.eq.bands)
  np.testing.assert_allclose([b.gain_db for b in analysis.eq.bands],
                             [0.5 * b.gain_db for b in full.eq.bands], atol=1e-9)


def test_between_unsure_and_sure_the_target_and_strength_move_gradually(auto, tracks,
                                                                         monkeypatch):
  """Halfway between UNSURE_CONFIDENCE and LOW_CONFIDENCE: half generic, three quarters of the
  gains; just over LOW_CONFIDENCE: the classifier's blend at full strength."""
  audio, rate = jaxeq.load_audio(tracks["violin"])
  halfway = (autoeq.LOW_CONFIDENCE + autoeq.UNSURE_CONFIDENCE) / 2
  unsure = _classifier_at(auto, audio, rate, halfway)
  analysis = unsure.analyze(audio, rate)
  assert analysis.generic_share == pytest.approx(0.5, abs=0.01)
  blend, mix = auto.targets.blend(analysis.probabilities, pitch_hz=analysis.pitch_hz)
  share = analysis.generic_share
  np.testing.assert_allclose(analysis.target, (1 - share) * blend + share * auto.targets.generic(),
                             atol=1e-5)
  assert analysis.target_mix == pytest.approx({k: (1 - share) * v for k, v in mix.items()})
  assert "50% generic" in analysis.note and "75% strength" in analysis.note
  monkeypatch.setattr(autoeq, "UNSURE_AMOUNT", 1.0)
  full = unsure.analyze(audio, rate)
  np.testing.assert_allclose([b.gain_db for b in analysis.eq.bands],
                             [(1 - 0.5 * share) * b.gain_db for b in full.eq.bands], atol=1e-9)
  sure = _classifier_at(auto, audio, rate, autoeq.LOW_CONFIDENCE + 0.01).analyze(audio, rate)
  assert sure.generic_share == 0.0 and "not sure" not in (sure.note or "")
  np.testing.assert_allclose(sure.target, auto.targets.blend(sure.probabilities, pitch_hz=sure.pitch_hz)[0],
                             atol=1e-6)


@pytest.mark.parametrize("audio, reason", [(np.zeros(44100, np.float32), "silent"),
                                           (np.full(44100, np.nan, np.float32), "NaN")])
def test_unusable_audio(auto, audio, reason):
  with pytest.raises(AudioError, match=reason):
    auto.process(audio, 44100)


def _jaxeq(*args, cwd):
  return subprocess.run([sys.executable, "-m", "jaxeq", *map(str, args)], cwd=cwd,
                        capture_output=True, text=True, timeout=600)


def test_process_command(tmp_path, tracks):
  inputs = tmp_path / "in"
  inputs.mkdir()
  audio, rate = jaxeq.load_audio(tracks["snare"])
  sf.write(inputs / "snare.wav", np.stack([audio, 0.5 * audio], axis=1), rate, subtype="PCM_24")
  sf.write(inputs / "guitar.flac", jaxeq.load_audio(tracks["acoustic_guitar_nylon"])[0], rate)
  (inputs / "empty.wav").write_bytes(b"")
  sf.write(inputs / "bass.wav", jaxeq.load_audio(tracks["electric_bass"])[0], rate)
  before = {p.name: p.read_bytes() for p in inputs.iterdir()}
  out = tmp_path / "out"
  (out / "bass.wav").mkdir(parents=True)  # in the way: writing this output fails

  result = _jaxeq("process", inputs, "--out", out, "--plot", cwd=tmp_path)

  assert result.returncode == 1
  errors = sorted(line for line in result.stderr.splitlines() if line.startswith("jaxeq:"))
  assert len(errors) == 2 and "bass.wav" in errors[0] and "empty.wav" in errors[1]
  assert "Traceback" not in result.stderr
  info = sf.info(out / "snare.wav")
  assert (info.channels, info.samplerate, info.subtype, info.frames) == (2, rate, "PCM_24",
                                                                         len(audio))
  assert sf.info(out / "guitar.flac").format == "FLAC"
  eq = jaxeq.EQ.load(out / "snare.eq.json")
  assert len(eq.bands) == 4
  assert (out / "snare.ParametricEQ.txt").read_text().startswith("Preamp:")
  assert json.loads((out / "guitar.analysis.json").read_text())["instrument"] in CLASSES
  assert (out / "snare.png").read_bytes()[:4] == b"\x89PNG"
  assert before == {p.name: p.read_bytes() for p in inputs.iterdir()}


def test_analyze_and_classes_commands(tmp_path, tracks):
  result = _jaxeq("analyze", tracks["kick"], "--instrument", "Kick", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  line, = result.stdout.splitlines()
  assert line.startswith(f"{tracks['kick']}: kick (given); ") and " Hz " in line
  bad = _jaxeq("analyze", tracks["kick"], "--instrument", "snair", cwd=tmp_path)
  assert bad.returncode == 2 and "Traceback" not in bad.stderr
  assert "'snair'" in bad.stderr and "did you mean snare" in bad.stderr
  matched = _jaxeq("analyze", tracks["kick"], "--reference", tracks["kick"], cwd=tmp_path)
  assert matched.returncode == 0 and "matched to a reference" in matched.stdout
  classes = _jaxeq("classes", cwd=tmp_path)
  assert [line.split()[0] for line in classes.stdout.splitlines()] == list(CLASSES)


def test_an_analysis_prints_as_its_summary_not_its_curves():
  from jaxeq.autoeq import Analysis
  curve = np.linspace(-3, 3, 256)
  analysis = Analysis("snare", {"snare": 0.93, "toms": 0.07}, curve, curve, {"snare": 1.0},
                      np.ones(256), curve, jaxeq.EQ([jaxeq.Band("peak", 900, -2.6, 1.4)]))
  assert repr(analysis) == "Analysis(snare 93%; peak 900 Hz -2.6 dB Q 1.40)"
  assert str(analysis) == repr(analysis)


def test_a_coloured_copy_gets_the_same_register_and_target(auto, tracks):
  """The target follows the track's pitch, which an EQ does not move: a track and a coloured
  copy of it are compared with one target (a register read from the spectrum would not be)."""
  audio, rate = jaxeq.load_audio(tracks["cello"])
  coloured = jaxeq.apply_eq(audio, rate, jaxeq.EQ([jaxeq.Band("low_shelf", 200, 9.0),
                                                   jaxeq.Band("high_shelf", 3000, -9.0)]))
  original, copy_ = (auto.analyze(a, rate, instrument="cello") for a in (audio, coloured))
  assert original.pitch_hz == pytest.approx(copy_.pitch_hz, rel=0.01)
  np.testing.assert_allclose(original.target, copy_.target, atol=0.05)
  np.testing.assert_allclose(original.target, auto.targets.target("cello", original.pitch_hz),
                             atol=1e-5)
  assert not np.allclose(original.target, auto.targets.target("cello"), atol=0.5)


@pytest.mark.parametrize("source, path, instrument, other", [
    ("hydrogen-drumkits", "HardElectro1/HardHse_K_02.flac", "kick", "cymbals"),
    ("tonejs-contrabass", "A2.mp3", "contrabass", "cello"),
    ("tonejs-bass-electric", "E2.mp3", "electric_bass", "trombone")])
def test_a_drum_or_bass_keeps_its_fundamental(auto, source, path, instrument, other):
  """A class target, the mean of many pitches and kits, is flatter than one well-recorded kick
  or bass note: its EQ must not cut the note's fundamental (it did: RESULTS, issue 28)."""
  from data_prep import fetch
  audio, rate = jaxeq.load_audio(fetch.source_dir(source) / path)
  analysis = auto.analyze(audio, rate, instrument=instrument)
  near = np.abs(np.log2(jaxeq.FREQS) - np.asarray(fundamental_octave(analysis.spectrum,
                                                                     analysis.pitch_hz)))
  assert analysis.difference[near <= 0.5].min() >= -1e-4
  unruled = correction(analysis.target, analysis.spectrum, analysis.noise_floor)
  assert unruled.curve[near <= 0.5].min() < -1.0  # what the rule undid
  # The matcher's EQ follows: no cut over 3 dB there (the benchmark's line), and less of one
  # than the EQ it makes for the curve without the rule.
  unruled_eq, = auto.matcher.predict(np.asarray(unruled.curve)[None],
                                     np.asarray(unruled.quiet)[None])
  unruled_at_fundamental = unruled_eq.response_db(jaxeq.FREQS, jaxeq.SAMPLE_RATE)[near <= 0.25].min()
  at_fundamental = analysis.eq_curve()[near <= 0.25].min()
  assert at_fundamental > -3.0 and at_fundamental > unruled_at_fundamental + 1.0
  # Named as a class without the rule, or matched to a reference, the track's cuts stand.
  for named in (auto.analyze(audio, rate, instrument=other),
                auto.analyze(audio, rate, target=analysis.target)):
    np.testing.assert_allclose(named.difference, correction(named.target, named.spectrum,
                                                            named.noise_floor).curve, atol=1e-5)
