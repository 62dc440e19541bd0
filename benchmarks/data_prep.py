"""Dataset preparation speed and size: rendering (x real time), features (clips/s), statistics.

    python -m benchmarks.data_prep [--size default] [--out /tmp/jaxeq-bench-data] [--workers 2]

Renders `--size` from scratch into `--out` (deleted first) and featurizes it, timing both
commands end to end (worker start-up included), in wall-clock and in CPU seconds (which other
jobs on a shared machine disturb less). Statistics of every size come from its plan
(`data_prep.plan`), which fixes each clip's class, split and length without rendering it; those
of the rendered size are also read back from its manifest and files.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from data_prep import plan


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--size", default="default", choices=sorted(plan.SIZES))
  parser.add_argument("--out", default="/tmp/jaxeq-bench-data")
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  args = parser.parse_args()
  out = Path(args.out)
  shutil.rmtree(out, ignore_errors=True)
  print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")

  render_s, render_cpu = _timed([sys.executable, "-m", "data_prep.render", "--size", args.size,
                                 "--out", str(out), "--workers", str(args.workers)])
  rows = list(csv.DictReader(open(out / "manifest.csv", newline="")))
  audio_s = sum(float(r["duration_s"]) for r in rows)
  print(f"render {args.size}: {len(rows)} clips, {audio_s / 60:.1f} min of audio in "
        f"{render_s:.1f} s with {args.workers} workers = {audio_s / render_s:.0f}x real time "
        f"({audio_s / render_cpu:.0f}x per CPU second)")
  features_s, features_cpu = _timed([sys.executable, "-m", "data_prep.features", str(out),
                                     "--workers", str(args.workers)])
  print(f"features {args.size}: {len(rows) / features_s:.1f} clips/s ({features_s:.1f} s; "
        f"{len(rows) / features_cpu:.1f} clips per CPU second), "
        f"render + features {render_s + features_s:.0f} s")
  audio_mb = sum(f.stat().st_size for f in (out / "audio").rglob("*.flac")) / 1e6
  features_mb = sum(f.stat().st_size for f in (out / "features").rglob("*") if f.is_file()) / 1e6
  print(f"disk: audio {audio_mb:.0f} MB ({audio_mb * 1e3 / len(rows):.0f} kB/clip), "
        f"features {features_mb:.0f} MB")
  kinds = collections.Counter(r["material"].split(" ")[0] for r in rows)
  print("material: " + ", ".join(f"{k} {n / len(rows):.0%}" for k, n in kinds.most_common()))

  print("\n| size | rendered clips/class: reference + train / validation / test | recorded "
        "clips/class: train / validation / test | clips | minutes (train / validation / test) "
        "| clip length (at most) |")
  print("|---|---|---|---|---|---|")
  for name, size in plan.SIZES.items():
    clips = plan.plan(name, 0)
    minutes = collections.Counter()
    for c in clips:
      minutes[c.split] += c.seconds / 60
    print(f"| {name} | {size.reference} + {size.train} / {size.validation} / {size.test} | "
          f"{size.recorded_train} / {size.recorded_validation} / {size.recorded_test} | "
          f"{len(clips):,} | {sum(minutes.values()):,.0f} ({minutes['train']:,.0f} / "
          f"{minutes['validation']:,.0f} / {minutes['test']:,.0f}) | {size.clip_seconds:g} s |")
  per_class = collections.defaultdict(float)
  for r in rows:
    per_class[(r["class"], r["split"])] += float(r["duration_s"]) / 60
  spread = sorted(per_class.values())
  print(f"\nrendered {args.size}: minutes per class and split from {spread[0]:.2f} to "
        f"{spread[-1]:.2f} over {len(per_class)} (class, split) pairs")


def _timed(command: list[str]) -> tuple[float, float]:
  """Wall-clock and CPU seconds (all its processes) of a command."""
  start, cpu_start = time.perf_counter(), _children_cpu()
  subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return time.perf_counter() - start, _children_cpu() - cpu_start


def _children_cpu() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
  main()
