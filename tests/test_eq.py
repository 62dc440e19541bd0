"""The user-facing EQ value: responses, scipy sections, JSON and EqualizerAPO text."""

import json
import re
import warnings

import numpy as np
import pytest
from scipy import signal

import jaxeq
from jaxeq import EQ, Band

MIXED = EQ([Band("high_pass", 30, q=0.7), Band("low_shelf", 120, 4.5), Band("peak", 450, -3, 1.4),
            Band("notch", 3150, q=8), Band("high_shelf", 9000, 2.5), Band("low_pass", 18000)])


@pytest.mark.parametrize("rate", [8000, 44100, 192000])
def test_response_matches_scipy_sosfreqz_of_its_sections(rate):
  freqs = np.geomspace(20, 0.45 * rate, 300)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # 18 kHz is above 0.49 x 8 kHz
    sos = MIXED.to_sos(rate)
    got = MIXED.response_db(freqs, rate)
  assert sos.shape == (6, 6) and sos.dtype == np.float64
  _, h = signal.sosfreqz(sos, worN=freqs, fs=rate)
  want = 20 * np.log10(np.abs(h))
  ok = want > -60
  # Both in float64: the response a user reads (the EqualizerAPO text, the plots, the
  # quiet-band rule) is the filters' own.
  assert np.max(np.abs(got - want)[ok]) < 1e-6


def test_flat_eq_is_identity():
  assert np.allclose(EQ([]).response_db(jaxeq.FREQS, 44100), 0.0)
  np.testing.assert_array_equal(EQ([]).to_sos(44100), [[1, 0, 0, 1, 0, 0]])


def test_bands_above_nyquist_are_designed_below_it_with_a_warning():
  eq = EQ([Band("high_shelf", 16000, 6.0)])
  with pytest.warns(UserWarning, match="16000 Hz"):
    sos = eq.to_sos(8000)
  assert np.all(np.isfinite(sos))
  # The shelf lands near the top of the 8 kHz band, as a hardware EQ's clamped knob would.
  _, h = signal.sosfreqz(sos, worN=[100.0, 3990.0], fs=8000)
  db = 20 * np.log10(np.abs(h))
  assert abs(db[0]) < 0.1 and db[1] > 3.0


def test_json_round_trip_and_file_round_trip(tmp_path):
  assert EQ.from_json(MIXED.to_json()) == MIXED
  path = tmp_path / "eq.json"
  MIXED.save(path)
  assert EQ.load(path) == MIXED
  data = json.loads(path.read_text())
  assert data["bands"][1] == {"kind": "low_shelf", "freq_hz": 120.0, "gain_db": 4.5,
                              "q": pytest.approx(0.7071, abs=1e-4)}
  assert [p.name for p in tmp_path.iterdir()] == ["eq.json"]  # no temporary files left


@pytest.mark.parametrize("text, reason", [
    ("{", "invalid JSON"),
    ('{"bands": []}', "format"),
    ('{"format": "jaxeq.eq/1", "bands": [{"kind": "peak"}]}', "malformed bands"),
    ('{"format": "jaxeq.eq/1", "bands": [{"kind": "bell", "freq_hz": 1}]}', "bell"),
])
def test_bad_json_is_a_one_line_error_naming_the_file(tmp_path, text, reason):
  path = tmp_path / "bad.json"
  path.write_text(text)
  with pytest.raises(ValueError, match=reason) as info:
    EQ.load(path)
  assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, reason", [
    (dict(kind="bell", freq_hz=100), "kind 'bell'"),
    (dict(kind="peak", freq_hz=float("nan")), "freq_hz=nan"),
    (dict(kind="peak", freq_hz=-5), "freq_hz=-5.0 must be > 0"),
    (dict(kind="peak", freq_hz=100, gain_db=float("inf")), "gain_db=inf"),
    (dict(kind="peak", freq_hz=100, q=0), "q=0.0 must be > 0"),
    (dict(kind="peak", freq_hz="100"), "freq_hz='100'"),
])
def test_band_validation(kwargs, reason):
  with pytest.raises(ValueError, match=re.escape(reason)):
    Band(**kwargs)


def test_equalizer_apo_text():
  text = MIXED.to_equalizer_apo()
  lines = text.splitlines()
  assert lines[1] == "Filter 1: ON HPQ Fc 30.0 Hz Q 0.700"
  assert lines[2] == "Filter 2: ON LSC Fc 120.0 Hz Gain 4.5 dB Q 0.707"
  assert lines[3] == "Filter 3: ON PK Fc 450.0 Hz Gain -3.0 dB Q 1.400"
  assert lines[4] == "Filter 4: ON NO Fc 3150.0 Hz Q 8.000"
  assert len(lines) == 7
  # The preamp takes back the largest boost, so the EQ cannot clip a full-scale signal.
  preamp = float(re.fullmatch(r"Preamp: (-?[\d.]+) dB", lines[0]).group(1))
  boost = np.max(MIXED.response_db(np.geomspace(20, 20000, 4096), 48000))
  assert preamp == pytest.approx(-boost, abs=0.06) and preamp < 0
  cut_only = EQ([Band("peak", 1000, -6)]).to_equalizer_apo()
  assert cut_only.startswith("Preamp: -0.0 dB") or cut_only.startswith("Preamp: 0.0 dB")


def test_str_is_a_readable_table():
  table = str(MIXED).splitlines()
  assert table[0].split() == ["#", "kind", "freq", "(Hz)", "gain", "(dB)", "Q"]
  assert table[2].split() == ["2", "low_shelf", "120.0", "+4.5", "0.71"]


def test_repr_is_one_short_line_of_the_bands():
  assert repr(EQ([Band("low_shelf", 120, -3.0), Band("peak", 450, 0.0, 1.4)])) == (
      "EQ(2 bands: low_shelf 120 Hz -3.0 dB Q 0.71)")
  assert repr(EQ([Band("peak", 450, 0.0)])) == "EQ(1 band: all at 0 dB)"
  assert "\n" not in repr(MIXED) and len(repr(MIXED)) < 200


def test_scaled_multiplies_every_gain():
  eq = EQ([Band("low_shelf", 100, -6.0), Band("peak", 1000, 4.0, 2.0), Band("high_pass", 40)])
  half = eq.scaled(0.5)
  assert [b.gain_db for b in half.bands] == [-3.0, 2.0, 0.0]
  assert [(b.kind, b.freq_hz, b.q) for b in half.bands] == [(b.kind, b.freq_hz, b.q) for b in eq.bands]
  assert not any(np.signbit(b.gain_db) for b in eq.scaled(0.0).bands)  # 0 dB, not -0
