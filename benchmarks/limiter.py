"""Loudness and peaks: the true-peak limiter's cost, and the automatic EQ's loudness on real
drum hits with the limiter against turning the whole hit down (the old way).

    python -m benchmarks.limiter

Timings run pinned to one CPU core, medians over repeats. The drum hits are every recording of
the three held-out Hydrogen kits (`make sources` fetches them) of at least 0.1 s, processed at
`--amount 1` with the shipped models. Prints Markdown for benchmarks/RESULTS.md.
"""

import os

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, before JAX starts threads

import numpy as np  # noqa: E402

import jaxeq  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402
from data_prep import fetch  # noqa: E402
from jaxeq.filtering import filter_channels  # noqa: E402
from jaxeq.limiter import MAX_PEAK, true_peak_envelope  # noqa: E402
from jaxeq.loudness import (K_WEIGHTING, gated_loudness, integrated_loudness,  # noqa: E402
                            match_loudness)

RATE = 44100
TRACK_SECONDS = 180
KITS = ("ColomboAcousticDrumkit", "HardElectro1", "Audiophob")


def _kit_dir():
  return fetch.source_dir("hydrogen-drumkits")


def bench_limiter(repeats=5):
  """A 3-minute stereo track: a real kick every half second over noise, made 3 dB louder than
  its peaks allow (the limiter works on every hit), and 6 dB quieter (nothing to limit)."""
  kick, rate = jaxeq.load_audio(_kit_dir() / "HardElectro1" / "HardHse_K_02.flac")
  assert rate == RATE
  rng = np.random.default_rng(0)
  track = (0.02 * rng.standard_normal((TRACK_SECONDS * RATE, 2))).astype(np.float32)
  for start in range(0, len(track) - len(kick), RATE // 2):
    track[start:start + len(kick)] += kick
  track *= 0.9 / np.max(np.abs(track))
  weighted = filter_channels(track, RATE, K_WEIGHTING)
  loudness = gated_loudness(weighted, RATE)
  eq = jaxeq.EQ([jaxeq.Band("low_shelf", 120, 3.0), jaxeq.Band("peak", 400, -4.0, 1.5),
                 jaxeq.Band("peak", 3000, 2.0, 2.0), jaxeq.Band("high_shelf", 8000, 2.5)])
  rows = {
      "true-peak envelope (4x)": median_seconds(
          lambda: true_peak_envelope(np.ascontiguousarray(track.T), RATE), repeats),
      "match_loudness, nothing to limit (-6 dB)": median_seconds(
          lambda: match_loudness(track, RATE, weighted, loudness - 6.0), repeats),
      "match_loudness, every hit limited (+3 dB)": median_seconds(
          lambda: match_loudness(track, RATE, weighted, loudness + 3.0), repeats),
      "apply_eq, 4 bands (for scale)": median_seconds(lambda: jaxeq.apply_eq(track, RATE, eq),
                                                      repeats),
  }
  _, level = match_loudness(track, RATE, weighted, loudness + 3.0)
  return rows, level


def drum_hits():
  auto = jaxeq.AutoEQ.from_pretrained()
  rows = []
  for kit in KITS:
    for path in sorted((_kit_dir() / kit).iterdir()):
      if path.suffix.lower() not in (".wav", ".flac"):
        continue
      audio, rate = jaxeq.load_audio(path)
      if len(audio) < 0.1 * rate:
        continue
      processed, analysis = auto.process(audio, rate)
      before = integrated_loudness(audio, rate)
      # The old way: the make-up gain cut back until the sample peak fits under -0.1 dBFS.
      eqd = jaxeq.apply_eq(audio, rate, analysis.eq)
      makeup = before - integrated_loudness(eqd, rate)
      turned_down = min(0.0, 20 * np.log10(MAX_PEAK / np.max(np.abs(eqd))) - makeup)
      true_peak = 20 * np.log10(np.max(true_peak_envelope(np.atleast_2d(processed.T), rate)))
      rows.append((integrated_loudness(processed, rate) - before, turned_down,
                   analysis.limited_db, true_peak))
  return np.array(rows)


def main():
  rows, level = bench_limiter()
  print(f"3-minute stereo track at {RATE} Hz, one core; limiter: {level}\n")
  print("| step | median |\n|---|---|")
  for name, seconds in rows.items():
    print(f"| {name} | {seconds:.3f} s |")
  hits = drum_hits()
  change, old, limited, peak = hits.T
  print(f"\n{len(hits)} real drum hits ({', '.join(KITS)}), --amount 1:\n")
  print("| | limiter (now) | turning the hit down (before) |\n|---|---|---|")
  print(f"| within 1 LU of the input | {np.mean(np.abs(change) <= 1):.0%} | "
        f"{np.mean(np.abs(old) <= 1):.0%} |")
  worst = change[np.argmax(np.abs(change))]
  print(f"| loudness change: median, worst | {np.median(change):+.2f}, {worst:+.2f} LU | "
        f"{np.median(old):+.2f}, {old.min():+.2f} LU |")
  print(f"| hits limited; median, most limiting | {np.mean(limited > 0):.0%}; "
        f"{np.median(limited[limited > 0]):.1f}, {limited.max():.1f} dB | |")
  print(f"| highest true peak out | {peak.max():+.2f} dBTP | |")


if __name__ == "__main__":
  main()
