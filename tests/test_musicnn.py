"""The Flax port of musicnn against the original TensorFlow model.

`tests/data/musicnn_reference.npz` holds what musicnn's own TensorFlow graph and checkpoint
output on fixed inputs (written by `data_prep/convert_musicnn.py`, the only code that runs
TensorFlow): two seeded log-mel patches, and the log-mel of a seeded 3.2 s chirp-and-noise
signal computed as musicnn's extractor computes it.
"""

from __future__ import annotations

from pathlib import Path

import jax
import librosa
import numpy as np
import pytest
import soxr

from data_prep import convert_musicnn
from jaxeq.backbones import musicnn

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
OUTPUTS = ("probabilities", "penultimate", "mean_pool", "max_pool")


@pytest.fixture(scope="module")
def reference():
  with np.load(REFERENCE, allow_pickle=False) as data:
    return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def taggers():
  return {name: musicnn.load(name) for name in musicnn.MODELS}


def assert_close_to_tensorflow(ours, theirs, what):
  """Within 1e-4 of the reference's largest magnitude: float32 rounding, not a port error."""
  ours, theirs = np.asarray(ours), np.asarray(theirs)
  assert ours.shape == theirs.shape, what
  np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * np.abs(theirs).max(), err_msg=what)


@pytest.mark.parametrize("name", sorted(musicnn.MODELS))
def test_the_port_gives_tensorflows_tags_and_embeddings(name, reference, taggers):
  batch = np.concatenate([reference["random_log_mel"].astype(np.float32),
                          np.asarray(musicnn.patches(reference["audio_log_mel"]))])
  out = musicnn.apply(taggers[name].variables, batch)
  for key in OUTPUTS:
    theirs = np.concatenate([reference[f"{name}/random/{key}"], reference[f"{name}/audio/{key}"]])
    assert_close_to_tensorflow(out[key], theirs, f"{name} {key}")
  np.testing.assert_allclose(out["probabilities"], jax.nn.sigmoid(out["logits"]), atol=1e-7)


def test_the_front_end_computes_musicnns_log_mel(reference):
  audio = convert_musicnn.reference_audio()
  ours = np.asarray(musicnn.log_mel(audio))
  theirs = reference["audio_log_mel"]
  assert ours.shape == theirs.shape == (1 + len(audio) // musicnn.HOP, musicnn.N_MELS)
  # Equal but where float32 rounding tips the float16 rounding of a mel value the other way:
  # one float16 step, a few 1e-4 after the log, in a handful of the 19,000 values.
  np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-3)
  assert np.mean(np.abs(ours - theirs)) < 1e-5


def test_the_front_end_frames_as_a_numpy_index_would_exactly():
  """`log_mel` computes its (frames, 512) frame index in the program, not as a NumPy
  constant (23 MB for a 3-minute track, slow to trace and to load from the compilation
  cache): the same values bit for bit, for any length and leading axes."""
  @jax.jit
  def gathered(audio):
    pad = [(0, 0)] * (audio.ndim - 1) + [(256, 256)]
    padded = jax.numpy.pad(audio, pad, mode="reflect")
    index = np.arange(1 + (padded.shape[-1] - 512) // 256)[:, None] * 256 + np.arange(512)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512)).astype(np.float32)
    spectrum = jax.numpy.fft.rfft(padded[..., index] * window, axis=-1)
    power = jax.numpy.real(spectrum) ** 2 + jax.numpy.imag(spectrum) ** 2
    mel = jax.numpy.minimum(power @ musicnn.mel_filterbank(), 65504.0)
    return jax.numpy.log10(10000.0 * mel.astype(np.float16).astype(np.float32) + 1.0)

  audio = convert_musicnn.reference_audio()
  for clip in (audio[:600], audio[:51201], audio[:51455], audio,
               np.stack([audio[:20000], -audio[:20000], audio[1:20001]]).reshape(3, 1, -1)):
    assert np.array_equal(musicnn.log_mel(clip), gathered(clip)), clip.shape


def test_audio_in_any_rate_and_layout_gives_tensorflows_tags(reference, taggers):
  audio = convert_musicnn.reference_audio()
  for name, tagger in taggers.items():
    out = tagger(audio, musicnn.SAMPLE_RATE)
    for key in OUTPUTS:
      assert_close_to_tensorflow(out[key], reference[f"{name}/audio/{key}"], f"{name} {key}")
  # A 48 kHz stereo file: downmixed and resampled as musicnn's `librosa.load(sr=16000)` does.
  stereo = np.stack([audio, 0.5 * audio[::-1]], axis=1)
  stereo = soxr.resample(stereo, musicnn.SAMPLE_RATE, 48000)
  at_16k = librosa.resample(librosa.to_mono(stereo.T), orig_sr=48000, target_sr=16000)
  theirs = musicnn.apply(taggers["msd"].variables,
                         musicnn.patches(convert_musicnn.reference_log_mel(at_16k)))
  ours = taggers["msd"](stereo, 48000)
  for key in OUTPUTS:
    assert_close_to_tensorflow(ours[key], theirs[key], f"48 kHz stereo {key}")


def test_every_three_seconds_gives_a_row_and_a_short_clip_one(taggers):
  tagger = taggers["msd"]
  rng = np.random.default_rng(0)
  long = (0.1 * rng.standard_normal(7 * musicnn.SAMPLE_RATE)).astype(np.float32)
  out = tagger(long, musicnn.SAMPLE_RATE)
  # 438 frames: patches at 0 and 187; the partial third is left out, as musicnn does.
  assert out["penultimate"].shape == (2, 200) and out["probabilities"].shape == (2, 50)
  assert out["mean_pool"].shape == out["max_pool"].shape == (2, 753)
  assert np.all((out["probabilities"] >= 0) & (out["probabilities"] <= 1))
  # A one-shot shorter than a patch is repeated to fill one, never tagged from padding.
  short = tagger(long[:musicnn.SAMPLE_RATE // 2], musicnn.SAMPLE_RATE)
  assert short["penultimate"].shape == (1, 200) and np.all(np.isfinite(short["penultimate"]))


def test_audio_to_embedding_compiles_as_one_jitted_function(taggers):
  variables = taggers["msd"].variables

  @jax.jit
  def embed(audio):
    windows = musicnn.patches(musicnn.log_mel(audio))
    return musicnn.Musicnn().apply(variables, windows)["penultimate"]

  audio = convert_musicnn.reference_audio()
  expected = taggers["msd"](audio, musicnn.SAMPLE_RATE)["penultimate"]
  np.testing.assert_allclose(embed(audio), expected, atol=1e-5)


def test_shipped_weights_are_plain_float32_arrays_and_a_wrong_file_is_refused(tmp_path):
  for name in musicnn.MODELS:
    with np.load(musicnn.ASSETS / f"musicnn_{name}.npz", allow_pickle=False) as data:
      arrays = {key: data[key] for key in data.files}
    assert {a.dtype for a in arrays.values()} == {np.dtype(np.float32)}
    assert sum(a.size for a in arrays.values()) == 792_079
  variables = musicnn.load_variables("msd")
  assert set(variables) == {"params", "batch_stats"}
  del arrays["params/tags/bias"]
  np.savez(tmp_path / "truncated.npz", **arrays)
  with pytest.raises(ValueError, match="params/tags/bias"):
    musicnn.load_variables(path=tmp_path / "truncated.npz")
  with pytest.raises(ValueError, match="msd, mtt"):
    musicnn.load("magnatagatune")


def test_the_shipped_mel_filters_are_librosas_exactly():
  # The arguments musicnn's extractor gives `librosa.feature.melspectrogram`, which builds its
  # filters with `librosa.filters.mel`'s defaults for the rest (Slaney, 0 Hz to sr / 2).
  theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).T
  shipped = np.load(musicnn.ASSETS / "musicnn_mel_filters.npy", allow_pickle=False)
  assert shipped.dtype == theirs.dtype == np.float32 and shipped.shape == (257, 96)
  assert np.array_equal(shipped, theirs)
  assert np.array_equal(musicnn.mel_filterbank(), theirs)
  assert np.array_equal(convert_musicnn.mel_filters(), theirs)  # what rewrites the file


def test_the_classifier_reads_the_same_with_librosas_filters(monkeypatch):
  """The shipped classifier's probabilities, musicnn's filters read from the asset or computed
  by librosa at run time (as before the asset): the same on tracks of two rates."""
  import jaxeq
  classifier = jaxeq.load_classifier()
  audio = convert_musicnn.reference_audio()
  tracks = [(audio, musicnn.SAMPLE_RATE),
            (soxr.resample(np.stack([audio, 0.5 * audio[::-1]], axis=1), 16000, 44100), 44100)]
  shipped = [classifier.predict(track, rate) for track, rate in tracks]
  monkeypatch.setattr(musicnn, "mel_filterbank",
                      lambda: librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).T)
  jax.clear_caches()  # else `log_mel` keeps its trace, and the filters it read
  try:
    for (track, rate), ours in zip(tracks, shipped):
      theirs = classifier.predict(track, rate)
      assert list(theirs) == list(ours)
      assert max(abs(theirs[name] - ours[name]) for name in ours) < 1e-6
  finally:
    monkeypatch.undo()
    jax.clear_caches()


def test_tags_are_musicnns_in_output_order(reference, taggers):
  for name, tagger in taggers.items():
    assert tagger.tags == tuple(reference[f"{name}/tags"].tolist())
    assert len(tagger.tags) == tagger.variables["params"]["tags"]["bias"].shape[0] == 50
  assert musicnn.MSD_TAGS[:3] == ("rock", "pop", "alternative")
  assert {"piano", "violin", "drums", "flute"} <= set(musicnn.MTT_TAGS)
  assert (musicnn.ASSETS / "musicnn_LICENSE.md").read_text().count("ISC") >= 1
