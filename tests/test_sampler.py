"""The sampler (data_prep.sampler) on real audio files written here, named like the real sets:
tonejs-instruments MP3s (`A3.mp3`, `As3.mp3`) and Salamander OGGs (`C4v1.ogg`, `rel40.ogg`)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from data_prep import sampler as sm
from data_prep.material import Control, Material, Note, Sounds, make_material

SR = sm.SAMPLE_RATE


def _tone(path, f0, seconds=1.5, partials=(1.0, 0.3, 0.1), decay=None, rate=44100,
          amplitude=0.5, lead=0.05):
  """A harmonic tone (partial amplitudes relative to the fundamental), after `lead` seconds of
  silence, decaying by exp(-t/decay) where `decay` is given, faded in over 2 ms."""
  t = np.arange(int(seconds * rate)) / rate
  x = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t) for k, a in enumerate(partials))
  x *= np.minimum(1.0, t / 0.002)
  if decay is not None:
    x *= np.exp(-t / decay)
  x = amplitude * x / np.abs(x).max()
  x = np.concatenate([np.zeros(int(lead * rate)), x])
  sf.write(str(path), x.astype(np.float32), rate)


def _hz(note):
  return 440.0 * 2 ** ((note - 69) / 12)


def _f0(audio, lo_hz, hi_hz):
  """The frequency of the strongest FFT peak between lo_hz and hi_hz (zero-padded, parabolic
  interpolation)."""
  n = 1 << 19
  spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n))
  freqs = np.fft.rfftfreq(n, 1 / SR)
  band = np.flatnonzero((freqs >= lo_hz) & (freqs <= hi_hz))
  i = band[np.argmax(spectrum[band])]
  a, b, c = np.log(spectrum[i - 1:i + 2] + 1e-30)
  return freqs[i] + (a - c) / (2 * (a - 2 * b + c)) * (freqs[1] - freqs[0])


def _band_level(audio, f, width=15.0):
  """Magnitude of the spectrum around `f` Hz."""
  spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
  freqs = np.fft.rfftfreq(len(audio), 1 / SR)
  return float(spectrum[np.abs(freqs - f) < width].max())


def _rms_db(x):
  return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def _material(notes, controls=()):
  return Material(notes=tuple(notes), controls=tuple(controls), program=40, is_drum=False,
                  description="test", tempo_bpm=120.0, articulation="normal", velocity=80)


@pytest.fixture
def tonejs(tmp_path):
  """A tonejs-style folder: A3, C4, E4 as MP3, plus files that are not recordings."""
  folder = tmp_path / "violin"
  folder.mkdir()
  for name in ("A3", "C4", "E4"):
    _tone(folder / f"{name}.mp3", _hz(sm.note_number(name)), seconds=2.0)
  (folder / "README.md").write_text("not audio")
  (folder / "index.js").write_text("module.exports = {}")
  return folder


def test_names_of_both_schemes():
  assert sm.parse_name("A3") == ("note", 57, 1, 1)
  assert sm.parse_name("As3") == ("note", 58, 1, 1)
  assert sm.parse_name("Cs4") == ("note", 61, 1, 1)
  assert sm.parse_name("Db4") == ("note", 61, 1, 1)
  assert sm.parse_name("Bb3") == ("note", 58, 1, 1)
  assert sm.parse_name("A0v10") == ("note", 21, 10, 1)
  assert sm.parse_name("F#3v10") == ("note", 54, 10, 1)
  assert sm.parse_name("Ds1v3") == ("note", 27, 3, 1)
  assert sm.parse_name("C8v16") == ("note", 108, 16, 1)
  assert sm.parse_name("C4_rr2") == ("note", 60, 1, 2)
  assert sm.parse_name("rel12") == ("release", 32, 1, 1)
  assert sm.parse_name("rel1") == ("release", 21, 1, 1)
  assert sm.parse_name("README") is None and sm.parse_name("index") is None
  assert sm.note_number("C4") == 60 and sm.note_number("A0") == 21
  ranges = sm.even_velocity_ranges(range(1, 17))
  assert ranges[1][0] == 1 and ranges[16][1] == 127
  assert all(ranges[k][1] + 1 == ranges[k + 1][0] for k in range(1, 16))
  assert sm.even_velocity_ranges([10]) == {10: (1, 127)}


def test_folders_of_both_schemes(tonejs, tmp_path):
  samples = sm.SampleSet.from_folder(tonejs)
  assert samples.notes() == (57, 60, 64)
  folder = tmp_path / "salamander"
  folder.mkdir()
  for name in ("A0v1", "A0v2", "C1v2"):
    _tone(folder / f"{name}.ogg", 100.0, seconds=0.2, rate=48000)
  _tone(folder / "rel1.ogg", 100.0, seconds=0.2, rate=48000)
  notes = sm.SampleSet.from_folder(folder)
  assert [(z.note, z.velocity_layer) for z in notes.zones] == [(21, 1), (21, 2), (24, 2)]
  assert notes.velocity_ranges == {1: (1, 63), 2: (64, 127)}
  assert sm.SampleSet.from_folder(folder, "release").notes() == (21,)
  assert sm.from_folders("s", folder, "acoustic_piano").releases.notes() == (21,)


def test_a_note_between_recordings_is_shifted_to_its_pitch(tonejs):
  sampler = sm.from_folders("violin", tonejs, "violin")
  for pitch in (58, 59, 61, 62, 63, 66):  # from A3 up, C4 down, C4 up, C4 up (tie), E4 down, up
    audio = sampler.render(_material([Note(pitch, 0.0, 1.0, 100)]), 1.0)
    f = _f0(audio[2000:40000], _hz(pitch) * 0.9, _hz(pitch) * 1.1)
    assert abs(1200 * np.log2(f / _hz(pitch))) < 3, (pitch, f)
  assert sampler.samples.nearest_note(62) == 60  # a tie goes to the recording below


def test_velocity_picks_the_layer_and_the_level(tmp_path):
  folder = tmp_path / "piano"
  folder.mkdir()
  # Layer 2 is recorded 11 dB louder, about as much as (127/63)**1.5 of the gain rule.
  _tone(folder / "C4v1.ogg", _hz(60), partials=(1.0,), amplitude=0.14, rate=48000, decay=1.0)
  _tone(folder / "C4v2.ogg", _hz(60), partials=(1.0, 0.0, 0.8), amplitude=0.5, rate=48000,
        decay=1.0)
  sampler = sm.from_folders("piano", folder, "acoustic_piano")

  def play(velocity):
    return sampler.render(_material([Note(60, 0.0, 0.5, velocity)]), 0.5)[1000:]

  third = _hz(60) * 3
  soft, loud = play(30), play(120)
  assert _band_level(soft, third) < 0.01 * _band_level(soft, _hz(60))  # layer 1: a sine
  assert _band_level(loud, third) > 0.5 * _band_level(loud, _hz(60))  # layer 2: bright
  levels = [_rms_db(play(v)) for v in (10, 40, 63, 64, 100, 127)]
  assert all(b > a for a, b in zip(levels, levels[1:])), levels


def test_release_fades_out_and_plays_the_release_sample(tmp_path):
  folder = tmp_path / "piano"
  folder.mkdir()
  _tone(folder / "C4v1.ogg", _hz(60), seconds=3.0, rate=48000)  # sustains, no decay
  sampler = sm.from_folders("piano", folder, "acoustic_piano")
  hold, release = 1.0, sampler.release_seconds
  assert 0.08 <= release <= 0.3
  audio = sampler.render(_material([Note(60, 0.0, hold, 100)]), 2.0)
  before = _rms_db(audio[int((hold - 0.05) * SR):int(hold * SR)])
  after = _rms_db(audio[int((hold + release - 0.02) * SR):int((hold + release) * SR)])
  assert before - after > 40
  assert not audio[int((hold + release) * SR) + 1:].any()

  _tone(folder / "rel40.ogg", 3000.0, seconds=1.5, partials=(1.0,), rate=48000, lead=0.0,
        decay=0.15)
  with_release = sm.from_folders("piano", folder, "acoustic_piano", release_level_db=-20.0)
  assert with_release.releases.notes() == (60,)
  audio2 = with_release.render(_material([Note(60, 0.0, hold, 100)]), 2.0)
  np.testing.assert_array_equal(audio2[:int(hold * SR)], audio[:int(hold * SR)])
  tail = audio2[int(hold * SR):int((hold + 0.25) * SR)]
  assert _band_level(tail, 3000.0) > 30 * _band_level(tail, 2000.0)
  assert _rms_db(audio2[int((hold + release) * SR):int((hold + 0.28) * SR)]) > -60
  shot = with_release.one_shot(60, 100, 2.0)  # held so that the release sample ends in time
  assert np.abs(shot[-100:]).max() < 1e-4 * np.abs(shot).max()
  assert _band_level(shot[int(0.8 * SR):], 3000.0) > 10 * _band_level(shot[int(0.8 * SR):], 2000.0)


def test_repeated_notes_cycle_the_round_robins(tmp_path):
  folder = tmp_path / "rr"
  folder.mkdir()
  _tone(folder / "C4_rr1.mp3", _hz(60), partials=(1.0, 0.0))
  _tone(folder / "C4_rr2.mp3", _hz(60), partials=(1.0, 0.7))
  sampler = sm.from_folders("rr", folder, "violin")
  notes = [Note(60, 0.5 * i, 0.5 * i + 0.3, 90) for i in range(4)]
  audio = sampler.render(_material(notes), 2.0)
  bright = []
  for i in range(4):
    part = audio[int((0.5 * i + 0.02) * SR):int((0.5 * i + 0.28) * SR)]
    bright.append(_band_level(part, 2 * _hz(60)) > 0.3 * _band_level(part, _hz(60)))
  assert bright == [False, True, False, True]


def test_a_subset_never_reads_a_held_out_recording(tonejs):
  full = sm.from_folders("violin", tonejs, "violin")
  train = full.subset([57, 64])
  assert train.samples.notes() == (57, 64)
  (tonejs / "C4.mp3").write_bytes(b"held out: reading this file fails")
  for pitch in (59, 60, 61, 62):
    audio = train.render(_material([Note(pitch, 0.0, 0.6, 90)]), 0.6)
    f = _f0(audio[2000:], _hz(pitch) * 0.9, _hz(pitch) * 1.1)
    assert abs(1200 * np.log2(f / _hz(pitch))) < 3
  with pytest.raises(Exception):  # the held-out file really is unreadable
    full.render(_material([Note(60, 0.0, 0.6, 90)]), 0.6)


def test_release_samples_follow_the_subset(tmp_path):
  folder = tmp_path / "piano"
  folder.mkdir()
  for name in ("A3v1", "C4v1", "Ds4v1"):
    _tone(folder / f"{name}.ogg", _hz(sm.parse_name(name)[1]), seconds=0.3, rate=48000)
  for key in range(36, 44):
    _tone(folder / f"rel{key}.ogg", 100.0, seconds=0.1, rate=48000)
  sampler = sm.from_folders("piano", folder, "acoustic_piano")
  held_out = sampler.subset([60])
  train = sampler.subset([57, 63])
  assert held_out.releases.notes() == (59, 60, 61)
  assert set(train.releases.notes()) == set(range(56, 64)) - {59, 60, 61}


def test_make_material_keeps_to_the_sampler_range(tmp_path):
  folder = tmp_path / "bass"
  folder.mkdir()
  for name in ("E2", "G2", "C3"):
    _tone(folder / f"{name}.mp3", _hz(sm.note_number(name)), seconds=0.3)
  sampler = sm.from_folders("bass", folder, "synth_bass")
  sounds = sampler.sounds()
  assert sounds == Sounds(frozenset({38, 39}), frozenset(), (38, 50))
  for seed in range(8):
    material = make_material("synth_bass", np.random.default_rng(seed), 4.0, sounds)
    assert material.notes and all(38 <= n.pitch <= 50 for n in material.notes)
  # The range is also cut to the class's: violin plays nothing below G3 (55).
  low = sm.from_folders("low", folder, "violin")
  with pytest.raises(ValueError):
    low.sounds()
  with pytest.raises(ValueError):
    make_material("synth_bass", np.random.default_rng(0), 4.0,
                  Sounds(frozenset({38}), frozenset(), (90, 100)))


def test_exact_length_dtype_determinism_and_controls(tonejs):
  sampler = sm.from_folders("violin", tonejs, "violin")
  notes = [Note(57 + i, 0.3 * i, 0.3 * i + 0.5, 60 + 10 * i) for i in range(6)]
  notes.append(Note(62, 1.0, 1.6, 90))  # runs past the end of the clip
  material = _material(notes, [Control(0.0, 1, 40)])
  audio = sampler.render(material, 1.2345)
  assert audio.dtype == np.float32 and audio.shape == (int(round(1.2345 * SR)),)
  again = sm.from_folders("violin", tonejs, "violin").render(material, 1.2345)
  np.testing.assert_array_equal(audio, again)
  assert np.abs(audio).max() > 0.05
  assert sampler.render(_material([]), 0.5).shape == (int(0.5 * SR),)

  one = [Note(60, 0.0, 1.0, 100)]
  plain = sampler.render(_material(one), 1.0)
  quieter = sampler.render(_material(one, [Control(0.0, 11, 64), Control(0.0, 7, 127)]), 1.0)
  ratio = _rms_db(quieter[2000:]) - _rms_db(plain[2000:])
  assert abs(ratio - 40 * np.log10(64 / 127)) < 0.2


def test_one_shot_starts_at_the_onset_and_ends_clean(tonejs):
  sampler = sm.from_folders("violin", tonejs, "violin")
  shot = sampler.one_shot(60, 100, 1.0)
  assert shot.dtype == np.float32 and shot.shape == (SR,)
  onset = np.argmax(np.abs(shot) > 0.1 * np.abs(shot).max())
  assert onset < 0.01 * SR  # the file's 50 ms of silence (and the MP3 encoder delay) are gone
  assert np.abs(shot[-100:]).max() < 1e-4 * np.abs(shot).max()
