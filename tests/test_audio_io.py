"""Audio files: round trips, atomic writes, and one clear error for every unusable input."""

import os

import numpy as np
import pytest
import soundfile as sf

from jaxeq import AudioError, load_audio, save_audio


def _tone(n=4410, channels=None, rate=44100):
  t = np.arange(n) / rate
  x = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
  return x if channels is None else np.stack([x * (c + 1) / channels for c in range(channels)], 1)


@pytest.mark.parametrize("ext, subtype, channels, rate", [
    ("wav", "PCM_16", None, 44100), ("wav", "PCM_24", 2, 48000), ("flac", "PCM_24", 6, 96000),
    ("wav", "FLOAT", 2, 22050), ("aiff", "PCM_16", None, 8000)])
def test_round_trip_keeps_rate_channels_and_subtype(tmp_path, ext, subtype, channels, rate):
  audio = _tone(channels=channels, rate=rate)
  path = tmp_path / f"x.{ext}"
  save_audio(path, audio, rate, subtype=subtype)
  info = sf.info(path)
  assert (info.samplerate, info.subtype) == (rate, subtype)
  back, back_rate = load_audio(path)
  assert back_rate == rate and back.shape == audio.shape and back.dtype == np.float32
  np.testing.assert_allclose(back, audio, atol=2.0 ** -14)


def test_save_is_atomic_and_never_destroys_the_old_file(tmp_path):
  path = tmp_path / "out.wav"
  save_audio(path, _tone(), 44100)
  before = path.read_bytes()
  bad = _tone()
  bad[10] = np.nan
  with pytest.raises(AudioError, match="NaN"):
    save_audio(path, bad, 44100)
  with pytest.raises(AudioError, match="cannot write format 'XYZ'"):
    save_audio(tmp_path / "out.xyz", _tone(), 44100)
  assert path.read_bytes() == before
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]  # no temporary leftovers
  assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def _corrupt(path):
  path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + os.urandom(200))


def _empty(path):
  path.write_bytes(b"")


def _zero_frames(path):
  sf.write(path, np.zeros((0, 2), np.float32), 44100)


def _nan_samples(path):
  x = _tone()
  x[100] = np.nan
  sf.write(path, x, 44100, subtype="FLOAT")


def _odd_rate(path):
  sf.write(path, _tone(rate=4000), 4000)


@pytest.mark.parametrize("make, reason", [
    (None, "no such file"), (_corrupt, "not a readable audio file"),
    (_empty, "not a readable audio file"), (_zero_frames, "no samples"),
    (_nan_samples, "1 NaN or infinite samples"), (_odd_rate, "sample rate 4000 Hz")])
def test_unusable_files_raise_one_line_audio_error_naming_the_file(tmp_path, make, reason):
  path = tmp_path / "track.wav"
  if make:
    make(path)
  with pytest.raises(AudioError, match=reason) as info:
    load_audio(path)
  message = str(info.value)
  assert message.startswith(str(path)) and "\n" not in message
  assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("audio, rate, reason", [
    (np.zeros((2, 44100), np.float32), 44100, "transpose"),
    (np.zeros((10, 10, 2), np.float32), 44100, r"\(samples,\) or \(samples, channels\)"),
    (np.zeros(100, np.int16), 44100, "floating point"),
    (np.zeros(100, np.float32), 44100.5, "sample rate 44100.5"),
    (np.zeros(100, np.float32), 400000, "sample rate 400000"),
])
def test_bad_arrays_are_rejected_before_writing(tmp_path, audio, rate, reason):
  with pytest.raises(AudioError, match=reason):
    save_audio(tmp_path / "x.wav", audio, rate)
  assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("ext, subtype", [("wav", "PCM_24"), ("wav", "FLOAT"), ("aiff", "PCM_16")])
def test_a_truncated_file_names_both_lengths(tmp_path, ext, subtype):
  path = tmp_path / f"take.{ext}"
  sf.write(path, _tone(n=44100, channels=2), 44100, subtype=subtype)
  whole = path.read_bytes()
  path.write_bytes(whole[: len(whole) // 2])  # as an interrupted copy leaves it
  held = sf.info(path).frames  # libsndfile reads what is there without a word
  with pytest.raises(AudioError, match=f"promises 44100 frames .* holds {held} ") as info:
    load_audio(path)
  assert str(info.value).startswith(f"{path}: truncated") and "\n" not in str(info.value)
  path.write_bytes(whole)
  assert load_audio(path)[0].shape == (44100, 2)
