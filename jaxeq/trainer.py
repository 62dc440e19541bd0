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
`parallel='pmap'`), orbax checkpoints (last K and the best by validation), exact resume, a
NaN/inf guard, a progress bar and metrics to stdout, `metrics.jsonl` and TensorBoard.

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
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec as P
from orbax.checkpoint import checkpoint_managers as policies
from tqdm import tqdm

PyTree = Any
LossFn = Callable[[PyTree, PyTree, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]
PARALLEL_MODES = ("mesh", "pmap")
AXIS = "data"


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


# --- data parallelism ----------------------------------------------------------------


class DataParallel:
  """Runs a train step over every device: `mesh` (jit + NamedSharding) or `pmap`.

  The mesh spans every process's devices. `put_state`/`get_state` move the plain state onto
  the devices and back (replicated over the mesh: what checkpoints hold); `put_batch` shards
  this process's share of a global batch over `('data',)`.
  """

  def __init__(self, train_step: Callable, mode: str = "mesh"):
    if mode not in PARALLEL_MODES:
      raise ValueError(f"parallel mode {mode!r} must be one of {', '.join(PARALLEL_MODES)}")
    self.mode = mode
    self.mesh = jax.make_mesh((jax.device_count(),), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
    self.replicated = NamedSharding(self.mesh, P())
    self.sharded = NamedSharding(self.mesh, P(AXIS))
    if mode == "mesh":
      self._step = jax.jit(lambda s, b: train_step(s, b, None), in_shardings=(self.replicated, self.sharded),
                           out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    else:
      self._step = jax.pmap(lambda s, b: train_step(s, b, AXIS), axis_name=AXIS, donate_argnums=0)

  def put_state(self, state: PyTree) -> PyTree:
    if self.mode == "mesh":
      # Through host memory, so the step's donation never deletes the caller's arrays.
      return jax.tree.map(self._replicate, state)
    n = jax.local_device_count()
    return jax.tree.map(lambda x: np.broadcast_to(_host(x), (n, *np.shape(x))), state)

  def get_state(self, device_state: PyTree) -> PyTree:
    if self.mode == "mesh":
      return device_state
    # This process's first device holds one copy (a leading axis of 1) of the state.
    return jax.tree.map(lambda x: self._replicate(x.addressable_data(0)[0]), device_state)

  def _replicate(self, x) -> jax.Array:
    """`x` (the same in every process) replicated over the mesh; with several processes
    each one places its own copy, as a device_put could not."""
    host = _host(x)
    return jax.make_array_from_callback(host.shape, self.replicated, lambda index: host[index])

  def put_batch(self, local_batch: PyTree) -> PyTree:
    devices = jax.local_device_count()
    size = len(jax.tree.leaves(local_batch)[0])
    if size % devices:
      raise ValueError(f"a batch of {size} examples per process does not split over {devices} devices")
    if self.mode == "mesh":
      return jax.tree.map(lambda x: jax.make_array_from_process_local_data(self.sharded, np.asarray(x)),
                          local_batch)
    return jax.tree.map(lambda x: np.asarray(x).reshape(devices, -1, *np.shape(x)[1:]), local_batch)

  def step(self, device_state: PyTree, batch: PyTree) -> tuple[PyTree, dict]:
    device_state, metrics = self._step(device_state, batch)
    if self.mode == "pmap":
      metrics = jax.tree.map(lambda x: x[0], metrics)
    return device_state, metrics


# --- checkpoints ---------------------------------------------------------------------


def checkpoint_manager(workdir, config) -> ocp.CheckpointManager:
  """Keeps the last `keep_checkpoints` saves and the best by `val[best_metric]` (lower wins)."""
  best = lambda metrics: metrics[config.best_metric]  # noqa: E731
  options = ocp.CheckpointManagerOptions(
      best_fn=best, best_mode="min", enable_async_checkpointing=False,
      preservation_policy=policies.AnyPreservationPolicy([
          policies.LatestN(n=config.keep_checkpoints),
          policies.BestN(get_metric_fn=best, reverse=True, n=1,
                         keep_checkpoints_without_metrics=False)]))
  return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options,
                               item_names=("params", "train", "meta"))


def save_state(manager: ocp.CheckpointManager, step: int, state: PyTree,
               val: Mapping[str, float] | None, best_metric: str = "loss") -> None:
  # The data position is the step (see batch_fn); `val` ranks the checkpoint.
  meta = {"step": step, "val": val, "best_metric": best_metric}
  manager.save(step, metrics=val, args=ocp.args.Composite(
      params=ocp.args.StandardSave(state["params"]),
      train=ocp.args.StandardSave({k: state[k] for k in ("opt_state", "step", "rng")}),
      meta=ocp.args.JsonSave(meta)))


def restore_state(manager: ocp.CheckpointManager, step: int, like: PyTree,
                  sharding: jax.sharding.Sharding) -> PyTree:
  """The state saved at `step`, shaped like `like` (a fresh state), placed with `sharding`."""
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype,
                                                         sharding=sharding), like)
  restored = manager.restore(step, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(abstract["params"]),
      train=ocp.args.StandardRestore({k: abstract[k] for k in ("opt_state", "step", "rng")})))
  return {"params": restored["params"], **restored["train"]}


def restore_params(workdir, like: PyTree, which: str | int = "best") -> tuple[PyTree, int]:
  """Parameters (shaped like `like`) from a run's checkpoints: `best`, `latest` or a step."""
  directory = Path(workdir).absolute() / "checkpoints"
  options = ocp.CheckpointManagerOptions(create=False, multiprocessing_options=_this_process_only())
  with ocp.CheckpointManager(directory, item_names=("params", "train", "meta"),
                             options=options) as manager:
    steps = manager.all_steps()
    if not steps:
      raise FileNotFoundError(f"no checkpoints in {directory}")
    if which == "latest":
      step = manager.latest_step()
    elif which == "best":
      step = _best_step(manager, steps)
    elif which in steps:
      step = which
    else:
      raise ValueError(f"no checkpoint {which!r} in {directory}; steps: {steps}")
    abstract = jax.tree.map(_abstract, like)
    params = manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract)))
  return params["params"], step


def _best_step(manager: ocp.CheckpointManager, steps) -> int:
  """The step whose saved validation metrics rank first (the run's `best_metric`)."""
  ranked = []
  for step in steps:
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if meta.get("val"):
      ranked.append((meta["val"][meta.get("best_metric", "loss")], step))
  return min(ranked)[1] if ranked else manager.latest_step()


def _host(x) -> np.ndarray:
  """`x` in host memory: a replicated global array through this process's own copy."""
  return np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) else x)


def _abstract(x) -> jax.ShapeDtypeStruct:
  """`x`'s shape and dtype, placed on this host's first device (for restoring on one host)."""
  return jax.ShapeDtypeStruct(np.shape(x), x.dtype,
                              sharding=jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))


def _this_process_only() -> ocp.options.MultiprocessingOptions:
  """Orbax options for reading or writing in one process without waiting for the others
  (restoring to this host's device; the train checkpoints are saved by all together)."""
  index = jax.process_index()
  return ocp.options.MultiprocessingOptions(primary_host=index, active_processes={index})


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


# --- metrics -------------------------------------------------------------------------


class MetricWriter:
  """Metrics to stdout, `metrics.jsonl` and TensorBoard event files; process 0 only.

  `context` (such as `topology()`) goes into every `metrics.jsonl` record as it is.
  """

  def __init__(self, workdir: Path, context: Mapping[str, Any] | None = None):
    self._active = jax.process_index() == 0
    self._context = dict(context or {})
    if self._active:
      from tensorboardX import SummaryWriter  # heavy import, only where metrics are written
      self._jsonl = open(workdir / "metrics.jsonl", "a", encoding="utf-8")
      self._tb = SummaryWriter(str(workdir / "tensorboard"))
      self._start = time.time()

  def note(self, text: str) -> None:
    if self._active:
      tqdm.write(text)

  def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
    if not self._active:
      return
    tqdm.write(f"step {step} {split}: " + ", ".join(f"{k}={v:.5g}" for k, v in sorted(metrics.items())))
    record = {"step": step, "split": split, "wall_s": round(time.time() - self._start, 3),
              **self._context, **metrics}
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    for k, v in metrics.items():
      self._tb.add_scalar(f"{split}/{k}", v, step)
    self._tb.flush()

  def close(self) -> None:
    if self._active:
      self._jsonl.close()
      self._tb.close()


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
