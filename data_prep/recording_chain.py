"""A random recording chain for training audio: what a room, a microphone and the gear do.

Our training clips are dry samples; real recordings have a microphone's colour, a room, noise,
compression, saturation, band-limiting and lossy codecs. `apply_chain` runs a clip through a
random selection of these, in the order a signal chain has them:

    eq (microphone) -> room -> noise -> compression -> saturation -> band_limit -> codec

Every stage is real DSP from a well-kept library, not a hand-rolled effect:

- eq: `data_prep.colouration.random_colouration` through `jaxeq.filtering.apply_eq`;
- room: a shoebox room's impulse response from pyroomacoustics (image source method, absorption
  from a drawn RT60 by `pra.inverse_sabine`), convolved with scipy; or pedalboard's Reverb
  (Freeverb), a cheaper kind;
- noise: white, pink or brown hiss (white noise shaped in the frequency domain) or mains hum
  (50/60 Hz and harmonics), at a drawn SNR below the clip's active RMS;
- compression: pedalboard's Compressor, then sometimes its Limiter;
- saturation: pedalboard's Distortion or Clipping, with an RMS makeup;
- band_limit: pedalboard's first-order High/LowpassFilter, cascaded for 12 or 24 dB/octave;
  rarely a telephone band;
- codec: an MP3 (LAME, pedalboard) or Ogg Vorbis (libsndfile, through soundfile) round trip,
  rarely a low-bitrate constant-rate MP3; realigned to the input by cross-correlation.

Each stage has a sub-config with a `probability`, so an experiment can measure which stages
matter by switching one off (`config.room.probability = 0`). Each stage draws from its own
generator, spawned from the caller's, so switching one stage off leaves every other stage's
draws unchanged.

Level is not a cue: the output is scaled back to the input's peak. Level-dependent stages
(compression, saturation) see the clip gain-staged to a 0 dBFS peak, so their thresholds and
drive are relative to the clip's peak whatever its level. The output always has the input's
length: a room's or reverb's tail past the end of the clip is cut, as when a recording is cut
at the end of the note, so a 50 ms one-shot stays 50 ms (its tail mostly cut).
"""

from __future__ import annotations

import io
import math

import ml_collections
import numpy as np
import pedalboard
import pyroomacoustics as pra
import soundfile as sf
from scipy import signal

from data_prep.colouration import random_colouration
from jaxeq.filtering import apply_eq

STAGES = ("eq", "room", "noise", "compression", "saturation", "band_limit", "codec")
SPEED_OF_SOUND = 343.0  # m/s, pyroomacoustics' default
_TINY = 1e-12


def default_config() -> ml_collections.ConfigDict:
  """Each stage's probability and ranges; `(lo, hi)` ranges are drawn uniformly unless noted."""
  return ml_collections.ConfigDict({
      "eq": {"probability": 0.7},  # data_prep.colouration's own ranges
      "room": {
          "probability": 0.5,
          "shoebox_fraction": 0.7,     # else pedalboard's Reverb (Freeverb)
          "length_m": (3.0, 15.0),     # length and width of the shoebox
          "height_m": (3.0, 8.0),
          "rt60_s": (0.15, 1.2),       # log-uniform, within what the room allows (see _room)
          "mic_distance_m": (0.3, 4.0),  # log-uniform: sets the direct-to-reverberant balance
          "wall_margin_m": 0.3,        # source and microphone stay this far from the walls
          # The image-source order grows with RT60 and shrinks with room size; its cost grows
          # as order^3 (order 40: about 0.1 s at 44.1 kHz). A room cannot reverberate longer
          # than this order reaches, so long RT60s are drawn only in large enough rooms.
          "max_order": 40,
          "wet": (0.5, 1.0),           # share of the room's signal; the rest is the dry signal
          "freeverb_room_size": (0.1, 0.9),
          "freeverb_damping": (0.1, 0.9),
          "freeverb_wet_level": (0.05, 0.4),
      },
      "noise": {
          "probability": 0.5,
          "snr_db": (15.0, 60.0),      # below the clip's active RMS (see active_rms)
          # Relative weights of the noise kinds; pink and brown are 1/f and 1/f^2 in power.
          "kinds": {"white": 1.0, "pink": 1.0, "brown": 0.5, "hum": 0.5},
          "hum_harmonics": (1, 8),     # integers, both included
      },
      "compression": {
          "probability": 0.4,
          "threshold_below_peak_db": (6.0, 30.0),
          "ratio": (1.5, 8.0),         # log-uniform
          "attack_ms": (0.1, 3.0),     # log-uniform; fast: it catches transients
          "release_ms": (30.0, 400.0),  # log-uniform
          "limiter_probability": 0.3,
          "limiter_threshold_below_peak_db": (1.0, 8.0),
          "limiter_release_ms": (30.0, 300.0),
      },
      "saturation": {
          "probability": 0.1,
          "clipping_fraction": 0.3,    # else tanh Distortion
          "drive_db": (0.0, 20.0),
          "clip_below_peak_db": (1.0, 10.0),
      },
      "band_limit": {
          "probability": 0.4,
          "highpass_probability": 0.6,
          "highpass_hz": (20.0, 200.0),  # log-uniform
          "lowpass_probability": 0.6,
          "lowpass_hz": (3000.0, 20000.0),  # log-uniform, kept below 0.45 x the sample rate
          "slopes_db_per_octave": (6, 12, 24),  # one drawn per filter; 6 per first-order stage
          "telephone_probability": 0.03,  # instead: 300 Hz - 3.4 kHz at 24 dB/octave
      },
      "codec": {
          "probability": 0.3,
          "kinds": {"mp3": 0.5, "vorbis": 0.4, "mp3_low": 0.1},
          "mp3_vbr_quality": (2.0, 9.0),  # LAME VBR: 2 ~ 190 kb/s, 9 ~ 65 kb/s
          "vorbis_compression": (0.0, 0.9),  # libsndfile: 0 ~ 240 kb/s, 0.9 ~ 65 kb/s
          "mp3_low_compression": (0.95, 0.99),  # constant rate, ~ 48 to 32 kb/s
      },
  })


def apply_chain(audio: np.ndarray, sample_rate: int, rng: np.random.Generator,
                config: ml_collections.ConfigDict) -> tuple[np.ndarray, dict]:
  """`(audio through a random recording chain, {stage: its parameters} of the stages applied)`.

  `audio` is mono `(samples,)`; the output is float32, of the same length, finite, with the
  input's peak. The description is JSON-able, for the manifest. Deterministic given `rng`'s
  state; each stage draws from its own child generator (see the module docstring).
  """
  x = np.asarray(audio)
  if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.floating):
    raise ValueError(f"audio must be mono float (samples,), got {x.dtype} {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("audio has NaN or infinite samples")
  stage_rngs = dict(zip(STAGES, rng.spawn(len(STAGES))))
  input_peak = float(np.max(np.abs(x)))
  y = _at_peak(x.astype(np.float32), 1.0)
  applied = {}
  for stage in STAGES:
    stage_rng, stage_config = stage_rngs[stage], config[stage]
    if stage_rng.random() >= stage_config.probability:
      continue
    y, params = _STAGE_FNS[stage](y, sample_rate, stage_rng, stage_config)
    y = np.nan_to_num(np.asarray(y, np.float32)[:len(x)], nan=0.0, posinf=0.0, neginf=0.0)
    if params:  # a band_limit that drew no filter did nothing
      applied[stage] = params
  if not applied:
    return x.astype(np.float32), applied  # exactly the input, with no rescaling error
  return _at_peak(y, input_peak), applied


def active_rms(audio: np.ndarray, frame: int = 1024, below_db: float = 40.0) -> float:
  """RMS over the frames within `below_db` of the loudest: a level that rests do not lower."""
  x = np.asarray(audio, np.float64)
  frames = max(1, len(x) // frame)
  power = np.mean(x[:frames * frame].reshape(frames, -1) ** 2, axis=1) if len(x) >= frame else (
      np.array([np.mean(x ** 2)]))
  active = power[power >= np.max(power) * 10 ** (-below_db / 10)]
  return float(np.sqrt(np.mean(active))) if active.size else 0.0


# --- stages: (audio float32, rate, rng, stage config) -> (audio, description) --------------


def _eq(x, sample_rate, rng, config):
  eq = random_colouration(rng)
  return apply_eq(x, sample_rate, eq), eq.to_dict()


def _room(x, sample_rate, rng, config):
  if rng.random() >= config.shoebox_fraction:
    params = {"kind": "freeverb",
              "room_size": _uniform(rng, config.freeverb_room_size),
              "damping": _uniform(rng, config.freeverb_damping),
              "wet_level": _uniform(rng, config.freeverb_wet_level), "dry_level": 1.0,
              "width": 0.0}
    reverb = pedalboard.Reverb(**{k: v for k, v in params.items() if k != "kind"})
    return reverb(x, sample_rate), params
  rir, params = shoebox_rir(sample_rate, rng, config)
  wet = _uniform(rng, config.wet)
  params["wet"] = wet
  wet_signal = signal.oaconvolve(x.astype(np.float64), rir)[:len(x)]
  return (1 - wet) * x + wet * wet_signal, params


def shoebox_rir(sample_rate: int, rng: np.random.Generator,
                config: ml_collections.ConfigDict) -> tuple[np.ndarray, dict]:
  """`(impulse response, its parameters)` of a random shoebox room, from pyroomacoustics.

  The response is scaled to a unit direct sound and starts just before it (the propagation
  delay removed, less the fractional-delay filter's half length), so onsets keep their time.

  RT60 is drawn log-uniformly within `config.rt60_s` and what the room allows: Sabine
  absorption below 1 (`inverse_sabine`'s limit: a large room cannot be very dry) and a decay
  the image sources up to `config.max_order` reach (about order x longest side / c, with 20 %
  spare), so the described RT60 is the one the response has (measured, as the T20 of
  the tail after the direct sound: 1.05 to 1.45 x the drawn RT60 over 20 rooms).
  """
  dims = [_uniform(rng, config.length_m), _uniform(rng, config.length_m),
          _uniform(rng, config.height_m)]
  volume = dims[0] * dims[1] * dims[2]
  surface = 2 * (dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
  driest = 24 * math.log(10) * volume / (SPEED_OF_SOUND * surface) / 0.95
  longest = config.max_order * max(dims) / (1.2 * SPEED_OF_SOUND)
  lo, hi = max(config.rt60_s[0], driest), min(config.rt60_s[1], longest)
  rt60 = _log_uniform(rng, (lo, hi)) if lo < hi else lo
  sabine_absorption, _ = pra.inverse_sabine(rt60, dims, c=SPEED_OF_SOUND)
  # Image sources decay as Eyring's formula says, -ln(1 - a) per reflection; Sabine's a is
  # that rate, so the walls get 1 - exp(-a) (else a dry room decays up to twice too fast).
  absorption = 1.0 - math.exp(-sabine_absorption)
  order = int(np.clip(math.ceil(1.2 * rt60 * SPEED_OF_SOUND / max(dims)), 2, config.max_order))
  margin = config.wall_margin_m
  source = [float(rng.uniform(margin, d - margin)) for d in dims]
  distance = _log_uniform(rng, config.mic_distance_m)
  best = (-1.0, None)
  for _ in range(32):  # a direction in which the drawn distance fits, else the roomiest tried
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction) + _TINY
    # Along `direction`, the farthest the microphone can be from the source inside the margin.
    reach = min(((d - margin - s) / u if u > 0 else (margin - s) / u) if abs(u) > 1e-9
                else np.inf for d, s, u in zip(dims, source, direction))
    best = max(best, (reach, direction), key=lambda b: b[0])
    if reach >= distance:
      break
  reach, direction = best
  distance = float(min(distance, max(reach, 0.05)))
  mic = [s + distance * u for s, u in zip(source, direction)]
  room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(float(absorption)),
                     max_order=order, air_absorption=False, ray_tracing=False,
                     use_rand_ism=False)
  room.add_source(source)
  room.add_microphone(mic)
  room.compute_rir()
  rir = np.asarray(room.rir[0][0], np.float64)
  direct = int(np.argmax(np.abs(rir)))
  rir = rir[max(0, direct - pra.constants.get("frac_delay_length") // 2):] / rir[direct]
  params = {"kind": "shoebox", "dims_m": [round(d, 3) for d in dims], "rt60_s": round(rt60, 4),
            "absorption": round(float(absorption), 4), "max_order": order,
            "source_m": [round(p, 3) for p in source], "mic_m": [round(p, 3) for p in mic],
            "mic_distance_m": round(distance, 3)}
  return rir, params


def _noise(x, sample_rate, rng, config):
  kinds = list(config.kinds)
  weights = np.array([config.kinds[k] for k in kinds], np.float64)
  kind = str(rng.choice(kinds, p=weights / weights.sum()))
  snr_db = _uniform(rng, config.snr_db)
  params = {"kind": kind, "snr_db": snr_db}
  n = len(x)
  if kind == "hum":
    fundamental = float(rng.choice((50.0, 60.0)))
    harmonics = int(rng.integers(config.hum_harmonics[0], config.hum_harmonics[1] + 1))
    t = np.arange(n) / sample_rate
    noise = np.zeros(n)
    for k in range(1, harmonics + 1):
      if k * fundamental < sample_rate / 2:
        noise += rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * fundamental * t
                                                    + rng.uniform(0, 2 * np.pi))
    params.update(fundamental_hz=fundamental, harmonics=harmonics)
  else:
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
    # White noise shaped in the frequency domain: power ~ 1/f^exponent, flat below 20 Hz.
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 20.0)
    noise = np.fft.irfft(spectrum * freqs ** (-exponent / 2), n)
  noise_rms = float(np.sqrt(np.mean(noise ** 2)))
  level = active_rms(x) * 10 ** (-snr_db / 20)
  if noise_rms > _TINY:
    x = x + noise * (level / noise_rms)
  return x, params


def _compression(x, sample_rate, rng, config):
  x = _at_peak(x, 1.0)  # gain-staged to 0 dBFS: the threshold is relative to the peak
  params = {"threshold_db": -_uniform(rng, config.threshold_below_peak_db),
            "ratio": _log_uniform(rng, config.ratio),
            "attack_ms": _log_uniform(rng, config.attack_ms),
            "release_ms": _log_uniform(rng, config.release_ms)}
  y = pedalboard.Compressor(**params)(x, sample_rate)
  if rng.random() < config.limiter_probability:
    y = _at_peak(y, 1.0)
    limiter = {"threshold_db": -_uniform(rng, config.limiter_threshold_below_peak_db),
               "release_ms": _log_uniform(rng, config.limiter_release_ms)}
    y = pedalboard.Limiter(**limiter)(y, sample_rate)
    params["limiter"] = limiter
  return y, params


def _saturation(x, sample_rate, rng, config):
  x = _at_peak(x, 1.0)  # gain-staged to 0 dBFS: drive and threshold are relative to the peak
  if rng.random() < config.clipping_fraction:
    params = {"kind": "clipping", "threshold_db": -_uniform(rng, config.clip_below_peak_db)}
    y = pedalboard.Clipping(threshold_db=params["threshold_db"])(x, sample_rate)
  else:
    params = {"kind": "distortion", "drive_db": _uniform(rng, config.drive_db)}
    y = pedalboard.Distortion(drive_db=params["drive_db"])(x, sample_rate)
  # Makeup: the same active RMS as before, so loudness is not what tells a saturated clip.
  before, after = active_rms(x), active_rms(y)
  return (y * (before / after) if after > _TINY else y), params


def _band_limit(x, sample_rate, rng, config):
  top = 0.45 * sample_rate
  if rng.random() < config.telephone_probability:
    filters = {"highpass": (300.0, 24), "lowpass": (min(3400.0, top), 24)}
  else:
    filters = {}
    if rng.random() < config.highpass_probability:
      filters["highpass"] = (_log_uniform(rng, config.highpass_hz),
                             int(rng.choice(config.slopes_db_per_octave)))
    if rng.random() < config.lowpass_probability:
      filters["lowpass"] = (min(_log_uniform(rng, config.lowpass_hz), top),
                            int(rng.choice(config.slopes_db_per_octave)))
  plugins = []
  for name, (cutoff, slope) in filters.items():
    plugin = pedalboard.HighpassFilter if name == "highpass" else pedalboard.LowpassFilter
    plugins += [plugin(cutoff_frequency_hz=cutoff) for _ in range(max(1, slope // 6))]
  params = {name: {"cutoff_hz": round(cutoff, 1), "slope_db_per_octave": slope}
            for name, (cutoff, slope) in filters.items()}
  return (pedalboard.Pedalboard(plugins)(x, sample_rate) if plugins else x), params


def _codec(x, sample_rate, rng, config):
  kinds = list(config.kinds)
  weights = np.array([config.kinds[k] for k in kinds], np.float64)
  kind = str(rng.choice(kinds, p=weights / weights.sum()))
  peak = float(np.max(np.abs(x)))
  x = _at_peak(x, 0.7)  # -3 dBFS into the encoder: decoders may overshoot, not clip
  if kind == "mp3":
    params = {"kind": kind, "vbr_quality": _uniform(rng, config.mp3_vbr_quality)}
    y = pedalboard.MP3Compressor(vbr_quality=params["vbr_quality"])(x, sample_rate)
  else:
    level = _uniform(rng, config.vorbis_compression if kind == "vorbis"
                     else config.mp3_low_compression)
    params = {"kind": kind, "compression_level": level}
    options = ({"format": "OGG", "subtype": "VORBIS"} if kind == "vorbis" else
               {"format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "CONSTANT"})
    buffer = io.BytesIO()
    sf.write(buffer, x, sample_rate, compression_level=level, **options)
    buffer.seek(0)
    y, _ = sf.read(buffer, dtype="float32")
    y = y if y.ndim == 1 else y.mean(axis=1)
  lag = _lag(x, y)
  params["delay_samples"] = lag
  y = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, y.dtype), y])
  y = np.concatenate([y, np.zeros(max(0, len(x) - len(y)), y.dtype)])[:len(x)]
  return _at_peak(y, peak), params


_STAGE_FNS = {"eq": _eq, "room": _room, "noise": _noise, "compression": _compression,
              "saturation": _saturation, "band_limit": _band_limit, "codec": _codec}


# --- helpers -------------------------------------------------------------------------------


def _lag(reference: np.ndarray, delayed: np.ndarray, max_lag: int = 4096,
         segment: int = 1 << 17) -> int:
  """The delay of `delayed` behind `reference` (cross-correlation peak over a leading segment)."""
  a = np.asarray(reference[:segment], np.float64)
  b = np.asarray(delayed[:segment + max_lag], np.float64)
  if not (np.any(a) and np.any(b)):
    return 0
  corr = signal.correlate(b, a, mode="full", method="fft")
  lags = np.arange(-(len(a) - 1), len(b))
  keep = np.abs(lags) <= max_lag
  return int(lags[keep][np.argmax(corr[keep])])


def _at_peak(x: np.ndarray, peak: float) -> np.ndarray:
  """`x` scaled to the given peak (zeros stay zeros)."""
  x = np.asarray(x, np.float32)
  current = float(np.max(np.abs(x))) if x.size else 0.0
  if current <= _TINY or not math.isfinite(current):
    return np.zeros_like(x)
  return (x * np.float32(peak / current)).astype(np.float32)


def _uniform(rng: np.random.Generator, bounds) -> float:
  return round(float(rng.uniform(bounds[0], bounds[1])), 4)


def _log_uniform(rng: np.random.Generator, bounds) -> float:
  return float(f"{np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))):.4g}")
