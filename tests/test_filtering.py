"""apply_eq runs the designed filters on real audio, at any rate and channel count."""

import numpy as np
import pytest

from jaxeq import EQ, AudioError, Band, apply_eq

EQUALIZER = EQ([Band("low_shelf", 150, 5.0), Band("peak", 1200, -6.0, 2.0),
                Band("high_shelf", 3000, 3.0)])


@pytest.mark.parametrize("rate", [8000, 44100, 192000])
def test_impulse_response_has_the_eq_s_magnitude_response(rate):
  n = 1 << 18  # long enough for the 150 Hz shelf to ring out even at 192 kHz
  impulse = np.zeros(n, np.float64)
  impulse[0] = 1.0
  out = apply_eq(impulse, rate, EQUALIZER)
  spectrum = np.fft.rfft(out)
  bins = np.fft.rfftfreq(n, 1 / rate)
  pick = (bins >= 20) & (bins <= 0.45 * rate)
  measured = 20 * np.log10(np.abs(spectrum[pick]))
  np.testing.assert_allclose(measured, EQUALIZER.response_db(bins[pick], rate), atol=0.02)


@pytest.mark.parametrize("shape, dtype", [((44100,), np.float32), ((44100, 2), np.float64),
                                          ((22050, 6), np.float32)])
def test_shape_and_dtype_are_kept_and_channels_are_independent(shape, dtype):
  rng = np.random.default_rng(0)
  audio = (0.1 * rng.standard_normal(shape)).astype(dtype)
  out = apply_eq(audio, 44100, EQUALIZER)
  assert out.shape == audio.shape and out.dtype == audio.dtype
  if audio.ndim == 2:
    np.testing.assert_allclose(out[:, 1], apply_eq(audio[:, 1].copy(), 44100, EQUALIZER),
                               rtol=1e-6, atol=1e-7)


def test_sine_through_a_peak_comes_out_at_the_peak_gain():
  rate = 48000
  t = np.arange(rate) / rate
  sine = 0.25 * np.sin(2 * np.pi * 1200 * t)
  out = apply_eq(sine, rate, EQ([Band("peak", 1200, -6.0, 2.0)]))
  steady = slice(rate // 2, None)
  gain_db = 20 * np.log10(np.std(out[steady]) / np.std(sine[steady]))
  assert gain_db == pytest.approx(-6.0, abs=0.01)


def test_input_array_is_not_modified():
  audio = np.random.default_rng(1).standard_normal((1000, 2)).astype(np.float32)
  copy = audio.copy()
  apply_eq(audio, 44100, EQUALIZER)
  np.testing.assert_array_equal(audio, copy)


@pytest.mark.parametrize("audio, rate, reason", [
    (np.full(100, np.nan, np.float32), 44100, "NaN"),
    (np.zeros(100, np.float32), 4000, "sample rate 4000"),
    (np.zeros((2, 1000), np.float32), 44100, "transpose"),
    (np.zeros(0, np.float32), 44100, "no samples"),
])
def test_bad_audio(audio, rate, reason):
  with pytest.raises(AudioError, match=reason):
    apply_eq(audio, rate, EQUALIZER)
