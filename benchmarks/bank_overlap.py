"""Which FreePats samples TimGM6mb (the unseen test bank) also uses.

    python -m benchmarks.bank_overlap [--threshold 0.75]

Banks borrow samples from one another; a training bank that shares samples with the test bank
lets the models hear it. Every FreePats patch sample is compared with every TimGM6mb sample:
the first half second of each, resampled to 16 kHz at its own rate, by the peak of their
normalised cross-correlation. The same recording scores near 1 (0.8 when one was edited);
different recordings of one instrument at one pitch score below 0.5 or so. Prints each FreePats
sample scoring `--threshold` or more, with its best TimGM6mb match. `data_prep.synth` leaves
those out of the FreePats it plays.
"""

from __future__ import annotations

import argparse
import math
import struct
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from data_prep.synth import find_bank

RATE = 16000
LENGTH = 8000  # half a second at RATE


def gus_patch_samples(path: Path) -> list[tuple[str, int, np.ndarray]]:
  """`(name, sample rate, PCM)` of each sample of a Gravis `.pat` file (one instrument, one
  layer, as FreePats has)."""
  data = path.read_bytes()
  position = 129 + 63  # file header, instrument header
  count = data[position + 6]
  position += 47  # layer header
  samples = []
  for _ in range(count):
    header = data[position:position + 96]
    length, = struct.unpack("<I", header[8:12])
    rate, = struct.unpack("<H", header[20:22])
    modes = header[55]  # bit 0: 16-bit, bit 1: unsigned
    raw = data[position + 96:position + 96 + length]
    position += 96 + length
    dtype = np.dtype({0: "i1", 1: "<i2", 2: "u1", 3: "<u2"}[modes & 3])
    pcm = np.frombuffer(raw[:len(raw) // dtype.itemsize * dtype.itemsize], dtype).astype(float)
    if modes & 2:
      pcm -= 2.0 ** (8 * dtype.itemsize - 1)
    samples.append((f"{path.parent.name}/{path.name}", rate, pcm))
  return samples


_PDTA_RECORDS = {"phdr": 38, "pbag": 4, "pgen": 4, "inst": 22, "ibag": 4, "igen": 4, "shdr": 46}


def soundfont_records(data: bytes) -> dict[str, list[bytes]]:
  """Name → records of the preset-data chunks (`phdr`, ..., `shdr`) of a SoundFont, found by
  walking its RIFF chunks; each list ends with the terminal record."""
  position = 12
  while position < len(data):
    kind = data[position:position + 4]
    size, = struct.unpack("<I", data[position + 4:position + 8])
    if kind == b"LIST" and data[position + 8:position + 12] == b"pdta":
      records, at = {}, position + 12
      while at < position + 8 + size:
        name = data[at:at + 4].decode()
        length, = struct.unpack("<I", data[at + 4:at + 8])
        if name in _PDTA_RECORDS:
          width = _PDTA_RECORDS[name]
          records[name] = [data[at + 8 + k:at + 8 + k + width] for k in range(0, length, width)]
        at += 8 + length + length % 2
      return records
    position += 8 + size + size % 2
  raise ValueError("no pdta chunk: not a SoundFont 2 file")


def soundfont_samples(path: Path) -> list[tuple[str, int, np.ndarray]]:
  """`(name, sample rate, PCM)` of each sample of an uncompressed `.sf2` file."""
  data = path.read_bytes()
  at = data.index(b"smpl")
  size, = struct.unpack("<I", data[at + 4:at + 8])
  pcm = np.frombuffer(data[at + 8:at + 8 + size], "<i2").astype(np.float64)
  samples = []
  for header in soundfont_records(data)["shdr"][:-1]:  # the last header is the terminal "EOS"
    name = header[:20].split(b"\0")[0].decode("latin-1")
    start, end, _, _, rate = struct.unpack("<IIIII", header[20:40])
    samples.append((name, rate, pcm[start:end]))
  return samples


def _fingerprint(pcm: np.ndarray, rate: int) -> np.ndarray:
  """The spectrum of the first `LENGTH` samples at `RATE`, zero-mean and unit-norm."""
  common = math.gcd(RATE, rate)
  head = resample_poly(pcm[:rate * LENGTH // RATE + 100], RATE // common, rate // common)[:LENGTH]
  head = head - head.mean()
  norm = np.linalg.norm(head)
  return np.fft.rfft(head / norm if norm > 0 else head, 2 * LENGTH)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--threshold", type=float, default=0.75)
  args = parser.parse_args()
  config = find_bank("FreePats").read_text(encoding="latin-1")
  folder = Path(next(line.split()[1] for line in config.splitlines() if line.startswith("dir ")))
  ours = [s for p in sorted(folder.glob("*/*.pat")) for s in gus_patch_samples(p)]
  theirs = soundfont_samples(find_bank("TimGM6mb"))
  spectra = np.conj(np.stack([_fingerprint(pcm, rate) for _, rate, pcm in theirs]))
  print(f"{len(ours)} FreePats samples against {len(theirs)} TimGM6mb samples")
  for name, rate, pcm in ours:
    scores = np.abs(np.fft.irfft(spectra * _fingerprint(pcm, rate), 2 * LENGTH, axis=1)).max(1)
    best = int(scores.argmax())
    if scores[best] >= args.threshold:
      print(f"{scores[best]:.3f}  {name}  ~  TimGM6mb {theirs[best][0]!r}")


if __name__ == "__main__":
  main()
