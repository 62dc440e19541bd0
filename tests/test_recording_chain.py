"""data_prep.recording_chain: real DSP, measured; every stage does what its description says."""

import json

import numpy as np
import pytest
from scipy import signal

from data_prep import recording_chain
from jaxeq.eq import EQ

SR = 44100


def _only(stage, **overrides):
  """The default config with only `stage` switched on (always), its fields overridden."""
  config = recording_chain.default_config()
  for name in recording_chain.STAGES:
    config[name].probability = 1.0 if name == stage else 0.0
  for key, value in overrides.items():
    config[stage][key] = value
  return config


def _all_on():
  config = recording_chain.default_config()
  for name in recording_chain.STAGES:
    config[name].probability = 1.0
  return config


def _music(seconds, seed=0):
  """A tonal clip with notes, an attack and decay and a little noise: something to record."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * SR)) / SR
  x = sum(np.sin(2 * np.pi * 196 * k * t + k) / k for k in range(1, 12))
  x = x * (0.3 + 0.7 * np.exp(-(t % 0.5) / 0.15)) + 0.02 * rng.standard_normal(len(t))
  return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def _snr_db(reference, test):
  return 10 * np.log10(np.sum(reference ** 2) / np.sum((test - reference) ** 2))


def test_deterministic_and_seed_dependent():
  x, config = _music(2.0), _all_on()
  a, da = recording_chain.apply_chain(x, SR, np.random.default_rng(7), config)
  b, db = recording_chain.apply_chain(x, SR, np.random.default_rng(7), config)
  c, dc = recording_chain.apply_chain(x, SR, np.random.default_rng(8), config)
  np.testing.assert_array_equal(a, b)
  assert json.dumps(da) == json.dumps(db)
  assert not np.allclose(a, c) and json.dumps(da) != json.dumps(dc)
  assert set(da) <= set(recording_chain.STAGES)


@pytest.mark.parametrize("seconds,seeds", [(0.05, range(6)), (2.0, range(3)), (6.0, range(1))])
def test_length_dtype_finite_and_peak(seconds, seeds):
  x = _music(seconds)
  for seed in seeds:
    y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(seed), _all_on())
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    np.testing.assert_allclose(np.max(np.abs(y)), np.max(np.abs(x)), rtol=1e-5)
    json.dumps(description)


def test_silence_stays_silent():
  x = np.zeros(SR // 2, np.float32)
  for seed in range(3):
    y, _ = recording_chain.apply_chain(x, SR, np.random.default_rng(seed), _all_on())
    assert y.shape == x.shape and np.all(np.isfinite(y)) and np.max(np.abs(y)) < 1e-6


def test_every_stage_off_is_identity():
  config = recording_chain.default_config()
  for name in recording_chain.STAGES:
    config[name].probability = 0.0
  x = _music(0.5) * np.float32(0.37)
  y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(0), config)
  np.testing.assert_array_equal(y, x)
  assert description == {}


def test_switching_a_stage_off_keeps_the_others_draws():
  x, config = _music(1.0), _all_on()
  _, full = recording_chain.apply_chain(x, SR, np.random.default_rng(3), config)
  config.room.probability = 0.0
  _, without_room = recording_chain.apply_chain(x, SR, np.random.default_rng(3), config)
  assert "room" not in without_room
  assert {k: v for k, v in full.items() if k != "room"} == without_room


def _schroeder_rt60(h, sample_rate):
  """T20 of the reverberant tail, from Schroeder backward integration, extrapolated to 60 dB.

  The tail starts 5 ms after the direct sound, which dominates a dry room's energy.
  """
  h = h[int(np.argmax(np.abs(h))) + sample_rate // 200:]
  edc = np.cumsum((h.astype(np.float64) ** 2)[::-1])[::-1]
  edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
  start, stop = np.argmax(edc_db <= -5), np.argmax(edc_db <= -25)
  t = np.arange(start, stop) / sample_rate
  slope = np.polyfit(t, edc_db[start:stop], 1)[0]
  return -60 / slope


def test_room_impulse_decays_at_the_drawn_rt60():
  x = np.zeros(3 * SR, np.float32)
  x[0] = 1.0
  config = _only("room", shoebox_fraction=1.0, wet=(1.0, 1.0))
  rt60s = []
  for seed in range(6):
    y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(seed), config)
    room = description["room"]
    assert room["kind"] == "shoebox"
    assert 0.3 <= room["mic_distance_m"] <= 4.0
    assert 3.0 <= min(room["dims_m"]) and max(room["dims_m"]) <= 15.0
    measured = _schroeder_rt60(y, SR)
    rt60s.append(room["rt60_s"])
    assert room["rt60_s"] / 1.5 < measured < room["rt60_s"] * 1.5, (room, measured)
  assert max(rt60s) / min(rt60s) > 1.5  # the RT60 is drawn, not fixed


def test_freeverb_room_adds_a_tail():
  x = np.zeros(SR, np.float32)
  x[0] = 1.0
  y, description = recording_chain.apply_chain(
      x, SR, np.random.default_rng(0), _only("room", shoebox_fraction=0.0))
  assert description["room"]["kind"] == "freeverb"
  assert np.sum(y[SR // 10:] ** 2) > 1e-4 * np.sum(y ** 2)


def test_noise_at_the_drawn_snr():
  t = np.arange(2 * SR) / SR
  x = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
  kinds = set()
  for seed in range(8):
    y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(seed),
                                                  _only("noise"))
    noise = description["noise"]
    kinds.add(noise["kind"])
    gain = np.dot(y, x) / np.dot(x, x)  # undo the output's peak normalisation
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y / gain - x) ** 2))
    assert abs(measured - noise["snr_db"]) < 1.5, (noise, measured)
  assert len(kinds) >= 3


def _drums(seconds=3.0, seed=0):
  """Kick- and tom-like hits: decaying low sines with a noisy click, at varied velocities."""
  rng = np.random.default_rng(seed)
  x = np.zeros(int(seconds * SR))
  t = np.arange(int(0.4 * SR)) / SR
  for i, start in enumerate(range(0, len(x) - len(t), SR // 4)):
    freq = (60.0, 110.0, 160.0)[i % 3]
    hit = np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.12)
    hit += 0.3 * rng.standard_normal(len(t)) * np.exp(-t / 0.005)
    x[start:start + len(t)] += rng.uniform(0.4, 1.0) * hit
  return (0.9 * x / np.max(np.abs(x))).astype(np.float32)


def _crest_db(x):
  return 20 * np.log10(np.max(np.abs(x)) / np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_compression_lowers_the_crest_factor():
  x = _drums()
  for seed in range(6):
    y, description = recording_chain.apply_chain(
        x, SR, np.random.default_rng(seed), _only("compression", limiter_probability=0.0))
    assert "limiter" not in description["compression"]
    assert _crest_db(y) < _crest_db(x) - 0.3, (description, _crest_db(x), _crest_db(y))
  y, description = recording_chain.apply_chain(
      x, SR, np.random.default_rng(0), _only("compression", limiter_probability=1.0))
  assert "limiter" in description["compression"] and _crest_db(y) < _crest_db(x) - 1.0


def test_saturation_keeps_length_and_changes_the_waveform():
  x = _music(1.0)
  kinds = set()
  for seed in range(6):
    y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(seed),
                                                 _only("saturation"))
    kinds.add(description["saturation"]["kind"])
    assert y.shape == x.shape and np.all(np.isfinite(y))
  assert kinds == {"clipping", "distortion"}


def _band_energy(x, lo, hi):
  freqs, power = signal.welch(x.astype(np.float64), SR, nperseg=4096)
  return np.sum(power[(freqs >= lo) & (freqs < hi)])


def test_lowpass_removes_energy_above_its_cutoff():
  x = (0.3 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
  config = _only("band_limit", highpass_probability=0.0, lowpass_probability=1.0,
                 telephone_probability=0.0, lowpass_hz=(3000.0, 9000.0),
                 slopes_db_per_octave=(24,))
  for seed in range(4):
    y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(seed), config)
    cutoff = description["band_limit"]["lowpass"]["cutoff_hz"]
    # Above twice the cutoff, relative to the pass band (so the output's level is no matter).
    ratio_in = _band_energy(x, 2 * cutoff, SR / 2) / _band_energy(x, 20, cutoff / 2)
    ratio_out = _band_energy(y, 2 * cutoff, SR / 2) / _band_energy(y, 20, cutoff / 2)
    assert 10 * np.log10(ratio_in / ratio_out) > 20, (cutoff, ratio_in, ratio_out)


def test_highpass_removes_energy_below_its_cutoff():
  x = (0.3 * np.random.default_rng(1).standard_normal(4 * SR)).astype(np.float32)
  config = _only("band_limit", highpass_probability=1.0, lowpass_probability=0.0,
                 telephone_probability=0.0, highpass_hz=(150.0, 200.0),
                 slopes_db_per_octave=(24,))
  y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(0), config)
  cutoff = description["band_limit"]["highpass"]["cutoff_hz"]
  ratio_in = _band_energy(x, 1, cutoff / 2) / _band_energy(x, 2 * cutoff, 10000)
  ratio_out = _band_energy(y, 1, cutoff / 2) / _band_energy(y, 2 * cutoff, 10000)
  assert 10 * np.log10(ratio_in / ratio_out) > 20


@pytest.mark.parametrize("kind", ["mp3", "vorbis", "mp3_low"])
def test_codec_round_trip_is_close_lossy_and_aligned(kind):
  x = _music(2.0)
  kinds = {"mp3": 0.0, "vorbis": 0.0, "mp3_low": 0.0}
  kinds[kind] = 1.0
  y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(0),
                                                _only("codec", kinds=kinds))
  assert description["codec"]["kind"] == kind
  assert 10 < _snr_db(x, y) and not np.allclose(x, y, atol=1e-5)
  corr = signal.correlate(y.astype(np.float64), x.astype(np.float64), method="fft")
  assert abs(int(np.argmax(corr)) - (len(x) - 1)) <= 2


def test_codec_survives_a_one_shot():
  x = _music(0.05)
  for kind in ("mp3", "vorbis", "mp3_low"):
    kinds = {"mp3": 0.0, "vorbis": 0.0, "mp3_low": 0.0}
    kinds[kind] = 1.0
    y, _ = recording_chain.apply_chain(x, SR, np.random.default_rng(0),
                                       _only("codec", kinds=kinds))
    assert y.shape == x.shape and np.all(np.isfinite(y)) and np.any(y)


def test_eq_applies_the_described_curve():
  x = (0.1 * np.random.default_rng(2).standard_normal(6 * SR)).astype(np.float32)
  for seed in range(3):
    y, description = recording_chain.apply_chain(x, SR, np.random.default_rng(seed), _only("eq"))
    eq = EQ.from_dict(description["eq"])
    freqs, p_in = signal.welch(x.astype(np.float64), SR, nperseg=8192)
    _, p_out = signal.welch(y.astype(np.float64), SR, nperseg=8192)
    band = (freqs > 100) & (freqs < 15000)
    measured = 10 * np.log10(p_out[band] / p_in[band])
    expected = eq.response_db(freqs[band], SR)
    error = (measured - measured.mean()) - (expected - expected.mean())
    assert np.mean(np.abs(error)) < 0.5, (description, np.mean(np.abs(error)))
