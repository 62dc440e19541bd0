"""BS.1770 loudness against pyloudnorm, and loudness matching with a true-peak limiter."""

import numpy as np
import pyloudnorm
import pytest

from jaxeq import EQ, Band, apply_eq, load_audio
from jaxeq.filtering import filter_channels
from jaxeq.limiter import (LOOKAHEAD_S, LOSSLESS_CEILING_DBTP, LOSSY_CEILING_DBTP, MAX_LIMITING_DB,
                           RELEASE_S, ceiling_dbtp, peak_reduction_db, true_peak_envelope)
from jaxeq.loudness import K_WEIGHTING, integrated_loudness, match_loudness


@pytest.mark.parametrize("rate, channels", [(44100, 2), (48000, None), (96000, 5), (22050, 1)])
def test_integrated_loudness_agrees_with_pyloudnorm(rate, channels):
  rng = np.random.default_rng(rate)
  n = int(7.3 * rate)
  shape = (n,) if channels is None else (n, channels)
  audio = 0.2 * rng.standard_normal(shape)
  audio[: n // 3] *= 0.01  # a quiet passage, which the relative gate leaves out
  want = pyloudnorm.Meter(rate).integrated_loudness(audio)
  assert integrated_loudness(audio, rate) == pytest.approx(want, abs=0.02)


def test_silence_is_minus_infinity_and_short_clips_are_one_block():
  assert integrated_loudness(np.zeros(44100), 44100) == -np.inf
  short = 0.1 * np.random.default_rng(0).standard_normal(4410)
  assert np.isfinite(integrated_loudness(short, 44100))


def _matched(audio, rate, eq, ceiling=LOSSLESS_CEILING_DBTP):
  """`audio` through `eq`, then matched to `audio`'s loudness as `AutoEQ.process` does."""
  processed = apply_eq(audio, rate, eq)
  weighted = filter_channels(processed, rate, K_WEIGHTING)
  return match_loudness(processed, rate, weighted, integrated_loudness(audio, rate), ceiling)


def _true_peak_db(audio, rate):
  return 20 * np.log10(np.max(true_peak_envelope(np.atleast_2d(audio.T), rate)))


def test_matching_restores_the_input_loudness():
  rng = np.random.default_rng(1)
  original = (0.05 * rng.standard_normal((5 * 44100, 2))).astype(np.float32)
  matched, level = _matched(original, 44100, EQ([Band("peak", 3000, 9.0, 0.7)]))
  assert matched.dtype == np.float32 and matched.shape == original.shape
  assert level.limited_db == 0.0 and level.loudness_change_lu == 0.0  # nothing near the ceiling
  assert integrated_loudness(matched, 44100) == pytest.approx(
      integrated_loudness(original, 44100), abs=0.01)


def test_true_peaks_between_samples_are_found():
  # A sine at a quarter of the rate, sampled 45 degrees off its crests: every sample reads
  # 0.707 (-3 dB) while the wave between them reaches 1.
  rate = 48000
  sine = np.sin(2 * np.pi * np.arange(rate) / 4 + np.pi / 4).astype(np.float32)
  assert np.max(np.abs(sine)) == pytest.approx(0.7071, abs=1e-3)
  envelope = true_peak_envelope(sine[None], rate)[1000:-1000]  # away from the abrupt ends
  assert 20 * np.log10(envelope.max()) == pytest.approx(0.0, abs=0.05)


def _drum_hit(kit, name):
  """A real drum recording from the fetched Hydrogen kits (`make sources`)."""
  from data_prep import fetch
  return load_audio(fetch.source_dir("hydrogen-drumkits") / kit / name)


# EQs such as the matcher gives drum hits: a cut where the hit is loud and a boost beside it
# raise the peak while the loudness falls, so the make-up gain pushes the peak far over.
def test_a_loud_drum_hit_boosted_keeps_its_loudness_and_peaks_are_limited():
  audio, rate = _drum_hit("HardElectro1", "HardHse_K_02.flac")  # near full scale, as packs are
  eq = EQ([Band("peak", 170, -5.0, 1.8), Band("peak", 400, 5.0, 1.2)])
  for ceiling in (LOSSLESS_CEILING_DBTP, LOSSY_CEILING_DBTP):
    matched, level = _matched(audio, rate, eq, ceiling)
    # Turning the whole hit down to fit its boosted peak would lose several LU; the limiter
    # takes the peaks alone, and says how much.
    assert integrated_loudness(matched, rate) == pytest.approx(integrated_loudness(audio, rate),
                                                               abs=1.0)
    assert 3.0 < level.limited_db <= MAX_LIMITING_DB and not level.limiter_capped
    assert abs(level.loudness_change_lu) < 1.0
    assert _true_peak_db(matched, rate) <= ceiling + 0.01
    assert np.max(np.abs(matched)) <= 10 ** (ceiling / 20) + 1e-6


def test_the_limiter_takes_at_most_6_db_and_the_output_is_quieter_instead():
  # A real kick with its fundamental cut 12 dB and a boost above: holding its loudness would
  # take over 10 dB off its peaks (a trumpet lost 16 dB so). The make-up gain comes down
  # until the limiter takes the cap, and the output is that much quieter.
  audio, rate = _drum_hit("ColomboAcousticDrumkit", "bassdrum-4mics-br-stereo-normal3.flac")
  eq = EQ([Band("low_shelf", 250, -12.0), Band("peak", 720, 5.0, 0.5)])
  processed = apply_eq(audio, rate, eq)
  weighted = filter_channels(processed, rate, K_WEIGHTING)
  target = integrated_loudness(audio, rate)
  uncapped = match_loudness(processed, rate, weighted, target, max_limiting_db=40.0)[1]
  assert uncapped.limited_db > 10.0 and abs(uncapped.loudness_change_lu) < 1.0
  matched, level = _matched(audio, rate, eq)  # the default cap
  assert level.limiter_capped and level.limited_db == pytest.approx(MAX_LIMITING_DB, abs=0.01)
  assert level.makeup_gain_db < uncapped.makeup_gain_db
  assert level.loudness_change_lu < -1.0  # quieter, and it says by how much
  assert integrated_loudness(matched, rate) - target == pytest.approx(level.loudness_change_lu,
                                                                      abs=0.15)
  assert _true_peak_db(matched, rate) <= LOSSLESS_CEILING_DBTP + 0.01
  with pytest.raises(ValueError, match="max_limiting_db"):
    match_loudness(processed, rate, weighted, target, max_limiting_db=0.0)


def test_the_limiter_ramps_down_before_a_peak_and_recovers_after():
  rate = 44100
  tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)
  tone[rate // 2] = 1.5  # one click far over the ceiling
  reduction = peak_reduction_db(true_peak_envelope(tone[None], rate), rate, 0.0, -0.1)
  click = rate // 2
  assert reduction[click] >= 20 * np.log10(1.5 / 10 ** (-0.1 / 20)) - 1e-4
  assert np.all(np.diff(reduction[click - int(LOOKAHEAD_S * rate):click]) >= -1e-6)  # a ramp
  assert np.max(np.abs(np.diff(reduction))) < 0.1 * reduction[click]  # no step in the gain
  assert reduction[:click - int(LOOKAHEAD_S * rate) - 1].max() == 0.0  # untouched before
  assert reduction[click + int(20 * RELEASE_S * rate):].max() < 1e-3  # and long after


@pytest.mark.parametrize("subtype, ceiling", [("PCM_24", LOSSLESS_CEILING_DBTP),
                                              ("VORBIS", LOSSY_CEILING_DBTP),
                                              ("MPEG_LAYER_III", LOSSY_CEILING_DBTP)])
def test_lossy_formats_keep_a_decibel_of_headroom(subtype, ceiling):
  assert ceiling_dbtp(subtype) == ceiling
