"""End-to-end speed on a 3-minute stereo 44.1 kHz track: classification, and `jaxeq process`
cold (one call, models loaded from scratch: the first with an empty compilation cache, then
with the cache that call filled) and per track in a warm batch.

    python -m benchmarks.pipeline [--data data/default] [--repeats 3] [--workers 1 2] [--stages]

The track is real rendered audio: test clips of the `default` dataset (rendered when
absent) joined to 3 minutes and made stereo. Prints a Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# On a GPU, JAX takes most of its memory at start-up; the `jaxeq process` runs timed here are
# other processes beside this one, so every process takes only what it needs.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import jaxeq  # noqa: E402
from data_prep import dataset  # noqa: E402
from jaxeq.spectrum import MAX_WINDOWS  # noqa: E402

SECONDS = 180
RATE = 44100


def three_minute_track(data_dir: Path) -> np.ndarray:
  with open(data_dir / "manifest.csv", newline="") as f:
    rows = [r for r in csv.DictReader(f)
            if r["split"] == "test" and r["class"] == "acoustic_guitar_steel"]
  clips = [jaxeq.load_audio(data_dir / r["path"])[0] for r in rows]
  mono = np.tile(np.concatenate(clips), SECONDS * RATE // sum(map(len, clips)) + 1)[:SECONDS * RATE]
  return np.stack([mono, 0.8 * mono], axis=1).astype(np.float32)


def stages(path: Path, repeats: int) -> dict[str, tuple[float, float]]:
  """Each step of processing the track at `path` once, warm and in this process, one after
  another: `(wall, CPU)` seconds, medians of `repeats`."""
  from jaxeq import cli, filtering, loudness, pitch, spectrum
  from jaxeq.audio_io import read_audio
  auto = jaxeq.AutoEQ.from_pretrained()
  stored = read_audio(path)
  audio, rate = stored.audio, stored.sample_rate
  analysis = auto.analyze(audio, rate)  # and compile
  processed = filtering.apply_eq(audio, rate, analysis.eq)
  weighted = filtering.filter_channels(processed, rate, loudness.K_WEIGHTING)
  board, planar = pedalboard_eq(analysis.eq), np.ascontiguousarray(audio.T)
  mono = spectrum.analysis_signal(audio, rate)
  steps = {
      "loading (24-bit WAV)": lambda: read_audio(path),
      "long-term spectrum and noise floor": lambda: spectrum.spectrum_and_noise_floor(audio, rate),
      "the pitch (YIN over the loud frames)": lambda: pitch.median_pitch_hz(mono),
      "classifier windows": lambda: spectrum.log_spectrogram_windows(audio, rate, MAX_WINDOWS),
      "the classifier (its backbones' windows and patches, the head)":
          lambda: auto.classifier.predict(audio, rate),
      "`AutoEQ.analyze` (all the above but loading, and the matcher)": lambda: auto.analyze(audio, rate),
      "K-weighting (sosfilt)": lambda: filtering.filter_channels(audio, rate, loudness.K_WEIGHTING),
      "the EQ (sosfilt)": lambda: filtering.apply_eq(audio, rate, analysis.eq),
      "pedalboard, the same EQ (for comparison)": lambda: board.process(planar, rate),
      "gated loudness": lambda: loudness.gated_loudness(weighted, rate),
      "loudness match and true-peak limiter": lambda: loudness.match_loudness(
          processed, rate, weighted, -20.0),
      "`AutoEQ.process` (analysis to limited output)": lambda: auto.process(audio, rate),
      "writing (24-bit WAV)": lambda: cli._save_like(stored, path.with_name("out.wav"), processed),
  }
  times = {}
  for name, step in steps.items():
    wall, cpu = [], []
    for _ in range(repeats):
      start, start_cpu = time.perf_counter(), time.process_time()
      step()
      wall.append(time.perf_counter() - start)
      cpu.append(time.process_time() - start_cpu)
    times[name] = statistics.median(wall), statistics.median(cpu)
  return times


def pedalboard_eq(eq: jaxeq.EQ):
  """`eq` (shelves and peaks, as paper4's) as a pedalboard chain: JUCE's biquads."""
  import pedalboard  # a benchmark's dependency, not the library's
  kinds = {"low_shelf": pedalboard.LowShelfFilter, "peak": pedalboard.PeakFilter,
           "high_shelf": pedalboard.HighShelfFilter}
  return pedalboard.Pedalboard([kinds[b.kind](cutoff_frequency_hz=b.freq_hz, gain_db=b.gain_db,
                                              q=b.q) for b in eq.bands])


def command_seconds(command, env=None) -> float:
  """Wall seconds `command` takes; a `RuntimeError` with its stderr if it fails."""
  start = time.perf_counter()
  done = subprocess.run(command, capture_output=True, text=True, env=env)
  seconds = time.perf_counter() - start
  if done.returncode != 0:
    raise RuntimeError(f"{shlex.join(map(str, command))} failed:\n{done.stderr[-2000:]}")
  return seconds


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="data/default")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--batch", type=int, default=6, help="tracks in the warm batch")
  parser.add_argument("--workers", type=int, nargs="+",
                      help="time the batch with each of these `--workers` (default: the "
                      "command's own default)")
  parser.add_argument("--stages", action="store_true",
                      help="also time each step of one warm track, in this process")
  args = parser.parse_args(argv)
  track = three_minute_track(dataset.ensure(args.data))

  classifier = jaxeq.load_classifier()
  classifier.predict(track[:RATE * 6], RATE)  # compile
  classify = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    classifier.predict(track, RATE)
    classify.append(time.perf_counter() - start)

  work = Path(tempfile.mkdtemp(prefix="jaxeq-bench-"))
  try:
    (work / "one").mkdir()
    (work / "batch").mkdir()
    sf.write(work / "one" / "track.wav", track, RATE, subtype="PCM_24")
    steps = stages(work / "one" / "track.wav", args.repeats) if args.stages else {}
    (work / "one" / "out.wav").unlink(missing_ok=True)
    for i in range(args.batch):
      shutil.copy(work / "one" / "track.wav", work / "batch" / f"track{i}.wav")
    jaxeq_process = [sys.executable, "-m", "jaxeq", "process"]
    # The command's compilation cache, empty for the first call: each later one finds there
    # what that call compiled.
    env = {**os.environ, "JAXEQ_JAX_CACHE": str(work / "jax-cache")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    cold = [command_seconds([*jaxeq_process, work / "one", "--out", work / f"out{i}"], env)
            for i in range(args.repeats + 1)]
    batches = {}
    for n in args.workers or [None]:
      workers = [] if n is None else ["--workers", str(n)]
      batches[n] = statistics.median(
          command_seconds([*jaxeq_process, work / "batch", "--out", work / f"batch_out{n}_{i}",
                           *workers], env)
          for i in range(args.repeats))
  finally:
    shutil.rmtree(work)
  first_s, cold_s = cold[0], statistics.median(cold[1:])
  print(f"machine: {os.cpu_count()} cores, jax {jax.__version__} on {jax.default_backend()}; "
        f"medians of {args.repeats}\n")
  print("| 3-min stereo 44.1 kHz track | seconds | target |")
  print("|---|---|---|")
  print(f"| classification (`Classifier.predict`, {len(jaxeq.log_spectrogram_windows(track, RATE, MAX_WINDOWS))}"
        f" windows, warm) | {statistics.median(classify):.2f} | – |")
  print(f"| `jaxeq process`, cold (one call, one track), the first: empty compilation cache | "
        f"{first_s:.1f} | – |")
  print(f"| `jaxeq process`, cold (one call, one track), compilation cache filled | {cold_s:.1f} "
        f"| ≤ 4 |")
  for n, batch_s in batches.items():
    workers = "" if n is None else f", `--workers {n}`"
    print(f"| `jaxeq process`, warm: per track in a batch of {args.batch}{workers} | "
          f"{(batch_s - cold_s) / (args.batch - 1):.2f} | < 1 |")
  if steps:
    print("\n| one warm track, step by step (in process) | wall s | CPU s |\n|---|---|---|")
    for name, (wall, cpu) in steps.items():
      print(f"| {name} | {wall:.3f} | {cpu:.3f} |")
    board = steps["pedalboard, the same EQ (for comparison)"][0]
    process = steps["`AutoEQ.process` (analysis to limited output)"][0]
    print(f"\n`AutoEQ.process` = {process / board:.1f}x pedalboard; the EQ (sosfilt) = "
          f"{steps['the EQ (sosfilt)'][0] / board:.2f}x pedalboard")


if __name__ == "__main__":
  main()
