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

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import soxr
from flax import traverse_util

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

class Musicnn(nn.Module):
  """musicnn's `build_musicnn`: musically motivated front end, dense mid-end, pooled back end.

  Front end, on batch-normalised log-mel (the input's only normalisation is that learned
  batch norm): two "timbral" convolutions 7 frames × 40 % and 70 % of the bands, and three
  "temporal" ones of 128, 64 and 32 frames × 1 band, each max-pooled over all bands: 561
  features a frame. Mid-end: three 1-D convolutions of 7 frames, the last two residual.
  Back end: every frame's features (front end and mid-end, 753) max- and mean-pooled over
  time, then a dense layer (the 200-d "penultimate" embedding, batch-normalised after its
  ReLU, so it can be negative) and the tag logits. Any number of frames works; the model was
  trained on 187.
  """
  num_tags: int = 50
  timbral_features: int = 204  # int(1.6 · 128), musicnn's num_filt of 1.6
  temporal_features: int = 51  # int(1.6 · 32)
  midend_features: int = 64
  backend_units: int = 200

  @nn.compact
  def __call__(self, log_mels: jax.Array) -> dict[str, jax.Array]:
    """`(batch, frames, 96)` → logits, probabilities (sigmoid: tags are not exclusive),
    penultimate `(batch, 200)` and the pooled mid-end features `(batch, 753)`."""
    # tf.compat.v1.layers.batch_normalization's epsilon, not Flax's default.
    norm = functools.partial(nn.BatchNorm, use_running_average=True, epsilon=1e-3)
    x = norm(name="input_bn")(log_mels[..., None])
    bands = x.shape[-2]
    front = []
    for label, fraction in (("74", 0.4), ("77", 0.7)):
      # musicnn pads time only (zeros, after the batch norm): "same" in time, "valid" in bands.
      conv = nn.Conv(self.timbral_features, (7, int(fraction * bands)),
                     padding=((3, 3), (0, 0)), name=f"timbral_{label}")
      front.append(jnp.max(norm(name=f"timbral_{label}_bn")(nn.relu(conv(x))), axis=-2))
    for length in (128, 64, 32):
      # TensorFlow's "same" for an even kernel: one frame more after than before.
      conv = nn.Conv(self.temporal_features, (length, 1),
                     padding=(((length - 1) // 2, length // 2), (0, 0)), name=f"temporal_{length}")
      front.append(jnp.max(norm(name=f"temporal_{length}_bn")(nn.relu(conv(x))), axis=-2))
    y = jnp.concatenate(front, axis=-1)
    frames = [y]
    for i in (1, 2, 3):
      conv = nn.Conv(self.midend_features, (7,), padding=((3, 3),), name=f"midend_{i}")
      z = norm(name=f"midend_{i}_bn")(nn.relu(conv(y)))
      y = z if i == 1 else z + y
      frames.append(y)
    features = jnp.concatenate(frames, axis=-1)
    max_pool = jnp.max(features, axis=-2)
    mean_pool = jnp.mean(features, axis=-2)
    # musicnn flattens (features, [max, mean]): the two interleave, feature by feature.
    pooled = jnp.stack([max_pool, mean_pool], axis=-1).reshape(*max_pool.shape[:-1], -1)
    pooled = norm(name="pool_bn")(pooled)
    penultimate = norm(name="penultimate_bn")(
        nn.relu(nn.Dense(self.backend_units, name="penultimate")(pooled)))
    logits = nn.Dense(self.num_tags, name="tags")(penultimate)
    return {"logits": logits, "probabilities": nn.sigmoid(logits), "penultimate": penultimate,
            "mean_pool": mean_pool, "max_pool": max_pool}


@functools.lru_cache(maxsize=None)
def _variable_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """`Musicnn`'s flattened variables → their shapes; traced once, however many models load."""
  expected = traverse_util.flatten_dict(jax.eval_shape(lambda: Musicnn().init(
      jax.random.key(0), jnp.zeros((1, PATCH_FRAMES, N_MELS), jnp.float32))))
  return {key: value.shape for key, value in expected.items()}


def load_variables(name: str = "msd", path=None) -> dict:
  """The pretrained `{"params": ..., "batch_stats": ...}` of musicnn model `name` ("msd" or
  "mtt"), read without pickle from the shipped `.npz` (or `path`), checked against `Musicnn`'s
  structure and shapes so that a wrong file fails here, not as silent nonsense."""
  if path is None:
    if name not in MODELS:
      raise ValueError(f"musicnn model {name!r}: expected one of {', '.join(MODELS)}")
    path = ASSETS / f"musicnn_{name}.npz"
  with np.load(path, allow_pickle=False) as data:
    flat = {tuple(key.split("/")): np.asarray(data[key], np.float32) for key in data.files}
  got = {key: value.shape for key, value in flat.items()}
  want = _variable_shapes()
  if got != want:
    wrong = sorted("/".join(k) for k in set(got) | set(want) if got.get(k) != want.get(k))
    raise ValueError(f"{path}: not musicnn weights (missing, extra or misshapen: {wrong[:5]})")
  # device_put, not jnp.asarray: that compiles a copy program for each of the 17 shapes.
  return traverse_util.unflatten_dict({key: jax.device_put(value) for key, value in flat.items()})


@jax.jit
def apply(variables: dict, log_mels: jax.Array) -> dict[str, jax.Array]:
  """`Musicnn` on `(batch, frames, 96)` log-mel patches, jitted."""
  return Musicnn(num_tags=variables["params"]["tags"]["bias"].shape[0]).apply(variables, log_mels)


@dataclasses.dataclass(frozen=True, eq=False)
class Tagger:
  """A pretrained musicnn bound to its tag names: audio in, one row per patch out."""
  name: str
  tags: tuple[str, ...]
  variables: dict

  def __call__(self, audio, sample_rate: int, hop: int = PATCH_FRAMES,
               batch: int = 64) -> dict[str, np.ndarray]:
    """`apply`'s outputs, one row per 3 s patch (every `hop` frames of 16 ms), for audio
    shaped as soundfile gives it at any rate. Batches of `batch` patches bound the memory."""
    windows = patches(log_mel(audio_at_16k(audio, sample_rate)), hop)
    outputs = [apply(self.variables, windows[i:i + batch]) for i in range(0, len(windows), batch)]
    return {key: np.concatenate([np.asarray(o[key]) for o in outputs]) for key in outputs[0]}


def load(name: str = "msd") -> Tagger:
  """The shipped musicnn tagger `name`: "msd" (Million Song Dataset, 50 genre/mood/era tags)
  or "mtt" (MagnaTagATune, 50 tags with many instruments)."""
  if name not in MODELS:
    raise ValueError(f"musicnn model {name!r}: expected one of {', '.join(MODELS)}")
  return Tagger(name, MODELS[name][0], load_variables(name))
