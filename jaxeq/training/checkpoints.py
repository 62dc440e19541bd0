"""Orbax train checkpoints: the last K and the best by validation, and reading them back.

A checkpoint is `checkpoints/<step>/{params,train,meta}` in a run's workdir: the parameters,
the rest of the train state (optimiser state, step, rng) for an exact resume, and the
validation metrics that rank it. Shipped models are not these: see `jaxeq.exported`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

PyTree = Any


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


def _abstract(x) -> jax.ShapeDtypeStruct:
  """`x`'s shape and dtype, placed on this host's first device (for restoring on one host)."""
  return jax.ShapeDtypeStruct(np.shape(x), x.dtype,
                              sharding=jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))


def _this_process_only() -> ocp.options.MultiprocessingOptions:
  """Orbax options for reading or writing in one process without waiting for the others
  (restoring to this host's device; the train checkpoints are saved by all together)."""
  index = jax.process_index()
  return ocp.options.MultiprocessingOptions(primary_host=index, active_processes={index})
