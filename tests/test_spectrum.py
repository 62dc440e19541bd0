"""Long-term spectra, classifier spectrograms, smoothing and the spectral difference."""

import jax.numpy as jnp
import numpy as np
import pytest
import soxr

import jaxeq
from jaxeq import EQ, AudioError, Band, spectrum

RATE = 44100


def _noise(seconds=4.0, rate=RATE, seed=0, channels=None):
  rng = np.random.default_rng(seed)
  shape = (int(seconds * rate),) if channels is None else (int(seconds * rate), channels)
  return (0.1 * rng.standard_normal(shape)).astype(np.float32)


def _mid_band():
  return (jaxeq.FREQS > 100) & (jaxeq.FREQS < 16000)


def test_grid():
  assert jaxeq.FREQS.shape == (256,)
  assert jaxeq.FREQS[0] == pytest.approx(20) and jaxeq.FREQS[-1] == pytest.approx(20000)
  ratios = jaxeq.FREQS[1:] / jaxeq.FREQS[:-1]
  np.testing.assert_allclose(ratios, ratios[0])
  np.testing.assert_allclose(spectrum.band_matrix().sum(axis=0), 1.0)


def test_full_scale_sine_reads_about_zero_db_at_its_frequency():
  f = float(jaxeq.FREQS[150])
  t = np.arange(2 * RATE) / RATE
  curve = jaxeq.long_term_spectrum(np.sin(2 * np.pi * f * t), RATE, smoothing_octaves=0)
  assert int(np.argmax(curve)) == 150
  assert curve[150] == pytest.approx(0.0, abs=1.0)
  assert curve.shape == (256,) and curve.dtype == np.float32


def test_white_noise_is_flat_and_an_eq_shows_up_as_its_response():
  noise = _noise(seconds=8)
  flat = jaxeq.long_term_spectrum(noise, RATE)
  assert np.std(flat[_mid_band()]) < 0.5
  eq = EQ([Band("low_shelf", 200, 6.0), Band("peak", 2000, -5.0, 1.0), Band("high_shelf", 8000, 4)])
  shaped = jaxeq.long_term_spectrum(jaxeq.apply_eq(noise, RATE, eq), RATE)
  # The smoothed spectrum follows the smoothed EQ curve.
  expected = np.asarray(jaxeq.smooth(eq.response_db(jaxeq.FREQS, RATE), spectrum.X_SMOOTHING_OCTAVES))
  error = (shaped - flat) - expected
  assert np.max(np.abs(error[_mid_band()])) < 1.0


def test_rests_do_not_drag_the_spectrum_down():
  noise = _noise(seconds=3)
  with_rests = np.concatenate([noise, np.zeros(3 * RATE, np.float32), noise * 1e-4])
  np.testing.assert_allclose(jaxeq.long_term_spectrum(with_rests, RATE),
                             jaxeq.long_term_spectrum(noise, RATE), atol=0.3)


def test_rate_and_channel_count_do_not_change_the_spectrum():
  noise = _noise(seconds=6)
  reference = jaxeq.long_term_spectrum(noise, RATE)
  at_48k = soxr.resample(noise, RATE, 48000)
  stereo = np.stack([noise, noise], axis=1)
  np.testing.assert_allclose(jaxeq.long_term_spectrum(at_48k, 48000)[_mid_band()],
                             reference[_mid_band()], atol=0.5)
  np.testing.assert_allclose(jaxeq.long_term_spectrum(stereo, RATE), reference, atol=1e-3)


@pytest.mark.parametrize("audio, rate, reason", [
    (np.zeros(RATE, np.float32), RATE, "silent"),
    (np.full(RATE, 1e-9, np.float32), RATE, "silent"),
    (np.ones(1000, np.float32) * 0.1, RATE, "too short"),
    (np.full(RATE, np.nan, np.float32), RATE, "NaN"),
    (np.zeros(0, np.float32), RATE, "no samples"),
    (np.ones(RATE, np.float32), 1000, "sample rate 1000"),
])
def test_unusable_audio_raises_instead_of_returning_inf(audio, rate, reason):
  with pytest.raises(AudioError, match=reason):
    jaxeq.long_term_spectrum(audio, rate)
  with pytest.raises(AudioError, match=reason):
    jaxeq.log_spectrogram_windows(audio, rate)


def test_spectrogram_windows():
  short = jaxeq.log_spectrogram_windows(_noise(seconds=2), RATE)
  assert short.shape == (1, 256, 256) and short.dtype == np.float32
  # The clip fills a third of the window; the padding after it sits below any audio level.
  assert np.median(short[0, :80]) > -60 and np.all(short[0, -80:] == spectrum.PADDING_DB)
  assert spectrum.PADDING_DB < spectrum.FLOOR_DB - 80
  # Digital silence inside the audio is audio at the floor, not padding.
  silent_start = np.concatenate([np.zeros(4 * RATE, np.float32), _noise(seconds=2)])
  assert np.all(jaxeq.log_spectrogram_windows(silent_start, RATE)[0, 10:80] == spectrum.FLOOR_DB)
  assert jaxeq.log_spectrogram_windows(_noise(seconds=15.5), RATE).shape[0] == 3
  # A silent stretch between two notes is a rest: its window is left out.
  tone = np.sin(2 * np.pi * 1000 * np.arange(6 * RATE) / RATE).astype(np.float32)
  gap = np.zeros(6 * RATE, np.float32)
  windows = jaxeq.log_spectrogram_windows(np.concatenate([tone, gap, tone]), RATE)
  assert windows.shape[0] == 2
  assert int(np.argmax(windows[0, 100])) == int(np.argmin(np.abs(jaxeq.FREQS - 1000)))


def test_smoothing():
  rng = np.random.default_rng(0)
  curves = rng.normal(size=(3, 5, 256))
  smoothed = jaxeq.smooth(curves, 1 / 3)
  assert smoothed.shape == (3, 5, 256)
  np.testing.assert_allclose(jaxeq.smooth(jnp.full(256, 4.0), 1.0), 4.0, rtol=1e-6)
  np.testing.assert_allclose(jaxeq.smooth(curves, 0), curves, rtol=1e-6)
  assert float(jnp.std(smoothed)) < 0.5 * float(np.std(curves))
  with pytest.raises(ValueError, match="-1"):
    jaxeq.smooth(curves, -1)


def test_difference_keeps_small_corrections_and_bounds_large_ones():
  log_f = np.log2(jaxeq.FREQS / 1000)
  target = 30.0 - 3.0 * log_f  # a tilt; its level is irrelevant
  source = np.zeros(256)
  everywhere = np.ones(256)
  d = np.asarray(jaxeq.difference(target, source, weight=everywhere))
  assert abs(d.mean()) < 1e-3 and 11.0 < np.max(np.abs(d)) <= 12.0
  # Compressed above the knee only: the small part of the correction is exactly the unlimited one.
  unlimited = np.asarray(jaxeq.difference(target, source, weight=everywhere, max_db=1000))
  assert np.max(np.abs(unlimited)) > 12
  small = np.abs(unlimited) <= spectrum.LIMIT_KNEE_DB
  np.testing.assert_allclose(d[small], unlimited[small], atol=1e-4)
  assert np.all(np.abs(d[~small]) < np.abs(unlimited[~small]))
  assert np.all(np.diff(d) <= 1e-6)  # still a monotone tilt: the shape is kept
  np.testing.assert_allclose(jaxeq.difference(source + 7, source), 0.0, atol=1e-5)
  batch = jaxeq.difference(np.stack([target, source]), np.stack([source, source]),
                           weight=everywhere)
  np.testing.assert_allclose(batch[0], d, atol=1e-5)
  with pytest.raises(ValueError, match="max_db=0"):
    jaxeq.difference(target, source, max_db=0)


def test_soft_limit_is_identity_below_the_knee_monotone_and_bounded():
  x = np.linspace(-40, 40, 801)
  y = np.asarray(spectrum.soft_limit(x, 12.0, 6.0))
  inside = np.abs(x) <= 6
  np.testing.assert_allclose(y[inside], x[inside], atol=1e-6)
  assert np.all(np.diff(y) > 0) and np.max(np.abs(y)) < 12.0
  with pytest.raises(ValueError, match="knee_db=13"):
    spectrum.soft_limit(x, 12.0, 13.0)


def test_a_drums_or_basss_fundamental_is_not_cut():
  log2 = np.log2(spectrum.FREQS)
  track = np.where(spectrum.FREQS < 1000, -20.0, -40.0)
  track[np.argmin(np.abs(spectrum.FREQS - 120))] = 0.0  # loudest under 250 Hz: an unpitched kick
  cut = np.full((3, 256), -10.0, np.float32)
  tracks = np.stack([track] * 3)
  pitches = np.array([60.0, np.nan, 1000.0])  # a bass note; none; a pitch too high to be it
  kept = np.asarray(spectrum.without_cut_at_fundamental(cut, tracks, pitches, np.ones(3)))
  at = np.log2([60.0, 120.0, 120.0])
  for row, where in zip(kept, at):
    distance = np.abs(log2 - where)
    np.testing.assert_allclose(row[distance <= 0.5], 0.0, atol=1e-5)  # no cut near it
    np.testing.assert_allclose(row[distance >= 1.0], -10.0, atol=1e-5)  # the rest unchanged
    assert np.all(np.diff(row[log2 > where]) <= 1e-5)  # fading back in
  half = np.asarray(spectrum.without_cut_at_fundamental(cut[:1], tracks[:1], pitches[:1], [0.5]))
  np.testing.assert_allclose(half[0][np.abs(log2 - at[0]) <= 0.5], -5.0, atol=1e-5)
  boost = -cut
  np.testing.assert_allclose(spectrum.without_cut_at_fundamental(boost, tracks, pitches, np.ones(3)),
                             boost)  # boosts stay
  # In the correction: only as far as `keep_fundamental` says.
  target = np.zeros(256, np.float32)
  plain = spectrum.correction(target, track)
  np.testing.assert_allclose(spectrum.correction(target, track, None, np.nan, 0.0).curve,
                             plain.curve)
  ruled = np.asarray(spectrum.correction(target, track, None, np.nan, 1.0).curve)
  assert np.asarray(plain.curve)[np.abs(log2 - at[1]) <= 0.5].min() < -1.0
  assert ruled[np.abs(log2 - at[1]) <= 0.5].min() >= -1e-5


def test_audible_weight_follows_the_band_where_a_spectrum_has_energy():
  # A band-limited instrument: flat from 100 Hz to 4 kHz, falling 40 dB an octave outside.
  log_f = np.log2(jaxeq.FREQS)
  curve = -40.0 * (np.maximum(np.log2(100) - log_f, 0) + np.maximum(log_f - np.log2(4000), 0))
  weight = np.asarray(spectrum.audible_weight(curve))
  assert np.all(weight[(jaxeq.FREQS > 150) & (jaxeq.FREQS < 3000)] == 1.0)
  assert np.all(weight[(jaxeq.FREQS < 40) | (jaxeq.FREQS > 12000)] == 0.0)
  # The level of a curve does not matter, only its shape.
  np.testing.assert_allclose(spectrum.audible_weight(curve - 37.0), weight, atol=1e-6)
  # The correction takes the whole audible band at full weight and fades out beneath it
  # (so that a colouration moving the band's edge changes little); it makes none where the
  # correction weight is 0, and the target's band counts too.
  target = np.zeros(256)
  correcting = np.asarray(spectrum.correction_weight(target, curve))
  assert np.all(correcting[weight > 0] == 1.0) and correcting.sum() > weight.sum()
  assert np.all(correcting[(jaxeq.FREQS < 30) | (jaxeq.FREQS > 16000)] == 0.0)
  d = np.asarray(jaxeq.difference(target, curve))
  assert np.all(d[correcting == 0] == 0.0)
  both = np.asarray(spectrum.correction_weight(curve[::-1], curve))
  assert np.all(both <= correcting + 1e-6) and both.sum() < correcting.sum()


def _band_noise(seconds, lo_hz, hi_hz, rms, seed):
  """White noise kept between `lo_hz` and `hi_hz` (an instrument, or hiss when 0–Nyquist)."""
  rng = np.random.default_rng(seed)
  x = np.fft.rfft(rng.standard_normal(int(seconds * RATE)))
  f = np.fft.rfftfreq(int(seconds * RATE), 1 / RATE)
  x[(f < lo_hz) | (f > hi_hz)] = 0
  y = np.fft.irfft(x, int(seconds * RATE))
  return (rms * y / np.sqrt(np.mean(y**2))).astype(np.float32)


def test_noise_floor_is_the_hiss_under_a_track_and_nothing_else():
  # Three seconds of an instrument (200 Hz–4 kHz), a second's gap; hiss 40 dB under it per Hz
  # all along, which the peak-relative rule alone takes for part of the sound.
  playing = np.concatenate([_band_noise(3, 200, 4000, 0.1, 1), np.zeros(RATE, np.float32)])
  hiss = _band_noise(4, 0, RATE / 2, 0.1 * np.sqrt(RATE / 2 / 3800) * 10 ** (-40 / 20), 2)
  track, floor = spectrum.spectrum_and_noise_floor(playing + hiss, RATE)
  np.testing.assert_allclose(track, jaxeq.long_term_spectrum(playing + hiss, RATE))
  hissy = jaxeq.FREQS > 8000
  assert np.all(spectrum.audible_weight(track)[hissy] > 0.3)
  assert np.all(np.asarray(spectrum.above_noise_weight(track, floor))[hissy] == 0)
  assert np.all(np.asarray(spectrum.above_noise_weight(track, floor))[
      (jaxeq.FREQS > 300) & (jaxeq.FREQS < 3000)] == 1)
  assert np.all(np.asarray(spectrum.correction_weight(np.zeros(256), track, floor))[hissy] == 0)
  # Without the hiss the gap is digital silence: no floor, nothing taken for noise.
  _, clean_floor = spectrum.spectrum_and_noise_floor(playing, RATE)
  assert np.all(clean_floor == spectrum.FLOOR_DB)
  # A soft passage an octave band the loud part does not play is music, not noise.
  soft = np.concatenate([_band_noise(3, 1000, 4000, 0.1, 3), _band_noise(1, 100, 400, 0.002, 4)])
  track, floor = spectrum.spectrum_and_noise_floor(soft, RATE)
  assert not np.any(spectrum.in_noise(track, floor)[(jaxeq.FREQS > 120) & (jaxeq.FREQS < 350)])
