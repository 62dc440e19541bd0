"""Spectral analysis (DESIGN.md §2): long-term spectra, classifier spectrograms, differences.

Audio is analysed at `SAMPLE_RATE` (resampled when needed), mixed down to mono, with a Hann
window of `N_FFT` samples. Spectra live on `FREQS`, 256 log-spaced points from 20 Hz to
20 kHz. Audio-domain functions take and return NumPy; curve functions (`smooth`,
`zero_centre`, `difference`) are pure JAX and work on batches of curves. Those a track's
analysis calls from outside `jit` (`smooth`, `zero_centre`, `audible_weight`, `correction`)
are jitted: one XLA program each, not one per operation, each of which a fresh process
would trace and load from the compilation cache.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
import soxr

from jaxeq.audio_io import AudioError, check_audio

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 1024
FREQS = np.geomspace(20.0, 20000.0, 256)
FREQS.setflags(write=False)
# Frames this far below the loudest frame are rests, not the instrument's spectrum.
GATE_DB = 60.0
# Below this a frame (or a whole clip) counts as digital silence.
SILENCE_DBFS = -100.0
FLOOR_DB = -120.0
# The frames of a classifier window past the end of the audio: far below anything audio can
# reach, so that padding is never mistaken for a quiet part of the track.
PADDING_DB = -250.0
WINDOW_SECONDS = 6.0
WINDOW_FRAMES = 256
# A track is classified from at most this many windows, as its training clips were.
MAX_WINDOWS = 8
X_SMOOTHING_OCTAVES = 1 / 6
D_SMOOTHING_OCTAVES = 1 / 3
MAX_DIFFERENCE_DB = 12.0
# Below this the difference is passed unchanged; above it is compressed smoothly toward
# MAX_DIFFERENCE_DB, so a large correction never shrinks the small ones beside it.
LIMIT_KNEE_DB = 6.0
# The audible band (DESIGN.md §2, "correct where the instrument sounds"): a frequency whose
# third-octave level is more than AUDIBLE_BELOW_DB under the curve's loudest third-octave has
# no energy to speak of; the weight rises from 0 there to 1 at AUDIBLE_FADE_DB above it.
AUDIBLE_SMOOTHING_OCTAVES = 1 / 3
AUDIBLE_BELOW_DB = 45.0
AUDIBLE_FADE_DB = 15.0
# The correction covers all of a track's audible band at full weight and fades out beneath it,
# over AUDIBLE_FADE_DB: a fade inside the band would scale the correction with the track's own
# levels, so a coloured copy of a track would be corrected over another band (README, "What
# the automatic EQ corrects").
CORRECTION_BELOW_DB = AUDIBLE_BELOW_DB + AUDIBLE_FADE_DB
# The noise floor is the spectrum of the frames at least NOISE_GAP_DB under the loudest (gaps,
# fades, the ends of tails; digital silence left out), when there are MIN_NOISE_FRAMES of them.
# Where the track is less than NOISE_MARGIN_DB above it, what the track holds is mostly noise;
# the weight is full NOISE_FADE_DB further up.
NOISE_GAP_DB = 30.0
MIN_NOISE_FRAMES = 8
NOISE_PERCENTILE = 10
NOISE_SAMPLE_FRAMES = 512  # frames enough for the percentile, however long the track
NOISE_MARGIN_DB = 6.0
NOISE_FADE_DB = 6.0
# The EQ boosts at most this much (dB) where the track has no energy or is mostly noise
# (`quiet_band`): a boost there would only raise rumble, hiss or noise.
QUIET_BOOST_DB = 3.0
# A drum's or a bass's fundamental is what a producer keeps: the correction makes no cut
# within FUNDAMENTAL_OCTAVES of it (fading out over as much again). It lies at the track's
# pitch (which an EQ does not move) when that is under FUNDAMENTAL_MAX_HZ, else at its
# strongest point under FUNDAMENTAL_SEARCH_HZ (an unpitched kick).
FUNDAMENTAL_OCTAVES = 0.5
FUNDAMENTAL_MAX_HZ = 400.0
FUNDAMENTAL_SEARCH_HZ = 250.0


@functools.lru_cache(maxsize=8)
def band_matrix(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
  """`(n_fft // 2 + 1, 256)` weights mapping an FFT power spectrum onto `FREQS`.

  Each grid point owns the band between the geometric midpoints to its neighbours and gets
  the mean power of the FFT bins inside it; where a band is narrower than a bin (the low
  end), the power is interpolated linearly at the grid point instead.
  """
  bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
  ratio = np.sqrt(FREQS[1] / FREQS[0])
  edges = np.concatenate([[FREQS[0] / ratio], np.sqrt(FREQS[1:] * FREQS[:-1]), [FREQS[-1] * ratio]])
  weights = np.zeros((len(bins), len(FREQS)))
  for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
    inside = (bins >= lo) & (bins < hi)
    if inside.any():
      weights[inside, j] = 1.0 / inside.sum()
    else:
      pos = FREQS[j] / (sample_rate / n_fft)
      k = int(np.floor(pos))
      weights[k, j] += 1.0 - (pos - k)
      weights[k + 1, j] += pos - k
  return weights


def analysis_signal(audio, sample_rate) -> np.ndarray:
  """Mono float32 at `SAMPLE_RATE`, what every analysis here works on (made once, it can be
  passed on with `SAMPLE_RATE`: no second downmix or resampling); raises `AudioError` for
  unusable audio."""
  return analysis_signal_checked(check_audio(audio, sample_rate), sample_rate)


def analysis_signal_checked(audio: np.ndarray, sample_rate: int) -> np.ndarray:
  """`analysis_signal` of audio already checked (`check_audio`)."""
  audio = audio.astype(np.float32, copy=False)
  # A matrix-vector product downmixes far faster than a mean over the short channel axis.
  mono = audio @ np.full(audio.shape[1], 1 / audio.shape[1], np.float32) if audio.ndim == 2 else audio
  if sample_rate != SAMPLE_RATE:
    mono = soxr.resample(mono, sample_rate, SAMPLE_RATE, quality="HQ")
  if len(mono) < N_FFT:
    raise AudioError(f"audio is too short to analyse: {len(mono) / SAMPLE_RATE * 1000:.0f} ms, "
                     f"needs at least {N_FFT / SAMPLE_RATE * 1000:.0f} ms")
  if not np.any(mono):
    raise AudioError("audio is silent")
  return mono


def _frames(signal: np.ndarray, hop: int, count: int | None = None) -> np.ndarray:
  """A read-only `(frames, N_FFT)` view of `signal` (which must be long enough)."""
  count = 1 + (len(signal) - N_FFT) // hop if count is None else count
  view = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)
  return view[: (count - 1) * hop + 1 : hop]


def _frame_power_db(squared_frames: np.ndarray, window: np.ndarray) -> np.ndarray:
  """Mean-square level of each windowed frame in dBFS (a full-scale sine reads -3 dB), from
  `_frames` of the squared signal (squaring the signal once, not every overlapping frame)."""
  energy = np.einsum("ft,t->f", squared_frames, window**2) / np.sum(window**2)
  return 10 * np.log10(np.maximum(energy, 1e-30))


def _power(frames: np.ndarray, window: np.ndarray) -> np.ndarray:
  """`(frames, N_FFT // 2 + 1)` power spectra of windowed `frames`, in their precision (scipy's
  FFT keeps float32 as float32, about three times faster than NumPy's)."""
  return np.abs(scipy.fft.rfft(frames * window, axis=-1)) ** 2


def _to_grid_db(power: np.ndarray) -> np.ndarray:
  """FFT power `(..., bins)` → dB on `FREQS`, floored at `FLOOR_DB` (in `power`'s precision)."""
  banded = power @ band_matrix().astype(power.dtype, copy=False)
  return np.maximum(10 * np.log10(np.maximum(banded, 1e-30)), FLOOR_DB)


def long_term_spectrum(audio, sample_rate: int, smoothing_octaves: float = X_SMOOTHING_OCTAVES,
                       block_frames: int = 2048) -> np.ndarray:
  """The track's long-term spectrum: 256 dB values on `FREQS` (float32).

  Mean power over frames, leaving out frames more than `GATE_DB` below the loudest, so a
  track with long rests is not dragged down; then `smoothing_octaves` smoothing.
  """
  return _spectra(analysis_signal(audio, sample_rate), smoothing_octaves, block_frames,
                  noise_floor=False)[0]


def spectrum_and_noise_floor(audio, sample_rate: int,
                             smoothing_octaves: float = X_SMOOTHING_OCTAVES,
                             block_frames: int = 2048) -> tuple[np.ndarray, np.ndarray]:
  """`(long_term_spectrum, noise_floor)`, both 256 dB values on `FREQS` (float32).

  The noise floor is what every part of the track holds, in each third-octave: the lower of
  the quiet frames' mean power (at least `NOISE_GAP_DB` under the loudest, not digital
  silence: the hiss between and after the notes) and the `NOISE_PERCENTILE`th percentile of
  all sounding frames (so a soft passage in a register the rest does not play is not taken
  for noise). Both are compared in power, not dB: the dB curve of a harmonic sound reads the
  valleys between its partials. The floor is placed so that `spectrum − floor` is how far
  the track stands out of it. A track with fewer than `MIN_NOISE_FRAMES` quiet frames (a
  sustained pad, a clean one-shot that ends in digital silence) has no floor to speak of:
  `FLOOR_DB` everywhere.
  """
  return signal_spectrum_and_noise_floor(analysis_signal(audio, sample_rate), smoothing_octaves,
                                         block_frames)


def signal_spectrum_and_noise_floor(signal: np.ndarray,
                                    smoothing_octaves: float = X_SMOOTHING_OCTAVES,
                                    block_frames: int = 2048) -> tuple[np.ndarray, np.ndarray]:
  """`spectrum_and_noise_floor` of an `analysis_signal` (made, and checked, already)."""
  return _spectra(signal, smoothing_octaves, block_frames, noise_floor=True)


def _spectra(signal: np.ndarray, smoothing_octaves: float, block_frames: int,
             noise_floor: bool) -> tuple[np.ndarray, np.ndarray | None]:
  """The long-term spectrum of an analysis signal, and the noise floor when asked (else
  None): the floor's frames are only transformed for the callers that use it."""
  window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
  frames = _frames(signal, HOP)
  level_db = _frame_power_db(_frames(signal**2, HOP), window)
  if level_db.max() < SILENCE_DBFS:
    raise AudioError(f"audio is silent (loudest frame {level_db.max():.0f} dBFS)")
  kept = np.flatnonzero(level_db >= level_db.max() - GATE_DB)
  quiet = np.flatnonzero((level_db <= level_db.max() - NOISE_GAP_DB) & (level_db >= SILENCE_DBFS))
  # Scaled so that a full-scale sine at a grid frequency reads about 0 dB.
  scale = (np.sum(window) / 2) ** 2

  def mean_power(indices: np.ndarray) -> np.ndarray:
    power = np.zeros(N_FFT // 2 + 1)
    for start in range(0, len(indices), block_frames):  # bounded memory for long tracks
      power += np.sum(_power(frames[indices[start:start + block_frames]], window), axis=0)
    return power / (len(indices) * scale)

  power = mean_power(kept)
  spectrum = np.asarray(smooth(_to_grid_db(power), smoothing_octaves), dtype=np.float32)
  if not noise_floor:
    return spectrum, None
  if len(quiet) < MIN_NOISE_FRAMES:
    return spectrum, np.full(len(FREQS), FLOOR_DB, np.float32)
  sounding = np.flatnonzero(level_db >= SILENCE_DBFS)
  sample = sounding[np.linspace(0, len(sounding) - 1, min(len(sounding), NOISE_SAMPLE_FRAMES))
                    .round().astype(int)]
  per_frame = _power(frames[sample], window) / scale
  thirds = _third_octave_matrix()
  noise = np.minimum(mean_power(quiet) @ thirds,
                     np.percentile(per_frame @ thirds, NOISE_PERCENTILE, axis=0))
  margin_db = 10 * np.log10(np.maximum(power @ thirds, 1e-30) / np.maximum(noise, 1e-30))
  return spectrum, np.maximum(spectrum - margin_db, FLOOR_DB).astype(np.float32)


# A track has nothing to equalise (`nothing_to_equalise`) when its loudest moment is under
# NEAR_SILENT_DBFS, when it sounds for under CLICK_MS within CLICK_GAP_DB of its loudest
# millisecond (a click; a real drum hit lasts tens of ms), or when all but 0.1 % (-30 dB) of
# its power lies within TONE_BINS FFT bins of its strongest (one sustained tone: a Hann
# window's main lobe is ±2 bins, whatever the pitch). Sines leave -42 to -51 dB outside; of 960 real recordings the least leaves -21.5 dB.
NEAR_SILENT_DBFS = -60.0
CLICK_MS, CLICK_GAP_DB = 5.0, 20.0
TONE_SHARE, TONE_BINS, TONE_FRAMES = 0.999, 3, 64


def nothing_to_equalise(signal: np.ndarray) -> str | None:
  """Why a track has nothing an EQ could correct (None when it has): near-silent, a click, or
  one sustained tone. `signal` is the `analysis_signal`."""
  window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
  level_db = _frame_power_db(_frames(signal**2, HOP), window)
  loudest = float(level_db.max())
  if loudest < NEAR_SILENT_DBFS:
    return f"the track is near-silent (its loudest moment is {loudest:.0f} dBFS)"
  millisecond = SAMPLE_RATE // 1000
  # Two passes over the chunks: the threshold is the loudest millisecond's, known after one.
  loud = max(chunk.max() for chunk in _millisecond_powers(signal)) * 10 ** (-CLICK_GAP_DB / 10)
  sounding_ms = sum(np.sum(chunk >= loud) for chunk in _millisecond_powers(signal)) / millisecond
  if sounding_ms < CLICK_MS:
    return f"the track is a click ({sounding_ms:.1f} ms of sound)"
  sounding = np.flatnonzero(level_db >= loudest - CLICK_GAP_DB)
  sample = sounding[np.linspace(0, len(sounding) - 1, min(len(sounding), TONE_FRAMES)).astype(int)]
  power = np.sum(_power(_frames(signal, HOP)[sample], window), axis=0)
  peak = int(np.argmax(power))
  lobe = np.arange(max(0, peak - TONE_BINS), peak + TONE_BINS + 1)
  if np.sum(power[lobe]) >= TONE_SHARE * np.sum(power):
    pitch = np.sum(lobe * power[lobe]) / np.sum(power[lobe]) * SAMPLE_RATE / N_FFT
    return f"the track is one sustained tone ({pitch:.0f} Hz)"
  return None


def _millisecond_powers(signal: np.ndarray, chunk: int = 1 << 18):
  """The power of `signal` over each 1 ms from every sample on (float64), a chunk at a time: a
  whole track's running sums at once were several arrays of 8 bytes a sample, most of a cold
  process's time here spent mapping their memory."""
  millisecond = SAMPLE_RATE // 1000
  for start in range(0, max(len(signal) - millisecond + 1, 1), chunk):
    energy = np.cumsum(signal[start:start + chunk + millisecond - 1].astype(np.float64) ** 2)
    yield (energy[millisecond - 1:] - np.concatenate([[0.0], energy[:-millisecond]])) / millisecond


@functools.lru_cache(maxsize=1)
def _third_octave_matrix() -> np.ndarray:
  """`(n_fft // 2 + 1, 256)`: FFT power onto third-octave band powers around each of `FREQS`."""
  return band_matrix() @ _smoothing_matrix(AUDIBLE_SMOOTHING_OCTAVES).T


def log_spectrogram_windows(audio, sample_rate: int, max_windows: int | None = None) -> np.ndarray:
  """The classifier's input: `(windows, 256 frames, 256 frequencies)` dB spectrograms.

  Each window covers `WINDOW_SECONDS` (6 s) in `WINDOW_FRAMES` frames on the `FREQS` grid.
  A clip shorter than a window is padded to one window, its missing frames at `PADDING_DB`;
  a longer one is cut into consecutive windows (a last partial one is kept if it covers half
  a window). Windows
  `GATE_DB` quieter than the loudest are rests and are left out; at least one remains. With
  `max_windows`, at most that many, evenly spaced over the rest (a long track's timbre does
  not need every window).
  """
  signal = analysis_signal(audio, sample_rate)
  window_len = int(WINDOW_SECONDS * SAMPLE_RATE)
  hop = (window_len - N_FFT) // (WINDOW_FRAMES - 1)  # every frame inside its window
  count = max(1, int(np.floor(len(signal) / window_len + 0.5)))
  padded = np.zeros(count * window_len, np.float32)
  usable = min(len(signal), count * window_len)
  padded[:usable] = signal[:usable]
  hann = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
  frames = [_frames(padded[w * window_len:], hop, WINDOW_FRAMES) for w in range(count)]
  squared = padded**2
  levels = np.array([np.max(_frame_power_db(_frames(squared[w * window_len:], hop, WINDOW_FRAMES),
                                            hann)) for w in range(count)])
  if levels.max() < SILENCE_DBFS:
    raise AudioError(f"audio is silent (loudest frame {levels.max():.0f} dBFS)")
  keep = np.flatnonzero(levels >= levels.max() - GATE_DB)
  if max_windows is not None and len(keep) > max_windows:
    keep = keep[np.linspace(0, len(keep) - 1, max_windows).round().astype(int)]
  scale = (np.sum(hann) / 2) ** 2
  # The kept windows' frames in one FFT and one product with the band matrix.
  power = _power(np.concatenate([frames[w] for w in keep]), hann) / scale
  windows = _to_grid_db(power).reshape(len(keep), WINDOW_FRAMES, len(FREQS)).astype(np.float32)
  # Frames that start past the end of the audio hold only padding.
  starts = (keep[:, None] * window_len + np.arange(WINDOW_FRAMES)[None, :] * hop)
  windows[starts >= len(signal)] = PADDING_DB
  return windows


@functools.lru_cache(maxsize=16)
def _smoothing_matrix(octaves: float) -> np.ndarray:
  """Row-normalised box of `octaves` width around each grid point (truncated at the ends)."""
  log2 = np.log2(FREQS)
  inside = np.abs(log2[:, None] - log2[None, :]) <= octaves / 2 + 1e-9
  return (inside / inside.sum(axis=1, keepdims=True)).astype(np.float32)


@functools.partial(jax.jit, static_argnames="octaves")
def smooth(curve_db, octaves: float) -> jnp.ndarray:
  """Fractional-octave smoothing of `(..., 256)` dB curves; `octaves=0` leaves them as they are."""
  if not octaves >= 0:
    raise ValueError(f"smoothing width {octaves!r} octaves must be >= 0")
  curve_db = jnp.asarray(curve_db, jnp.float32)
  if octaves == 0:
    return curve_db
  return curve_db @ _smoothing_matrix(float(octaves)).T


@jax.jit
def zero_centre(curve_db, weight=None) -> jnp.ndarray:
  """Subtract each curve's mean over `FREQS` (weighted by `weight` when given): overall level
  is not the EQ's job."""
  curve_db = jnp.asarray(curve_db)
  if weight is None:
    return curve_db - jnp.mean(curve_db, axis=-1, keepdims=True)
  weight = jnp.asarray(weight, curve_db.dtype)
  total = jnp.maximum(jnp.sum(weight, axis=-1, keepdims=True), 1e-6)
  return curve_db - jnp.sum(weight * curve_db, axis=-1, keepdims=True) / total


def third_octave_below_peak(spectrum_db) -> jnp.ndarray:
  """How far (dB, >= 0) each point's third-octave level lies under the loudest third-octave."""
  third = smooth(spectrum_db, AUDIBLE_SMOOTHING_OCTAVES)
  return jnp.max(third, axis=-1, keepdims=True) - third


def without_energy(spectrum_db) -> jnp.ndarray:
  """Where a curve has no energy to speak of: more than `AUDIBLE_BELOW_DB` under its loudest
  third-octave (booleans, the shape of `spectrum_db`)."""
  return third_octave_below_peak(spectrum_db) > AUDIBLE_BELOW_DB


@jax.jit
def audible_weight(spectrum_db, below_db: float = AUDIBLE_BELOW_DB) -> jnp.ndarray:
  """Where a `(..., 256)` dB curve carries energy: 1 within `below_db − AUDIBLE_FADE_DB` of its
  loudest third-octave, fading to 0 at `below_db` under it."""
  below = third_octave_below_peak(spectrum_db)
  return jnp.clip((below_db - below) / AUDIBLE_FADE_DB, 0.0, 1.0)


def above_noise_weight(spectrum_db, noise_floor_db) -> jnp.ndarray:
  """Where a track stands out of its noise floor: 0 within `NOISE_MARGIN_DB` of it (third-octave
  levels), 1 from `NOISE_FADE_DB` further up."""
  margin = (smooth(spectrum_db, AUDIBLE_SMOOTHING_OCTAVES)
            - smooth(noise_floor_db, AUDIBLE_SMOOTHING_OCTAVES))
  return jnp.clip((margin - NOISE_MARGIN_DB) / NOISE_FADE_DB, 0.0, 1.0)


def in_noise(spectrum_db, noise_floor_db) -> jnp.ndarray:
  """Where a track holds mostly noise: within `NOISE_MARGIN_DB` of its noise floor (booleans)."""
  return above_noise_weight(spectrum_db, noise_floor_db) == 0


def correction_weight(target_db, input_db, noise_floor_db=None) -> jnp.ndarray:
  """Where an EQ should correct: where the target carries energy and over the track's whole
  audible band (fading out beneath it, to `CORRECTION_BELOW_DB`), and, given the track's noise
  floor (`spectrum_and_noise_floor`), where the track stands out of it."""
  weight = audible_weight(target_db) * audible_weight(input_db, CORRECTION_BELOW_DB)
  if noise_floor_db is not None:
    weight = weight * above_noise_weight(input_db, noise_floor_db)
  return weight


def soft_limit(curve_db, max_db: float = MAX_DIFFERENCE_DB,
               knee_db: float = LIMIT_KNEE_DB) -> jnp.ndarray:
  """Values within ±`knee_db` unchanged; beyond, compressed smoothly to stay inside ±`max_db`."""
  if not 0 <= knee_db < max_db:
    raise ValueError(f"knee_db={knee_db!r} and max_db={max_db!r}: expected 0 <= knee < max")
  curve_db = jnp.asarray(curve_db)
  magnitude, room = jnp.abs(curve_db), max_db - knee_db
  limited = knee_db + room * jnp.tanh(jnp.maximum(magnitude - knee_db, 0.0) / room)
  return jnp.sign(curve_db) * jnp.where(magnitude > knee_db, limited, magnitude)


def difference(target_db, input_db, weight=None, smoothing_octaves: float = D_SMOOTHING_OCTAVES,
               max_db: float = MAX_DIFFERENCE_DB) -> jnp.ndarray:
  """The correction an EQ should make: target − input, smoothed, centred on the audible band,
  faded to 0 outside it, and kept within ±`max_db` (`soft_limit`).

  `weight` is the audible band (`correction_weight(target_db, input_db)` unless given; ones
  for a correction everywhere).
  """
  if not max_db > LIMIT_KNEE_DB:
    raise ValueError(f"max_db={max_db!r} must be > {LIMIT_KNEE_DB} dB")
  weight = correction_weight(target_db, input_db) if weight is None else jnp.asarray(weight)
  d = smooth(zero_centre(target_db) - zero_centre(input_db), smoothing_octaves)
  return soft_limit(weight * zero_centre(d, weight), max_db)


def quiet_band(spectrum_db, noise_floor_db=None) -> jnp.ndarray:
  """Where the EQ may boost at most `QUIET_BOOST_DB`: where the track has no energy
  (`without_energy`) or, given its noise floor, is mostly noise (booleans)."""
  quiet = without_energy(spectrum_db)
  if noise_floor_db is not None:
    quiet = quiet | in_noise(spectrum_db, noise_floor_db)
  return quiet


def fundamental_octave(input_db, pitch_hz=None) -> jnp.ndarray:
  """log2 of each track's fundamental (Hz): its pitch where it has one under
  `FUNDAMENTAL_MAX_HZ`, else the strongest point of `input_db` under `FUNDAMENTAL_SEARCH_HZ`."""
  strongest = jnp.argmax(jnp.where(FREQS < FUNDAMENTAL_SEARCH_HZ, jnp.asarray(input_db), -jnp.inf),
                         axis=-1)
  found = jnp.asarray(np.log2(FREQS), jnp.float32)[strongest]
  if pitch_hz is None:
    return found
  pitch_hz = jnp.asarray(pitch_hz, jnp.float32)
  pitched = jnp.isfinite(pitch_hz) & (pitch_hz > 0) & (pitch_hz < FUNDAMENTAL_MAX_HZ)
  return jnp.where(pitched, jnp.log2(jnp.where(pitched, pitch_hz, 1.0)), found)


def without_cut_at_fundamental(curve_db, input_db, pitch_hz=None, share=1.0) -> jnp.ndarray:
  """`curve_db` with its cuts near the track's fundamental (`fundamental_octave`) undone by
  `share` (`(...)`, 0–1: how much of the track's target is a drum's or a bass's)."""
  distance = jnp.abs(jnp.asarray(np.log2(FREQS), jnp.float32)
                     - fundamental_octave(input_db, pitch_hz)[..., None])
  near = jnp.clip(2.0 - distance / FUNDAMENTAL_OCTAVES, 0.0, 1.0)
  keep = near * jnp.asarray(share, jnp.float32)[..., None]
  return curve_db - keep * jnp.minimum(curve_db, 0.0)


class Correction(NamedTuple):
  """What an EQ is asked to do for a track, each `(..., 256)` on `FREQS`: `curve`, the
  difference to match (dB); `weight`, the band it corrects (`correction_weight`); `quiet`,
  where it may boost at most `QUIET_BOOST_DB` (`quiet_band`)."""
  curve: jnp.ndarray
  weight: jnp.ndarray
  quiet: jnp.ndarray


@jax.jit
def correction(target_db, input_db, noise_floor_db=None, pitch_hz=None,
               keep_fundamental=0.0) -> Correction:
  """The one correction of a track: inference (`AutoEQ`), fine-tuning, the benchmarks and the
  tests all build the difference curve, its band and its quiet band here, noise floor
  included.

  What makes the EQ sensible is in the correction, not in a matcher: the curve is 0 (flat
  asked) where the track or its target has no audible content and where the track is mostly
  noise, soft-limited where a correction would be wild, and, as far as `keep_fundamental`
  (`(...)`, 0–1: the share of drum and bass classes in the target,
  `jaxeq.classes.KEEPS_FUNDAMENTAL`) says, without a cut at the track's fundamental (its
  `pitch_hz`, `without_cut_at_fundamental`); the quiet band is where no boost may go over
  `QUIET_BOOST_DB`. A matcher's job is to match the curve within that rule
  (`jaxeq.losses.correction_error`).
  """
  weight = correction_weight(target_db, input_db, noise_floor_db)
  curve = without_cut_at_fundamental(difference(target_db, input_db, weight), input_db, pitch_hz,
                                     keep_fundamental)
  return Correction(curve, weight, quiet_band(input_db, noise_floor_db))
