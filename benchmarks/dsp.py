"""DSP core speed: batched EQ responses against scipy, and apply_eq against pedalboard.

    python -m benchmarks.dsp            # or: make bench

Runs pinned to one CPU core and prints a Markdown table for benchmarks/RESULTS.md. Every
figure is the median over repeats; ratios are of medians.
"""

import os

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, before JAX starts threads

import platform  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pedalboard  # noqa: E402
from scipy import signal  # noqa: E402

import jaxeq  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402
from jaxeq.training.synthetic import sample_settings  # noqa: E402

RATE = 44100
NUM_EQS = 1024
TRACK_SECONDS = 180


def bench_responses(repeats=7):
  layout = jaxeq.get_layout("paper4")
  settings = sample_settings(layout, jax.random.key(0), (NUM_EQS,))
  response = jax.jit(lambda s: layout.response_db(s, jaxeq.FREQS, RATE))
  t_jax = median_seconds(lambda: response(settings), repeats)
  sos = [eq.to_sos(RATE) for eq in layout.to_eqs(settings)]

  def scipy_loop():
    for s in sos:
      signal.sosfreqz(s, worN=jaxeq.FREQS, fs=RATE)

  t_scipy = median_seconds(scipy_loop, max(3, repeats // 2))
  return t_jax, t_scipy


def bench_apply(repeats=5):
  rng = np.random.default_rng(0)
  audio = (0.1 * rng.standard_normal((TRACK_SECONDS * RATE, 2))).astype(np.float32)
  eq = jaxeq.EQ([jaxeq.Band("low_shelf", 120, 3.0), jaxeq.Band("peak", 400, -4.0, 1.5),
                 jaxeq.Band("peak", 3000, 2.0, 2.0), jaxeq.Band("high_shelf", 8000, 2.5)])
  board = pedalboard.Pedalboard([
      pedalboard.LowShelfFilter(cutoff_frequency_hz=120, gain_db=3.0, q=1 / np.sqrt(2)),
      pedalboard.PeakFilter(cutoff_frequency_hz=400, gain_db=-4.0, q=1.5),
      pedalboard.PeakFilter(cutoff_frequency_hz=3000, gain_db=2.0, q=2.0),
      pedalboard.HighShelfFilter(cutoff_frequency_hz=8000, gain_db=2.5, q=1 / np.sqrt(2))])
  planar = np.ascontiguousarray(audio.T)  # pedalboard takes (channels, samples)
  t_jaxeq = median_seconds(lambda: jaxeq.apply_eq(audio, RATE, eq), repeats)
  t_pedalboard = median_seconds(lambda: board.process(planar, RATE), repeats)
  ours, theirs = jaxeq.apply_eq(audio, RATE, eq), board.process(planar, RATE).T
  # Same filters: pedalboard's JUCE biquads agree with ours once both have settled.
  agree_db = 20 * np.log10(np.std(ours[RATE:]) / np.std(theirs[RATE:]))
  return t_jaxeq, t_pedalboard, agree_db


def main():
  t_jax, t_scipy = bench_responses()
  t_apply, t_board, agree_db = bench_apply()
  cpu = platform.processor() or platform.machine()
  print(f"machine: {os.cpu_count()} cores ({cpu}), pinned to 1 core; jax {jax.__version__}, "
        f"backend {jax.default_backend()}\n")
  print("| benchmark | jaxeq | comparison | ratio |")
  print("|---|---|---|---|")
  print(f"| dB response, {NUM_EQS} paper4 EQs x 256 freqs | {t_jax * 1e3:.2f} ms (jit) | "
        f"{t_scipy * 1e3:.0f} ms (scipy sosfreqz loop) | {t_scipy / t_jax:.0f}x faster |")
  print(f"| apply_eq, {TRACK_SECONDS // 60} min stereo 44.1 kHz, 4 bands | {t_apply:.3f} s = "
        f"{TRACK_SECONDS / t_apply:.0f}x real time | {t_board:.3f} s = "
        f"{TRACK_SECONDS / t_board:.0f}x real time (pedalboard) | {t_board / t_apply:.2f} |")
  print(f"\nlevel difference jaxeq vs pedalboard output: {agree_db:+.3f} dB")


if __name__ == "__main__":
  main()
