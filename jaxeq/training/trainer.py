"""The training loop every jaxeq experiment uses: data-parallel steps, checkpoints, metrics.

An experiment brings four pure pieces and a config (`default_config()` lists its keys):

    init_params: the model's initial parameters (a pytree)
    loss_fn(params, batch, rng) -> (loss, metrics)   batch means; metrics a dict of scalars
    batch_fn(step) -> batch       this process's share of global batch `step` (NumPy pytree,
                                  leading axis = examples); a pure function of the step, so
                                  the step is the data position and resuming is exact
    eval_fn(params) -> metrics    optional: validation metrics (floats), `best_metric` among them

and `train(config, workdir, ...)` owns the rest: the train state (a plain dict pytree:
params, opt_state, step, rng), a pure jitted step, data parallelism over every device (a
`('data',)` mesh with the batch sharded and the state replicated, or `jax.pmap` with
`parallel='pmap'`: `jaxeq.training.parallel`), orbax checkpoints (last K and the best by
validation: `jaxeq.training.checkpoints`), exact resume, a NaN/inf guard, a progress bar and
metrics to stdout, `metrics.jsonl` and TensorBoard (`jaxeq.training.metrics`).

Under `jax.distributed` (several processes: `experiments.launch`) the mesh spans every
process's devices and each process runs `train` with its share of each batch; the
checkpoints are saved by all of them together, metrics written by process 0.

Workdir layout: `checkpoints/<step>/{params,train,meta}`, `metrics.jsonl`, `tensorboard/`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from jaxeq.training.checkpoints import checkpoint_manager, restore_state, save_state
from jaxeq.training.metrics import MetricWriter
from jaxeq.training.parallel import PARALLEL_MODES, DataParallel

PyTree = Any
LossFn = Callable[[PyTree, PyTree, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]


class TrainingDiverged(RuntimeError):
  """The loss or the gradient stopped being finite; the last good checkpoint is kept."""


class ConfigError(ValueError):
  """A config value the run cannot work with; the message (one line) names it and the fix."""


def default_config() -> ml_collections.ConfigDict:
  """The trainer's keys, with defaults; experiments build their config on top of these."""
  return ml_collections.ConfigDict({
      "seed": 0,
      "num_steps": 1000,
      "parallel": "mesh",  # mesh | pmap
      "log_every": 50,
      "eval_every": 500,
      "checkpoint_every": 500,  # saves at evaluation steps carry the validation metrics
      "keep_checkpoints": 3,  # the last K, plus the best by `best_metric`
      "best_metric": "loss",  # a key of eval_fn's result; lower is better
      "progress": True,
  })


# --- orchestration -------------------------------------------------------------------


def train(config: ml_collections.ConfigDict, workdir, *, init_params: PyTree,
          loss_fn: LossFn, batch_fn: Callable[[int], PyTree],
          optimizer: optax.GradientTransformation,
          eval_fn: Callable[[PyTree], Mapping[str, float]] | None = None) -> dict:
  """Trains from the latest checkpoint in `workdir` (or from scratch) to `config.num_steps`.

  With several processes (`jax.distributed`), every process calls this with its own
  `batch_fn` share; `eval_fn` gets the parameters on this process's first device, so every
  process computes the same figures. Returns the final train state, likewise on this
  process's first device. Raises `TrainingDiverged` when the loss or gradient is NaN/inf,
  without saving that state.
  """
  check_config(config)
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  parallel = DataParallel(make_train_step(loss_fn, optimizer), config.parallel)
  state = init_state(init_params, optimizer, config.seed)
  with checkpoint_manager(workdir, config) as manager:
    start = manager.latest_step() or 0
    if start:
      state = restore_state(manager, start, state, parallel.replicated)
    writer = MetricWriter(workdir, topology())
    if start:
      writer.note(f"resumed from the checkpoint of step {start} in {manager.directory}")
    device_state = parallel.put_state(state)
    # Step time, without the evaluation and saving in between: `paused` is their share.
    sums, count, tick, paused = {}, 0, time.perf_counter(), 0.0
    bar = tqdm(range(start, config.num_steps), initial=start, total=config.num_steps,
               desc="train", disable=not config.progress or jax.process_index() != 0,
               dynamic_ncols=True)
    try:
      for step in bar:
        device_state, metrics = parallel.step(device_state, parallel.put_batch(batch_fn(step)))
        done = step + 1
        metrics = {k: float(v) for k, v in metrics.items()}
        bad = [k for k in ("loss", "grad_norm") if not math.isfinite(metrics[k])]
        if bad:
          kept = manager.latest_step()
          raise TrainingDiverged(
              f"training diverged at step {done}: {bad[0]} is {metrics[bad[0]]}; stopped, "
              + (f"last good checkpoint: step {kept} in {manager.directory}" if kept
                 else "no checkpoint saved yet"))
        for k, v in metrics.items():
          sums[k] = sums.get(k, 0.0) + v
        count += 1
        last = done == config.num_steps
        if done % config.log_every == 0 or last:
          now = time.perf_counter()
          means = {k: v / count for k, v in sums.items()}
          means["steps_per_s"] = count / (now - tick - paused)
          writer.write(done, "train", means)
          bar.set_postfix(loss=f"{means['loss']:.4g}")
          sums, count, tick, paused = {}, 0, now, 0.0
        pause_start, val = time.perf_counter(), None
        if eval_fn is not None and (done % config.eval_every == 0 or last):
          params = local_copy(parallel.get_state(device_state)["params"])
          val = {k: float(v) for k, v in eval_fn(params).items()}
          writer.write(done, "val", val)
        if done % config.checkpoint_every == 0 or last:
          save_state(manager, done, parallel.get_state(device_state), val, config.best_metric)
        paused += time.perf_counter() - pause_start
    finally:
      bar.close()
      writer.close()
  return local_copy(parallel.get_state(device_state))


def check_config(config) -> None:
  """Raises `ConfigError` for a trainer key the run cannot work with, in every process alike
  (the batch size against the job's devices among them): launchers call it before any work."""
  if config.parallel not in PARALLEL_MODES:
    raise ConfigError(f"config.parallel={config.parallel!r} must be one of {', '.join(PARALLEL_MODES)}")
  for key in ("num_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
    if not (isinstance(config[key], int) and config[key] > 0):
      raise ConfigError(f"config.{key}={config[key]!r} must be a positive integer")
  # Every process feeds an equal share of each global batch, split again over its devices.
  batch_size, devices = config.get("batch_size"), jax.device_count()
  if batch_size is not None and batch_size % devices:
    raise ConfigError(
        f"config.batch_size={batch_size} does not split over the job's {devices} devices "
        f"({jax.process_count()} processes x {jax.local_device_count()}): use a multiple of {devices}")


def topology() -> dict:
  """How many processes and devices the run has: what `metrics.jsonl` and config.json record."""
  return {"process_count": jax.process_count(), "device_count": jax.device_count()}


def local_copy(tree: PyTree) -> PyTree:
  """A replicated (global) pytree as arrays on this process's first device."""
  return jax.tree.map(lambda x: x.addressable_data(0), tree)


class EpochShuffle:
  """`shuffle(step)`: this process's example ids for global batch `step` of a `size`-example
  dataset, reshuffled every epoch (the remainder of an epoch is left out).

  A pure function of the seed and the step, so the step is the data position that exact
  resume needs.
  """

  def __init__(self, size: int, batch_size: int, seed: int):
    if not 0 < batch_size <= size:
      raise ValueError(f"batch_size={batch_size} must be in 1..{size} (the number of examples)")
    self.size, self.batch_size, self.seed = size, batch_size, seed
    self.steps_per_epoch = size // batch_size

  def __call__(self, step: int) -> np.ndarray:
    epoch, index = divmod(step, self.steps_per_epoch)
    order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
    ids = order[index * self.batch_size:(index + 1) * self.batch_size]
    share = len(ids) // jax.process_count()
    return ids[jax.process_index() * share:(jax.process_index() + 1) * share]


def train_seconds(workdir) -> float:
  """Seconds spent stepping, summed over the run's sessions (evaluation and saving left out)."""
  total, last_step = 0.0, 0
  for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines():
    record = json.loads(line)
    if record["split"] == "train":
      total += max(record["step"] - last_step, 0) / record["steps_per_s"]
      last_step = record["step"]
  return total


# --- the pure step -------------------------------------------------------------------


def init_state(params: PyTree, optimizer: optax.GradientTransformation, seed: int) -> dict:
  """The train state: a plain dict pytree."""
  return {"params": params, "opt_state": optimizer.init(params),
          "step": jnp.zeros((), jnp.int32), "rng": jax.random.PRNGKey(seed)}


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation):
  """`train_step(state, batch, axis_name) -> (state, metrics)`: one optimiser update.

  With an `axis_name` (pmap), gradients and metrics are averaged over the axis, so every
  device applies the update of the global batch; under jit on a mesh the sharded batch
  already makes the mean global.
  """

  def train_step(state, batch, axis_name=None):
    rng, step_rng = jax.random.split(state["rng"])
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch, step_rng)
    metrics = {**metrics, "loss": loss}
    if axis_name is not None:
      grads = jax.lax.pmean(grads, axis_name)
      metrics = jax.lax.pmean(metrics, axis_name)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    metrics["grad_norm"] = optax.tree.norm(grads)
    new_state = {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
                 "step": state["step"] + 1, "rng": rng}
    return new_state, metrics

  return train_step
