"""Real drum kits as sound sources (data_prep.drumkits): a small Hydrogen kit written here, the
instrument names of the real Hydrogen kits, a SoundFont kit played through FluidSynth, and a
whole kit on one track through a room (data_prep.kit_tracks)."""

import numpy as np
import pytest
import soundfile as sf

from data_prep import drumkits, synth
from data_prep.drumkits import HydrogenKit, SoundFontKit, classify_instrument
from data_prep.material import (DRUM_KITS, Material, Note, Sounds, make_kit_material,
                                make_material)
from data_prep.sound_source import SAMPLE_RATE

_NS = "http://www.hydrogen-music.org/drumkit"


def _tone(path, hz, seconds, rate=SAMPLE_RATE, stereo=False):
  t = np.arange(int(seconds * rate)) / rate
  audio = (0.5 * np.sin(2 * np.pi * hz * t) * np.exp(-t * 2)).astype(np.float32)
  sf.write(path, np.stack([audio, audio], 1) if stereo else audio, rate)
  return path.name


def _layer(filename, low, high, gain=1.0, pitch=0.0):
  return (f"<layer><filename>{filename}</filename><min>{low}</min><max>{high}</max>"
          f"<gain>{gain}</gain><pitch>{pitch}</pitch></layer>")


def _instrument(name, layers, volume=1.0):
  return (f"<instrument><id>0</id><name>{name}</name><volume>{volume}</volume><gain>1</gain>"
          f"{''.join(layers)}</instrument>")


@pytest.fixture(scope="module")
def kit_dir(tmp_path_factory):
  """A kit in Hydrogen's format: velocity layers told apart by their frequency."""
  d = tmp_path_factory.mktemp("kit")
  instruments = [
      _instrument("Kick", [_layer(_tone(d / "k_soft.wav", 100, 0.5), 0, 0.5),
                           _layer(_tone(d / "k_loud.wav", 200, 0.5, stereo=True), 0.5, 1)]),
      _instrument("Snare", [_layer(_tone(d / "s_a.wav", 300, 0.3), 0, 1),
                            _layer(_tone(d / "s_b.wav", 500, 0.3), 0, 1)]),
      _instrument("Closed HH", [_layer(_tone(d / "hc_soft.wav", 2000, 0.05), 0, 0.5),
                                _layer(_tone(d / "hc_loud.wav", 2500, 0.05), 0.5, 1)]),
      _instrument("Open HH", [_layer(_tone(d / "ho.wav", 3000, 2.0), 0, 1)]),
      _instrument("Tom Low", [_layer(_tone(d / "t.wav", 220, 0.5, rate=48000), 0, 1, pitch=12)]),
      _instrument("Hand Clap", [_layer(_tone(d / "clap.wav", 1000, 0.1), 0, 1)]),
      _instrument("Missing", [_layer("nowhere.wav", 0, 1)]),
  ]
  (d / "drumkit.xml").write_text(
      f'<?xml version="1.0"?>\n<drumkit_info xmlns="{_NS}"><name>Tiny</name>'
      f"<instrumentList>{''.join(instruments)}</instrumentList></drumkit_info>")
  return d


def _material(*notes):
  return Material(notes=tuple(Note(*n) for n in notes), controls=(), program=0, is_drum=True,
                  description="test", tempo_bpm=120.0, articulation="normal", velocity=100)


def _peak_hz(audio, start=0.0, stop=None):
  part = audio[int(start * SAMPLE_RATE):None if stop is None else int(stop * SAMPLE_RATE)]
  spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
  return np.fft.rfftfreq(len(part), 1 / SAMPLE_RATE)[np.argmax(spectrum)]


def _rms(audio, start, stop):
  part = audio[int(start * SAMPLE_RATE):int(stop * SAMPLE_RATE)]
  return float(np.sqrt(np.mean(part.astype(np.float64) ** 2)))


def test_the_kit_is_parsed_and_its_instruments_get_classes_and_gm_keys(kit_dir):
  kit = HydrogenKit(kit_dir)
  assert kit.name == "hydrogen:Tiny"
  assert kit.sounds() == Sounds(frozenset(), frozenset({36, 38, 42, 45, 46}))
  assert [(key, cls, name, layers) for key, cls, name, layers in kit.table()] == [
      (36, "kick", "Kick", 2), (38, "snare", "Snare", 1), (42, "hihat", "Closed HH", 2),
      (45, "toms", "Tom Low", 1), (46, "hihat", "Open HH", 1)]
  assert dict(kit.unused) == {"Hand Clap": "no drum class", "Missing": "no samples"}
  kick = kit.by_key[36].components[0]
  assert [(layer.low, layer.high, layer.path.name) for layer in kick] == [
      (0.0, 0.5, "k_soft.wav"), (0.5, 1.0, "k_loud.wav")]
  assert kit.by_key[45].components[0][0].pitch == 12


def test_the_old_format_one_file_an_instrument(tmp_path):
  _tone(tmp_path / "bd.flac", 80, 0.3)
  (tmp_path / "drumkit.xml").write_text(
      "<drumkit_info><name>Old</name><instrumentList><instrument><id>0</id>"
      "<filename>bd.flac</filename><name>c3 - bass drum 1</name><volume>0.9</volume>"
      "</instrument></instrumentList></drumkit_info>")
  kit = HydrogenKit(tmp_path)
  assert kit.sounds().drum_notes == {36}
  audio = kit.render(_material((36, 0.1, 0.2, 127)), 0.5)
  assert abs(_peak_hz(audio, 0.1, 0.4) - 80) < 5
  assert np.isclose(np.abs(audio).max(), 0.9 * 0.5, rtol=0.02)  # volume × velocity 127/127


# Real instrument names of the Debian hydrogen-drumkits kits (and what they are): the mapping.
REAL_NAMES = {
    "Kick": ("kick", "kick"), "BassDrum": ("kick", "kick"),
    "Kick (Tama Superstar 22\")": ("kick", "kick"), "c3 - bass drum 1": ("kick", "kick"),
    "VariBreaks Kick 2": ("kick", "kick"), "Pearl Kick": ("kick", "kick"),
    "Snare Jazz": ("snare", "snare"), "Snare1": ("snare", "snare"),
    "Pearl Snare Rimshot": ("snare", "rimshot"),
    "Snare Rimshot (Pearl Free Floating Maple 14x3.5)": ("snare", "rimshot"),
    "Stick": ("snare", "side_stick"), "Pearl Side Stick": ("snare", "side_stick"),
    "Rim Click (Pearl Free Floating Maple 14x3.5)": ("snare", "side_stick"),
    "c#3 - stick": ("snare", "side_stick"),
    "Closed HH": ("hihat", "hihat_closed"), "Hi Hat Closed": ("hihat", "hihat_closed"),
    "VariBreaks Hat 1 Cl": ("hihat", "hihat_closed"), "Hat Closed Bs": ("hihat", "hihat_closed"),
    "f#3 - hi-hat closed": ("hihat", "hihat_closed"),
    "Pedal HH": ("hihat", "hihat_pedal"), "Sabian Hat Pedal": ("hihat", "hihat_pedal"),
    "VariBreaks Hat 1 Pd": ("hihat", "hihat_pedal"),
    "Open HH": ("hihat", "hihat_open"), "Hi Hat Opened": ("hihat", "hihat_open"),
    "Hat Op Dirty": ("hihat", "hihat_open"),
    "Hi-Hat Open (Paiste Alpha Metal edge 14\")": ("hihat", "hihat_open"),
    "Sabian Hat Semi-Open": ("hihat", "hihat_half_open"),
    "Tom Low": ("toms", "tom"), "Floor Tom": ("toms", "tom"), "Pearl Tom 1": ("toms", "tom"),
    "tomhi3": ("toms", "tom"), "c4 - middle tom": ("toms", "tom"),
    "Crash": ("cymbals", "crash"), "crash16inch": ("cymbals", "crash"),
    "Crash Left": ("cymbals", "crash"), "Sabian Crash Flink": ("cymbals", "crash"),
    "Crash/Ride (Paiste Rude Crash/Ride 18\")": ("cymbals", "crash_ride"),
    "Ride Jazz": ("cymbals", "ride"), "ride-crash20inch": ("cymbals", "ride"),
    "Ride Bow (Custom, Zagrebin 22\")": ("cymbals", "ride"),
    "d#4 - cymbal 1": ("cymbals", "ride"), "e4 - cymbal 2": ("cymbals", "china"),
    "Ride Bell": ("cymbals", "ride_bell"), "ride-cup": ("cymbals", "ride_bell"),
    "Paiste Bell": ("cymbals", "ride_bell"), "China (Paiste Alpha 18\")": ("cymbals", "china"),
    "Zildjian Splash": ("cymbals", "splash"),
    # of no drum class, or strokes no pattern plays
    "Hand Clap": None, "Cowbell": None, "Conga 1": None, "Djembe1 Slap": None,
    "Cajon Thump": None, "Tambourine (Pearl PTM-10GH)": None, "Maraca": None, "FX": None,
    "Zap 1": None, "Click": None, "VariBreaks Drum 1": None, "Snare Roll": None,
    "Sabian Hat Swish": None, "Sabian Hat Choke": None, "Zildjian Splash Choke": None,
    "Hi Hat Free": None, "Side HH": None, "Hat Ring 1": None, "redo super opaco": None,
    "Sample: beats_01-10.flac": None, "17": None, "": None,
}


def test_real_kit_names_map_to_their_classes():
  wrong = {name: (classify_instrument(name), want) for name, want in REAL_NAMES.items()
           if classify_instrument(name) != want}
  assert not wrong


def test_toms_are_spread_over_the_gm_tom_keys_from_low_to_high():
  names = ["Pearl Tom Floor", "Pearl Tom 2", "Pearl Tom 1"]
  layer = drumkits.Layer(None, 0, 1, 1, 0)
  instruments = [drumkits.Instrument(n, 1.0, ((layer,),)) for n in names]
  by_key, _ = drumkits.assign_keys(instruments)
  assert {k: i.name for k, i in by_key.items()} == {
      41: "Pearl Tom Floor", 45: "Pearl Tom 2", 50: "Pearl Tom 1"}
  seconds = [drumkits.Instrument(n, 1.0, ((layer,),)) for n in ("Kick 1", "Kick 2", "Kick 3")]
  by_key, unused = drumkits.assign_keys(seconds)
  assert {k: i.name for k, i in by_key.items()} == {36: "Kick 1", 35: "Kick 2"}
  assert unused == [("Kick 3", "no GM key left")]


def test_velocity_picks_the_layer_and_loud_is_louder(kit_dir):
  kit = HydrogenKit(kit_dir)
  soft = kit.render(_material((36, 0.0, 0.1, 40)), 0.5)
  loud = kit.render(_material((36, 0.0, 0.1, 120)), 0.5)
  assert abs(_peak_hz(soft) - 100) < 5 and abs(_peak_hz(loud) - 200) < 5
  assert _rms(loud, 0, 0.5) > 2 * _rms(soft, 0, 0.5)


def test_layers_of_one_range_take_turns(kit_dir):
  kit = HydrogenKit(kit_dir)
  audio = kit.render(_material((38, 0.0, 0.1, 100), (38, 0.5, 0.6, 100), (38, 1.0, 1.1, 100)), 1.5)
  assert [round(_peak_hz(audio, t, t + 0.25), -1) for t in (0.0, 0.5, 1.0)] == [300, 500, 300]
  again = kit.render(_material((38, 0.0, 0.1, 100)), 0.3)  # each clip starts with the first
  assert abs(_peak_hz(again) - 300) < 5


def test_layer_pitch_resamples_and_other_sample_rates_are_converted(kit_dir):
  audio = HydrogenKit(kit_dir).render(_material((45, 0.0, 0.1, 100)), 0.5)
  assert abs(_peak_hz(audio, 0, 0.2) - 440) < 8  # a 48 kHz recording at 220 Hz, an octave up


def test_length_dtype_determinism_and_missing_keys(kit_dir):
  material = make_material("snare", np.random.default_rng(3), 2.0, HydrogenKit(kit_dir).sounds())
  first = HydrogenKit(kit_dir).render(material, 2.0)
  assert first.dtype == np.float32 and first.shape == (2 * SAMPLE_RATE,)
  assert np.array_equal(first, HydrogenKit(kit_dir).render(material, 2.0))
  assert np.all(np.isfinite(first)) and _rms(first, 0, 2.0) > 1e-3
  late = HydrogenKit(kit_dir).render(_material((46, 0.9, 1.0, 100), (36, 5.0, 5.1, 100)), 1.0)
  assert late.shape == (SAMPLE_RATE,)  # rings past the clip's end, starts after it: cut
  with pytest.raises(synth.SetupError, match="no drum key 49"):
    HydrogenKit(kit_dir).render(_material((49, 0.0, 0.1, 100)), 1.0)


def test_a_closed_hi_hat_chokes_the_open_one(kit_dir):
  kit = HydrogenKit(kit_dir)
  ringing = kit.render(_material((46, 0.0, 0.1, 100)), 1.0)
  choked = kit.render(_material((46, 0.0, 0.1, 100), (42, 0.3, 0.4, 100)), 1.0)
  assert np.array_equal(ringing[:int(0.3 * SAMPLE_RATE)], choked[:int(0.3 * SAMPLE_RATE)])
  assert _rms(ringing, 0.4, 1.0) > 0.05
  assert _rms(choked, 0.3 + drumkits.CHOKE_SECONDS + 0.06, 1.0) == 0.0  # the closed hat is 50 ms


def test_a_kit_without_drum_instruments_has_no_sounds(tmp_path):
  _tone(tmp_path / "djembe.wav", 200, 0.2)
  (tmp_path / "drumkit.xml").write_text(
      "<drumkit_info><name>Hands</name><instrumentList>"
      + _instrument("Djembe1 Slap", [_layer("djembe.wav", 0, 1)])
      + "</instrumentList></drumkit_info>")
  kit = HydrogenKit(tmp_path)
  assert kit.sounds().drum_notes == frozenset()
  with pytest.raises(ValueError):
    make_material("kick", np.random.default_rng(0), 1.0, kit.sounds())


def test_drum_patterns_play_only_the_keys_a_kit_has():
  for class_name, keys in (("hihat", {42, 46}), ("hihat", {42}), ("cymbals", {49}),
                           ("cymbals", {51, 53}), ("toms", {45})):
    for seed in range(6):
      material = make_material(class_name, np.random.default_rng(seed), 4.0,
                               Sounds(frozenset(), frozenset(keys)))
      assert {n.pitch for n in material.notes} <= keys, (class_name, keys, seed)
  assert set(DRUM_KITS) == {0, 8, 16, 24, 25, 32, 40, 48}
  kits = {make_material(name, np.random.default_rng(s), 1.0).program
          for name in ("hihat", "toms", "cymbals") for s in range(60)}
  assert 48 not in kits and {24, 25, 40} <= kits  # the orchestra kit's timpani are not toms


def test_soundfont_kit_plays_fluidr3_standard_kit_the_one_fluidsynth_way():
  path = synth.find_bank("FluidR3_GM")
  kit = SoundFontKit(path)
  assert (kit.bank_number, kit.program) == (128, 0) and kit.name.endswith(":Standard")
  keys = kit.sounds().drum_notes
  assert {35, 36, 37, 38, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 55, 57,
          59} <= keys
  material = make_material("snare", np.random.default_rng(0), 2.0, kit.sounds())
  audio = kit.render(material, 2.0)
  assert audio.dtype == np.float32 and audio.shape == (2 * SAMPLE_RATE,)
  assert _rms(audio, 0, 2.0) > 1e-4 and np.array_equal(audio, kit.render(material, 2.0))
  standard = Material(**{**material.__dict__, "program": 0})
  by_bank, program = synth.Renderer().render(standard, "FluidR3_GM", 2.0)
  assert program == 0 and np.array_equal(audio, by_bank)
  with pytest.raises(synth.SetupError, match="no drum key 60"):
    kit.render(_material((60, 0.0, 0.1, 100)), 1.0)
  with pytest.raises(synth.SetupError, match="no preset"):
    SoundFontKit(path, preset=(128, 99))


def test_a_kit_material_plays_several_pieces_at_one_tempo_of_what_the_kit_has(kit_dir):
  sounds = HydrogenKit(kit_dir).sounds()  # kick, snare, closed and open hats, a tom
  for seed in range(8):
    material = make_kit_material(np.random.default_rng(seed), 4.0, sounds)
    keys = {n.pitch for n in material.notes}
    assert keys <= sounds.drum_notes and {36, 38} <= keys, seed  # kick and snare always
    assert material.is_drum and material.description.startswith("drum kit: ")
    assert material == make_kit_material(np.random.default_rng(seed), 4.0, sounds)
  with pytest.raises(ValueError, match="neither a kick nor a snare"):
    make_kit_material(np.random.default_rng(0), 2.0, Sounds(frozenset(), frozenset({42, 46})))


def _band(audio, low, high):
  from scipy import signal
  sos = signal.butter(4, [low, high], btype="band", fs=SAMPLE_RATE, output="sos")
  return signal.sosfilt(sos, audio.astype(np.float64))


def test_a_real_kit_plays_as_one_track_through_a_room():
  from data_prep import kit_tracks, recording_chain, recordings
  kit = recordings.open_source("hydrogen/ColomboAcousticDrumkit")
  track, material, room = kit_tracks.render_kit_track(kit, 4.0, np.random.default_rng(1))
  assert track.dtype == np.float32 and track.shape == (4 * SAMPLE_RATE,)
  assert np.all(np.isfinite(track)) and 0.1 < np.max(np.abs(track)) <= kit_tracks.PEAK + 1e-6
  assert room["kind"] in ("shoebox", "freeverb")
  again, _, _ = kit_tracks.render_kit_track(kit, 4.0, np.random.default_rng(1))
  assert np.array_equal(track, again)
  onsets = {}
  for note in material.notes:
    onsets.setdefault(drumkits._class_of_key(note.pitch), []).append(note.start)
  assert {"kick", "snare", "hihat"} <= set(onsets)
  # The kick's low band and the hats' high band both sound, each loudest where its piece hits.
  low, high = _band(track, 30, 120), _band(track, 6000, 16000)
  total = np.mean(track.astype(np.float64) ** 2)
  assert np.mean(low ** 2) > 0.03 * total and np.mean(high ** 2) > 0.01 * total

  def after(band, times, seconds):
    return np.mean([np.mean(band[int(t * SAMPLE_RATE):int((t + seconds) * SAMPLE_RATE)] ** 2)
                    for t in times])

  assert after(low, onsets["kick"], 0.06) > 2 * np.mean(low ** 2)
  assert after(high, onsets["hihat"], 0.03) > 1.2 * np.mean(high ** 2)
  assert not np.array_equal(track, kit_tracks.render_kit_track(kit, 4.0,
                                                               np.random.default_rng(2))[0])
  config = recording_chain.default_config()
  assert kit_tracks.room_only(config).noise.probability == 0 and config.noise.probability > 0
