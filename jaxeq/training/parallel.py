"""Data parallelism for the train step: a `('data',)` device mesh, or `jax.pmap`.

Both modes give the same updates: the mesh shards the batch and replicates the state under
`jit`; `pmap` (which users ask for by name) averages gradients and metrics over its axis.
Under `jax.distributed` the mesh spans every process's devices.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

PyTree = Any
PARALLEL_MODES = ("mesh", "pmap")
AXIS = "data"


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


def _host(x) -> np.ndarray:
  """`x` in host memory: a replicated global array through this process's own copy."""
  return np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) else x)
