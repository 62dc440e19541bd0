"""Convert the pretrained musicnn taggers (Pons & Serra, ISC) to plain `.npz` weights, once.

    pip download musicnn==0.1.0 --no-deps -d /tmp/mnn
    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa==0.11.0
    /tmp/tfvenv/bin/python -m data_prep.convert_musicnn \
        --wheel /tmp/mnn/musicnn-0.1.0-py3-none-any.whl

(from the repository root; `python -m data_prep.convert_musicnn --mel-filters` rewrites only the
mel filter bank, with librosa and without TensorFlow or the wheel). The musicnn wheel on PyPI holds TensorFlow 1 checkpoints of CNNs
trained on the Million Song Dataset (`MSD_musicnn`) and on MagnaTagATune (`MTT_musicnn`): a
model that has heard real music, which our own classifier cannot have from its few sources.
This script is the only place TensorFlow is used, in a throwaway virtualenv: jaxeq runs the
converted weights with `jaxeq.backbones.musicnn`, and never imports TensorFlow.

It writes (a rerun writes the same bytes), for each model,
- `jaxeq/assets/backbones/musicnn_{msd,mtt}.npz`: float32 arrays named as the Flax variables
  (`params/timbral_74/kernel`, `batch_stats/input_bn/mean`, ...), loadable without pickle;
- `jaxeq/assets/backbones/musicnn_mel_filters.npy`: the `(257, 96)` float32 mel filter bank
  musicnn's extractor applies (`librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)`,
  transposed), so that jaxeq computes musicnn's input without importing librosa and numba
  (about 0.9 s of every cold start);
- `jaxeq/assets/backbones/musicnn.json`: where the weights came from (package version, the
  wheel's SHA256, this command, the TensorFlow that read them), the filter bank's, and the tags;
- `jaxeq/assets/backbones/musicnn_LICENSE.md`: the ISC licence and credit;
- `tests/data/musicnn_reference.npz`: what the ORIGINAL TensorFlow graph (musicnn's own
  `models.define_model`, with the checkpoint restored as musicnn's extractor restores it)
  outputs on fixed inputs, so `tests/test_musicnn.py` can hold the Flax port to it.

The wheel is pinned by SHA256: other bytes are refused, so the shipped weights are the ones
this provenance names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "jaxeq" / "assets" / "backbones"
FIXTURE = ROOT / "tests" / "data" / "musicnn_reference.npz"
MEL_FILTERS = ASSETS / "musicnn_mel_filters.npy"
COMMAND = ("/tmp/tfvenv/bin/python -m data_prep.convert_musicnn "
           "--wheel /tmp/mnn/musicnn-0.1.0-py3-none-any.whl")
VERSION = "0.1.0"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
# Our short name → the checkpoint folder inside the wheel.
MODELS = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}

# musicnn's input pipeline (musicnn/configuration.py, musicnn/extractor.py).
SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187

# TensorFlow variable (named by creation order in musicnn/models.py) → Flax variable.
# Batch norm: TF's gamma/beta/moving_mean/moving_variance are Flax's scale/bias/mean/var.
_BATCH_NORMS = {
    "batch_normalization": "input_bn",
    "batch_normalization_1": "timbral_74_bn",
    "batch_normalization_2": "timbral_77_bn",
    "batch_normalization_3": "temporal_128_bn",
    "batch_normalization_4": "temporal_64_bn",
    "batch_normalization_5": "temporal_32_bn",
    "batch_normalization_6": "midend_1_bn",
    "batch_normalization_7": "midend_2_bn",
    "batch_normalization_8": "midend_3_bn",
    "batch_normalization_9": "pool_bn",
    "batch_normalization_10": "penultimate_bn",
}
_CONVS = {  # name → (Flax name, whether the TF 2-D kernel is really a 1-D one over time)
    "conv2d": ("timbral_74", False),
    "conv2d_1": ("timbral_77", False),
    "conv2d_2": ("temporal_128", False),
    "conv2d_3": ("temporal_64", False),
    "conv2d_4": ("temporal_32", False),
    # The mid-end convolves (time, features, 1) maps with a kernel as wide as the features:
    # a 1-D convolution over time with the features as channels.
    "conv2d_5": ("midend_1", True),
    "conv2d_6": ("midend_2", True),
    "conv2d_7": ("midend_3", True),
}
_DENSES = {"dense": "penultimate", "dense_1": "tags"}


def sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def flax_arrays(read) -> dict[str, np.ndarray]:
  """`read(tf_name) → array` → the Flax variables, flattened as `collection/module/name`."""
  out = {}
  for tf_name, name in _BATCH_NORMS.items():
    out[f"params/{name}/scale"] = read(f"{tf_name}/gamma")
    out[f"params/{name}/bias"] = read(f"{tf_name}/beta")
    out[f"batch_stats/{name}/mean"] = read(f"{tf_name}/moving_mean")
    out[f"batch_stats/{name}/var"] = read(f"{tf_name}/moving_variance")
  for tf_name, (name, one_d) in _CONVS.items():
    kernel = read(f"{tf_name}/kernel")  # (time, freq, in, out), as Flax's NHWC Conv
    if one_d:
      assert kernel.shape[2] == 1, kernel.shape
      kernel = kernel[:, :, 0, :]  # (time, in, out)
    out[f"params/{name}/kernel"] = kernel
    out[f"params/{name}/bias"] = read(f"{tf_name}/bias")
  for tf_name, name in _DENSES.items():
    out[f"params/{name}/kernel"] = read(f"{tf_name}/kernel")
    out[f"params/{name}/bias"] = read(f"{tf_name}/bias")
  return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def mel_filters() -> np.ndarray:
  """`(257, 96)` float32, C-contiguous: librosa's Slaney-normalised mel filters, 0 Hz to
  8 kHz, exactly as musicnn's `librosa.feature.melspectrogram(sr=16000, n_fft=512, n_mels=96)`
  builds them, laid out for `power @ filters`. `jaxeq.backbones.musicnn` reads them from
  `MEL_FILTERS`; `tests/test_musicnn.py` holds that file equal to this."""
  import librosa
  filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).T
  return np.ascontiguousarray(filters, np.float32)


def write_mel_filters() -> dict:
  """Write `MEL_FILTERS` (a rerun writes the same bytes); its provenance for musicnn.json."""
  import librosa
  ASSETS.mkdir(parents=True, exist_ok=True)
  np.save(MEL_FILTERS, mel_filters(), allow_pickle=False)
  print(f"{MEL_FILTERS.relative_to(ROOT)}: {MEL_FILTERS.stat().st_size / 1e3:.0f} kB")
  return {"file": MEL_FILTERS.name, "sha256": sha256(MEL_FILTERS),
          "computed": f"librosa.filters.mel(sr={SAMPLE_RATE}, n_fft={N_FFT}, n_mels={N_MELS}).T, "
                      "float32", "librosa": librosa.__version__}


def reference_audio() -> np.ndarray:
  """3.2 s at 16 kHz, float32: a log chirp 60 Hz → 6 kHz with two harmonics, a tremolo tone and
  seeded noise. Broadband and changing over time, so every mel band and frame carries signal."""
  t = np.arange(int(3.2 * SAMPLE_RATE)) / SAMPLE_RATE
  f0, f1, length = 60.0, 6000.0, t[-1]
  phase = 2 * np.pi * f0 * length / np.log(f1 / f0) * ((f1 / f0) ** (t / length) - 1)
  chirp = sum(np.sin(k * phase) / k for k in (1, 2, 3))
  tone = np.sin(2 * np.pi * 440.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t))
  noise = np.random.default_rng(27).standard_normal(len(t))
  return (0.3 * chirp + 0.2 * tone + 0.05 * noise).astype(np.float32)


def reference_log_mel(audio: np.ndarray) -> np.ndarray:
  """musicnn's `extractor.batch_data` on 16 kHz audio, `(frames, 96)` float32.

  Two things are spelled out that the NumPy and librosa of 2019 did implicitly, so that this
  is what the model was trained and released with:
  - `pad_mode="reflect"`: librosa's default until 0.10, which pads with zeros (that would
    change the first and last frame of a track);
  - the log in float32 after rounding the mel power to float16: NumPy < 2 promoted
    `10000 * float16_array` to float32, NumPy 2 keeps float16, which overflows to inf for any
    mel power over 6.55 (a moderately loud low band) and makes the network output NaN.
  """
  import librosa
  mel = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT,
                                       n_mels=N_MELS, pad_mode="reflect").T
  mel = mel.astype(np.float16).astype(np.float32)
  return np.log10(10000 * mel + 1)


def reference_patches(log_mel: np.ndarray) -> np.ndarray:
  """musicnn's non-overlapping 187-frame patches (a partial last patch is dropped)."""
  starts = range(0, log_mel.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES)
  return np.stack([log_mel[s:s + PATCH_FRAMES] for s in starts])


def random_log_mels() -> np.ndarray:
  """Two patches of seeded log-mel values spanning what real music gives (0 to ~4.5),
  float16 so that they are stored exactly in the fixture."""
  rng = np.random.default_rng(4)
  return (rng.gamma(2.0, 0.6, size=(2, PATCH_FRAMES, N_MELS))).astype(np.float16)


def _run_tensorflow(package_dir: Path, model: str, inputs: list[np.ndarray]):
  """musicnn's own graph and checkpoint on each input: its Flax-named weights, and per input
  `(probabilities, penultimate, mean_pool, max_pool)`, as musicnn's extractor runs it."""
  # musicnn builds its graph with tf.compat.v1.layers, which needs Keras 2 (tf-keras).
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
  warnings.filterwarnings("ignore", message=".*is deprecated", category=UserWarning)
  import tensorflow as tf
  tf.compat.v1.disable_eager_execution()
  sys.path.insert(0, str(package_dir))
  from musicnn import configuration, models  # noqa: E402  (the wheel's own code)
  labels = configuration.MSD_LABELS if model.startswith("MSD") else configuration.MTT_LABELS
  tf.compat.v1.reset_default_graph()
  with tf.name_scope("model"):
    x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, N_MELS])
    is_training = tf.compat.v1.placeholder(tf.bool)
    y, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
        x, is_training, model, len(labels))
    probabilities = tf.nn.sigmoid(y)
  with tf.compat.v1.Session() as sess:
    tf.compat.v1.train.Saver().restore(sess, str(package_dir / "musicnn" / model) + "/")
    reader = tf.compat.v1.train.NewCheckpointReader(str(package_dir / "musicnn" / model) + "/")
    weights = flax_arrays(reader.get_tensor)
    graph_vars = {v.name.removeprefix("model/").split(":")[0] for v in
                  tf.compat.v1.global_variables()}
    used = {k.rsplit("/", 1)[0] for k in graph_vars}
    mapped = set(_BATCH_NORMS) | set(_CONVS) | set(_DENSES)
    assert used == mapped, f"unmapped TF variables: {sorted(used ^ mapped)}"
    outputs = [sess.run([probabilities, penultimate, mean_pool, max_pool],
                        {x: batch.astype(np.float32), is_training: False}) for batch in inputs]
  sys.path.remove(str(package_dir))
  return weights, list(labels), outputs, tf.__version__


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--wheel", help="musicnn-0.1.0-py3-none-any.whl")
  parser.add_argument("--mel-filters", action="store_true",
                      help="only rewrite the mel filter bank (librosa; no TensorFlow, no wheel)")
  args = parser.parse_args(argv)
  if args.mel_filters:
    old = json.loads((ASSETS / "musicnn.json").read_text())
    old.pop("mel_filters", None)
    provenance = {}  # its place as the full conversion writes it: after "input"
    for key, value in old.items():
      provenance[key] = value
      if key == "input":
        provenance["mel_filters"] = write_mel_filters()
    (ASSETS / "musicnn.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return
  if args.wheel is None:
    parser.error("--wheel is required (or --mel-filters)")
  digest = sha256(args.wheel)
  if digest != WHEEL_SHA256:
    raise SystemExit(f"{args.wheel}: SHA256 {digest}, expected {WHEEL_SHA256} (musicnn {VERSION})")
  import librosa
  audio = reference_audio()
  audio_log_mel = reference_log_mel(audio)
  random = random_log_mels()
  ASSETS.mkdir(parents=True, exist_ok=True)
  FIXTURE.parent.mkdir(parents=True, exist_ok=True)
  fixture = {"random_log_mel": random, "audio_log_mel": audio_log_mel}
  provenance = {
      "package": "musicnn", "version": VERSION,
      "source": f"musicnn {VERSION} on PyPI (https://github.com/jordipons/musicnn)",
      "wheel": Path(args.wheel).name, "wheel_sha256": WHEEL_SHA256, "licence": "ISC",
      "authors": "Jordi Pons and Xavier Serra, Music Technology Group, Universitat Pompeu Fabra",
      "command": COMMAND, "converter": "data_prep/convert_musicnn.py",
      "librosa": librosa.__version__,
      "input": {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS,
                "patch_frames": PATCH_FRAMES, "log_mel": "log10(10000 * float16(mel) + 1)"},
      "mel_filters": write_mel_filters(), "models": {}}
  with tempfile.TemporaryDirectory() as tmp:
    with zipfile.ZipFile(args.wheel) as wheel:
      wheel.extractall(tmp)
    for name, model in MODELS.items():
      weights, tags, outputs, tf_version = _run_tensorflow(
          Path(tmp), model, [random.astype(np.float32), reference_patches(audio_log_mel)])
      path = ASSETS / f"musicnn_{name}.npz"
      np.savez(path, **weights)
      provenance["tensorflow"] = tf_version
      provenance["models"][name] = {
          "checkpoint": f"musicnn/{model}", "file": path.name, "sha256": sha256(path),
          "dataset": "Million Song Dataset" if name == "msd" else "MagnaTagATune",
          "parameters": int(sum(w.size for w in weights.values())), "tags": tags}
      fixture[f"{name}/tags"] = np.array(tags)
      for which, (probabilities, penultimate, mean_pool, max_pool) in zip(
          ("random", "audio"), outputs):
        fixture[f"{name}/{which}/probabilities"] = probabilities
        fixture[f"{name}/{which}/penultimate"] = penultimate
        fixture[f"{name}/{which}/mean_pool"] = mean_pool
        fixture[f"{name}/{which}/max_pool"] = max_pool
      print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.2f} MB")
    licence = Path(tmp, f"musicnn-{VERSION}.dist-info", "LICENSE.md").read_text()
  (ASSETS / "musicnn.json").write_text(json.dumps(provenance, indent=2) + "\n")
  (ASSETS / "musicnn_LICENSE.md").write_text(
      "The weights in musicnn_msd.npz and musicnn_mtt.npz are the pretrained musicnn models\n"
      f"(MSD_musicnn, MTT_musicnn) of musicnn {VERSION} by Jordi Pons and Xavier Serra,\n"
      "converted from TensorFlow to plain arrays by data_prep/convert_musicnn.py. They are\n"
      "used under musicnn's ISC licence, reproduced below. musicnn_mel_filters.npy is the mel\n"
      "filter bank musicnn's input is computed with, librosa's (ISC), written by the same\n"
      "script so that jaxeq need not import librosa to run the models.\n\n"
      "Pons, J. and Serra, X. (2019). musicnn: pre-trained convolutional neural networks for\n"
      "music audio tagging. Late-breaking/demo session, ISMIR 2019. arXiv:1909.06654.\n"
      "https://github.com/jordipons/musicnn\n\n---\n\n" + licence.strip() + "\n")
  np.savez_compressed(FIXTURE, **fixture)
  print(f"{FIXTURE.relative_to(ROOT)}: {os.path.getsize(FIXTURE) / 1e3:.0f} kB")


if __name__ == "__main__":
  main()
