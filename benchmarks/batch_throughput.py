"""Batch throughput of `jaxeq process --workers N`: tracks per minute for a folder of real-length
stems, and the scaling from one worker to more.

    python -m benchmarks.batch_throughput [--data data/default] [--tracks 100] [--workers 1 2]
                                          [--repeats 3]

The stems are real rendered audio: each is one class's test clips of the `default` dataset
(rendered when absent), shuffled and joined to 30–60 s, stereo, 24-bit WAV, written to a
temporary folder. Each run is the whole command as a user runs it (start-up, loading the
models in every worker, the per-track lines left out with `--quiet`). Prints a Markdown table
for RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

import jaxeq
from benchmarks.pipeline import command_seconds
from data_prep import dataset

RATE = 44100
MIN_SECONDS, MAX_SECONDS = 30, 60


def write_stems(data_dir: Path, folder: Path, count: int, seed: int = 0) -> float:
  """Writes `count` stems into `folder`; their total length in seconds."""
  clips = collections.defaultdict(list)
  with open(data_dir / "manifest.csv", newline="") as f:
    for row in csv.DictReader(f):
      if row["split"] == "test":
        clips[row["class"]].append(data_dir / row["path"])
  classes, rng, total = sorted(clips), np.random.default_rng(seed), 0
  for i in range(count):
    name = classes[i % len(classes)]
    parts = [jaxeq.load_audio(path)[0] for path in rng.permutation(clips[name])]
    mono = np.concatenate(parts)
    length = int(rng.uniform(MIN_SECONDS, MAX_SECONDS) * RATE)
    mono = np.tile(mono, length // len(mono) + 1)[:length]
    sf.write(folder / f"{i:03d}_{name}.wav", np.stack([mono, 0.8 * mono], axis=1), RATE,
             subtype="PCM_24")
    total += length / RATE
  return total


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="data/default")
  parser.add_argument("--tracks", type=int, default=100)
  parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  work = Path(tempfile.mkdtemp(prefix="jaxeq-batch-"))
  try:
    (work / "stems").mkdir()
    seconds = write_stems(dataset.ensure(args.data), work / "stems", args.tracks)
    runs = {n: [] for n in args.workers}
    for repeat in range(args.repeats):  # interleaved, so that a busier spell hits every N
      for n in args.workers:
        out = work / f"out_{n}_{repeat}"
        runs[n].append(command_seconds([sys.executable, "-m", "jaxeq", "process", work / "stems",
                                        "--out", out, "--quiet", "--workers", str(n)]))
        shutil.rmtree(out)
  finally:
    shutil.rmtree(work)
  medians = {n: statistics.median(times) for n, times in runs.items()}
  first = args.workers[0]
  print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
        f"{args.tracks} stereo 24-bit stems, {seconds / 60:.0f} min of audio "
        f"({seconds / args.tracks:.0f} s a stem); medians of {args.repeats}\n")
  print(f"| workers | seconds (runs) | tracks/minute | vs {first} worker{'s' * (first != 1)} |")
  print("|---|---|---|---|")
  for n, median in medians.items():
    times = ", ".join(f"{t:.0f}" for t in runs[n])
    print(f"| {n} | {median:.1f} ({times}) | {60 * args.tracks / median:.1f} | "
          f"{medians[first] / median:.2f}× |")


if __name__ == "__main__":
  main()
