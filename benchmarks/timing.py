"""The one timer the benchmarks share."""

from __future__ import annotations

import statistics
import time

import jax


def median_seconds(fn, repeats: int) -> float:
  """Median wall seconds of `fn()` over `repeats` calls, after one warm-up call (compilation).

  Waits for any JAX arrays `fn` returns, so asynchronous dispatch is timed in full.
  """
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)
