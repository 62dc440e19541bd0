"""The timers the benchmarks share."""

from __future__ import annotations

import statistics
import time

import jax

from jaxeq.training import trainer
from jaxeq.training.parallel import DataParallel


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


def training_steps_per_s(loss_fn, optimizer, params, batch_fn, steps: int, repeats: int) -> float:
  """Median steps per second of the trainer's own update on the device mesh.

  `batch_fn(step)` gives each step's host batch, put on the devices as the trainer does; each
  step's loss is read back, as the trainer's NaN guard does.
  """
  parallel = DataParallel(trainer.make_train_step(loss_fn, optimizer), "mesh")
  state = parallel.put_state(trainer.init_state(params, optimizer, 0))

  def run():
    nonlocal state
    for step in range(steps):
      state, metrics = parallel.step(state, parallel.put_batch(batch_fn(step)))
      float(metrics["loss"])
    return state["step"]

  return steps / median_seconds(run, repeats)
