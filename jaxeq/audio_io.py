"""Audio files in and out, and the checks that turn unusable audio into one clear error.

Arrays follow soundfile: `(samples,)` for mono, `(samples, channels)` otherwise.

Audio is checked (`check_audio`) once, where it enters: `read_audio`/`load_audio`, and the
public functions a user calls with an array (`jaxeq.apply_eq`, `jaxeq.long_term_spectrum`,
`AutoEQ.analyze`, `save_audio`, ...). The functions they call take checked arrays: those
named `*_checked`, and those that take `(channels, samples)` or an analysis signal.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from jaxeq.atomic import atomic_path

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000


class AudioError(ValueError):
  """Audio that cannot be used; the message is one line naming the file and the reason."""


def check_sample_rate(sample_rate) -> int:
  if (not isinstance(sample_rate, (int, np.integer, float)) or sample_rate != int(sample_rate)
      or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
    raise AudioError(f"sample rate {sample_rate!r} Hz is not supported: expected a whole "
                     f"number from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz")
  return int(sample_rate)


def check_audio(audio, sample_rate) -> np.ndarray:
  """`audio` as a floating-point array, after checking shape, rate and values."""
  check_sample_rate(sample_rate)
  audio = np.asarray(audio)
  if not np.issubdtype(audio.dtype, np.floating):
    raise AudioError(f"audio must be floating point in [-1, 1], got dtype {audio.dtype}")
  if audio.ndim not in (1, 2):
    raise AudioError(f"audio must be shaped (samples,) or (samples, channels), got {audio.shape}")
  if audio.shape[0] == 0:
    raise AudioError("audio has no samples")
  if audio.ndim == 2 and (audio.shape[1] == 0 or audio.shape[1] > audio.shape[0]):
    raise AudioError(f"audio shaped {audio.shape} has more channels than samples: "
                     "expected (samples, channels); transpose a (channels, samples) array")
  # NaN propagates through min and max, inf is one of them: no boolean copy of the track.
  if not (np.isfinite(audio.min()) and np.isfinite(audio.max())):
    bad = int(np.sum(~np.isfinite(audio)))
    raise AudioError(f"audio has {bad} NaN or infinite samples")
  return audio


@dataclasses.dataclass(frozen=True)
class AudioFile:
  """A file's audio, checked, and how it is stored: an output written in the same `format`
  and `subtype` keeps e.g. 24-bit PCM, and lossy ones get a lower true-peak ceiling."""
  audio: np.ndarray
  sample_rate: int
  format: str  # soundfile's: "WAV", "FLAC", "OGG", ...
  subtype: str  # "PCM_24", "FLOAT", "VORBIS", ...


def load_audio(path, dtype: str = "float32") -> tuple[np.ndarray, int]:
  """`(audio, sample_rate)` from any file libsndfile reads (WAV, FLAC, OGG, AIFF, MP3...)."""
  track = read_audio(path, dtype)
  return track.audio, track.sample_rate


def read_audio(path, dtype: str = "float32") -> AudioFile:
  """`load_audio`'s audio with its file's format and subtype, from one reading of its header."""
  path = Path(path)
  if not path.is_file():
    raise AudioError(f"{path}: no such file")
  try:
    with sf.SoundFile(path) as f:
      audio = f.read(dtype=dtype, always_2d=False)
      sample_rate, format, subtype = f.samplerate, f.format, f.subtype
  except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise AudioError(f"{path}: not a readable audio file ({reason})") from None
  try:
    check_audio(audio, sample_rate)
  except AudioError as e:
    raise AudioError(f"{path}: {e}") from None
  promised = promised_frames(path)
  if promised is not None and promised > len(audio):
    raise AudioError(f"{path}: truncated: its header promises {promised} frames "
                     f"({promised / sample_rate:.2f} s) but the file holds {len(audio)} "
                     f"({len(audio) / sample_rate:.2f} s)")
  return AudioFile(audio, sample_rate, format, subtype)


def promised_frames(path) -> int | None:
  """The frame count a WAV or AIFF header promises (None for other files, or a header that
  leaves the length open, as a recorder writing a stream does). libsndfile reads a truncated
  file up to where it ends without a word, so this is how a damaged file is told apart."""
  try:
    with open(path, "rb") as f:
      return _header_frames(f)
  except struct.error:  # a header cut short: libsndfile has already judged the file
    return None


def _header_frames(f) -> int | None:
  head = f.read(12)
  if head[:4] not in (b"RIFF", b"FORM") or head[8:12] not in (b"WAVE", b"AIFF", b"AIFC"):
    return None  # RF64, W64, other formats: left to libsndfile
  wav, block_align = head[:4] == b"RIFF", None
  while len(chunk := f.read(8)) == 8:
    name, size = chunk[:4], struct.unpack("<I" if wav else ">I", chunk[4:])[0]
    body_end = f.tell() + size + (size & 1)  # chunks are padded to an even length
    if wav and name == b"fmt ":
      code, _, _, _, block_align = struct.unpack("<HHIIH", f.read(14))
      if code not in (1, 3, 0xFFFE):  # compressed: blocks are not frames
        return None
    elif wav and name == b"data":
      open_length = size in (0, 0xFFFFFFFF) or not block_align
      return None if open_length else size // block_align
    elif not wav and name == b"COMM":
      return struct.unpack(">hI", f.read(6))[1] or None
    f.seek(body_end)
  return None


def save_audio(path, audio, sample_rate: int, *, subtype: str | None = None,
               format: str | None = None) -> None:
  """Write `audio` atomically (a temporary file renamed into place).

  `format` defaults to the file extension and `subtype` to that format's default; pass the
  input's (`soundfile.info(path).subtype`) to keep e.g. 24-bit PCM.
  """
  path = Path(path)
  audio = check_audio(audio, sample_rate)
  format = format or path.suffix.lstrip(".").upper()
  if not sf.check_format(format, subtype):
    raise AudioError(f"{path}: cannot write format {format!r} with subtype {subtype!r}")
  path.parent.mkdir(parents=True, exist_ok=True)
  with atomic_path(path, suffix=path.suffix) as tmp:
    sf.write(tmp, audio, int(sample_rate), subtype=subtype, format=format)


AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".mp3",
                              ".w64", ".caf", ".opus"})


def find_audio_files(paths) -> list[Path]:
  """The files named in `paths`, with folders expanded to the audio files below them (sorted).

  Named files are kept whatever their extension, so that a bad one is reported, not skipped.
  """
  found = []
  for path in map(Path, paths):
    if path.is_dir():
      found += sorted(p for p in path.rglob("*")
                      if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    else:
      found.append(path)
  return found
