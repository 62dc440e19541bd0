"""musicnn (Pons & Serra, 2019) in Flax: a music tagger that has heard real music, as a backbone.

    from jaxeq.backbones import musicnn
    tagger = musicnn.load()                      # "msd" (Million Song Dataset) or "mtt"
    out = tagger(audio, sample_rate)             # one row per 3 s patch
    out["penultimate"]                           # (patches, 200): features for a classifier
    dict(zip(tagger.tags, out["probabilities"].mean(0)))

Inside a network of our own, the parts are separate and pure: `log_mel` is the front end on
16 kHz audio (jit-able, batched over leading axes), `patches` cuts it into the 187-frame
patches the model was trained on, `Musicnn` is the linen module on `(batch, frames, 96)`
log-mel patches, and `load_variables` its pretrained `{"params", "batch_stats"}`.

The network is musicnn's `MSD_musicnn` / `MTT_musicnn` (musicnn 0.1.0, ISC; the weights, the
mel filter bank, their licence and provenance are in `jaxeq/assets/backbones/`, written by
`data_prep/convert_musicnn.py`, which also records what the original TensorFlow graph outputs
for `tests/test_musicnn.py`). Batch norm always uses the running statistics from the
checkpoint, and the dropout of musicnn's training is left out: this is the inference graph.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import soxr

from jaxeq import exported, forward_store
from jaxeq.audio_io import check_audio

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "backbones"
MEL_FILTERS = ASSETS / "musicnn_mel_filters.npy"
# musicnn's input (musicnn/configuration.py): 16 kHz audio, 512-point STFT every 256 samples,
# 96 mel bands, patches of 187 frames (3 s).
SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
# The largest float16: musicnn rounds the mel power to float16 (below), which would turn a
# larger value into inf and the whole output into NaN.
_FLOAT16_MAX = 65504.0

MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy")
MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral")
# Our name → (the tags in output order, what the model was trained on).
MODELS = {"msd": (MSD_TAGS, "Million Song Dataset"), "mtt": (MTT_TAGS, "MagnaTagATune")}


# --- front end -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def mel_filterbank() -> np.ndarray:
  """`(257, 96)` float32: librosa's Slaney-normalised mel filters, 0 Hz to 8 kHz, as musicnn's
  `librosa.feature.melspectrogram` applies them, read from the shipped
  `musicnn_mel_filters.npy` (`librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).T`, written
  by `data_prep/convert_musicnn.py`): importing librosa and numba would cost every run about
  0.9 s for this one array. `tests/test_musicnn.py` holds the file equal to librosa's."""
  filters = np.load(MEL_FILTERS, allow_pickle=False)
  if filters.shape != (N_FFT // 2 + 1, N_MELS) or filters.dtype != np.float32:
    raise ValueError(f"{MEL_FILTERS}: {filters.dtype} {filters.shape}, expected musicnn's "
                     f"float32 ({N_FFT // 2 + 1}, {N_MELS}) mel filter bank")
  filters.setflags(write=False)
  return filters


@jax.jit
def log_mel(audio) -> jax.Array:
  """16 kHz audio `(..., samples)` → musicnn's input `(..., 1 + samples // 256, 96)`.

  What musicnn's extractor computes: a centred STFT (reflect-padded, as librosa did when the
  model was trained), the power through the mel filters, rounded to float16 as the extractor
  stores it, then log10(10000 · mel + 1) in float32. The float16 rounding stays: the model
  was trained and released with it. The log is taken in float32, as NumPy < 2 did: under
  NumPy 2 the extractor's own line keeps float16 and overflows to inf for loud bands.
  """
  audio = jnp.asarray(audio, jnp.float32)
  pad = [(0, 0)] * (audio.ndim - 1) + [(N_FFT // 2, N_FFT // 2)]
  padded = jnp.pad(audio, pad, mode="reflect")
  count = 1 + (padded.shape[-1] - N_FFT) // HOP
  # Frame i is samples [256 i, 256 i + 512). The index is computed in the program (iota): as
  # a NumPy array it would be a constant of the program (23 MB for a 3-minute track), slow to
  # trace and to load from the compilation cache.
  index = (jax.lax.broadcasted_iota(jnp.int32, (count, N_FFT), 0) * HOP
           + jax.lax.broadcasted_iota(jnp.int32, (count, N_FFT), 1))
  frames = padded[..., index]
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
  spectrum = jnp.fft.rfft(frames * window.astype(np.float32), axis=-1)
  power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
  mel = jnp.minimum(power @ mel_filterbank(), _FLOAT16_MAX)
  mel = mel.astype(jnp.float16).astype(jnp.float32)
  return jnp.log10(10000.0 * mel + 1.0)


@functools.partial(jax.jit, static_argnames="hop")
def patches(log_mels, hop: int = PATCH_FRAMES) -> jax.Array:
  """`(..., frames, 96)` → `(..., patches, 187, 96)`, a patch starting every `hop` frames.

  As musicnn's extractor: without overlap by default, and a last partial patch is left out.
  A clip under 3 s is repeated until it fills one patch, as musicnn's training padded its
  short clips ("repeat-pad"), so the network never sees padding it was not trained on.
  """
  log_mels = jnp.asarray(log_mels)
  frames = log_mels.shape[-2]
  if frames < PATCH_FRAMES:
    reps = [1] * log_mels.ndim
    reps[-2] = -(-PATCH_FRAMES // frames)
    log_mels, frames = jnp.tile(log_mels, reps), reps[-2] * frames
  starts = np.arange(0, frames - PATCH_FRAMES + 1, hop)
  return log_mels[..., starts[:, None] + np.arange(PATCH_FRAMES), :]


def audio_at_16k(audio, sample_rate: int) -> np.ndarray:
  """Mono float32 at 16 kHz, as musicnn's `librosa.load(..., sr=16000)` gives it: the channels
  averaged, then resampled (soxr, high quality: librosa's default resampler)."""
  audio = check_audio(audio, sample_rate).astype(np.float32, copy=False)
  mono = audio.mean(axis=1) if audio.ndim == 2 else audio
  if sample_rate != SAMPLE_RATE:
    mono = soxr.resample(mono, sample_rate, SAMPLE_RATE, quality="HQ")
  return np.asarray(mono, np.float32)


# --- the network -----------------------------------------------------------------------------

# `Musicnn` and `apply` live in `musicnn_network` (Flax, which a process reading the exported
# networks never imports) and answer here too.
_NETWORK_NAMES = ("Musicnn", "apply")


def __getattr__(name):
  if name in _NETWORK_NAMES:
    from jaxeq.backbones import musicnn_network
    return getattr(musicnn_network, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=None)
def network() -> forward_store.Forward:
  """`apply` on `(batch, 187, 96)` patches and the shapes of `Musicnn`'s variables: traced
  once however many models load, or read from the store of exported networks
  (`jaxeq.forward_store`)."""
  def trace() -> forward_store.Forward:
    from jaxeq.backbones.musicnn_network import Musicnn, apply
    return forward_store.Forward(apply, jax.eval_shape(lambda: Musicnn().init(
        jax.random.key(0), jnp.zeros((1, PATCH_FRAMES, N_MELS), jnp.float32))))

  return forward_store.forward("musicnn", {"num_tags": len(MSD_TAGS)}, trace,
                               (PATCH_FRAMES, N_MELS))


def _variable_shapes() -> dict[str, tuple[int, ...]]:
  """`Musicnn`'s flattened variables → their shapes."""
  return {key: value.shape for key, value in exported.flatten(network().params_like).items()}


def load_variables(name: str = "msd", path=None) -> dict:
  """The pretrained `{"params": ..., "batch_stats": ...}` of musicnn model `name` ("msd" or
  "mtt"), read without pickle from the shipped `.npz` (or `path`), checked against `Musicnn`'s
  structure and shapes so that a wrong file fails here, not as silent nonsense."""
  if path is None:
    if name not in MODELS:
      raise ValueError(f"musicnn model {name!r}: expected one of {', '.join(MODELS)}")
    path = ASSETS / f"musicnn_{name}.npz"
  with np.load(path, allow_pickle=False) as data:
    flat = {key: np.asarray(data[key], np.float32) for key in data.files}
  got = {key: value.shape for key, value in flat.items()}
  want = _variable_shapes()
  if got != want:
    wrong = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    raise ValueError(f"{path}: not musicnn weights (missing, extra or misshapen: {wrong[:5]})")
  # device_put, not jnp.asarray: that compiles a copy program for each of the 17 shapes.
  return exported.unflatten({key: jax.device_put(value) for key, value in flat.items()})


@dataclasses.dataclass(frozen=True, eq=False)
class Tagger:
  """A pretrained musicnn bound to its tag names: audio in, one row per patch out."""
  name: str
  tags: tuple[str, ...]
  variables: dict

  @property
  def network(self) -> forward_store.Forward:
    return network()

  def __call__(self, audio, sample_rate: int, hop: int = PATCH_FRAMES,
               batch: int = 64) -> dict[str, np.ndarray]:
    """`apply`'s outputs, one row per 3 s patch (every `hop` frames of 16 ms), for audio
    shaped as soundfile gives it at any rate. Batches of `batch` patches bound the memory."""
    windows = patches(log_mel(audio_at_16k(audio, sample_rate)), hop)
    outputs = [self.network.fn(self.variables, windows[i:i + batch])
               for i in range(0, len(windows), batch)]
    return {key: np.concatenate([np.asarray(o[key]) for o in outputs]) for key in outputs[0]}


def load(name: str = "msd") -> Tagger:
  """The shipped musicnn tagger `name`: "msd" (Million Song Dataset, 50 genre/mood/era tags)
  or "mtt" (MagnaTagATune, 50 tags with many instruments)."""
  if name not in MODELS:
    raise ValueError(f"musicnn model {name!r}: expected one of {', '.join(MODELS)}")
  return Tagger(name, MODELS[name][0], load_variables(name))
