"""The command line every experiment shares: `--config` (with overrides), `--workdir`, `--export`,
and joining JAX's distributed runtime.

    python -m experiments.NAME --workdir=DIR [--config=experiments/NAME.py:VARIANT]
        [--config.KEY=VALUE ...] [--export=DIR]
        [--coordinator_address=HOST:PORT --num_processes=N --process_id=I]
        [--distributed_timeout=SECONDS]

Under a cluster JAX detects (a SLURM step such as `srun -n 2 python -m ...`, Open MPI's
`mpirun`, a Cloud TPU pod, a Kubernetes job) every process joins one job on its own; the
three flags do it anywhere else. A single process otherwise.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

DEFAULT_DISTRIBUTED_TIMEOUT_S = 120


class LaunchError(RuntimeError):
  """The job cannot start as launched; its message (one line) says what to fix."""


def run(experiment_file: str, train_and_evaluate: Callable, export: Callable | None = None,
        default_workdir: str | None = None) -> None:
  """Parses the flags, joins the distributed runtime where there is one, and runs
  `train_and_evaluate(config, workdir)`, then `export` if asked.

  `export(config, workdir, destination, command)` gets the command line that ran, for the
  model card. Every process trains and evaluates (the train checkpoints are saved by all of
  them together; other files are written by process 0); process 0 exports.
  """
  from absl import app, flags, logging
  from ml_collections import config_flags

  name = Path(experiment_file).stem
  config_flags.DEFINE_config_file("config", experiment_file, f"the {name} config")
  flags.DEFINE_string("workdir", default_workdir, "checkpoints, metrics and results go here "
                      "(with several processes: a folder they all see)",
                      required=default_workdir is None)
  if export is not None:
    flags.DEFINE_string("export", None, "write the trained model(s) here")
  flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0, which every "
                      "process can reach (not needed under SLURM, Open MPI or a Cloud TPU pod)")
  flags.DEFINE_integer("num_processes", None, "how many processes make up the job")
  flags.DEFINE_integer("process_id", None, "this process's index, 0 .. num_processes-1")
  flags.DEFINE_integer("distributed_timeout", DEFAULT_DISTRIBUTED_TIMEOUT_S,
                       "seconds to wait for every process to join before giving up")

  def main(argv) -> None:
    del argv
    import jax
    from jaxeq.training import trainer
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    f = flags.FLAGS
    try:
      start_distributed(f.coordinator_address, f.num_processes, f.process_id,
                        f.distributed_timeout)
      config, workdir = f.config, f.workdir
      if "parallel" in config:  # a job that trains through jaxeq.training.trainer
        trainer.check_config(config)
      train_and_evaluate(config, workdir)
    except (LaunchError, trainer.ConfigError) as error:
      sys.exit(f"{name}: {error}")
    if export is not None and f.export and jax.process_index() == 0:
      export(config, workdir, f.export, f"python -m experiments.{name} " + shlex.join(sys.argv[1:]))
      print(f"exported to {f.export}")

  app.run(main)


def ensure_dataset(config):
  """`config.data_dir`, rendered and featurized first where it is not yet (`data_size`,
  `data_seed`); a job of several processes needs it prepared before it starts, as they would
  all render it at once."""
  import jax
  from data_prep import dataset
  if jax.process_count() > 1 and not dataset.is_prepared(config.data_dir):
    raise LaunchError(f"{config.data_dir}: no prepared dataset, and {jax.process_count()} "
                      "processes would all render it: prepare it first (python -m "
                      "data_prep.render and data_prep.features, or one single-process run)")
  return dataset.ensure(config.data_dir, config.data_size, config.data_seed)


def start_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                      process_id: int | None = None,
                      timeout_s: int = DEFAULT_DISTRIBUTED_TIMEOUT_S) -> bool:
  """Joins JAX's distributed runtime when the flags ask for it or a cluster JAX detects runs
  more than one process; returns whether it did. Must run before any JAX computation.

  Raises `LaunchError` for flags that do not go together; a process that cannot join within
  `timeout_s` (the coordinator does not answer, or not every process came) prints one line
  and exits, as XLA would otherwise abort it with a stack trace.
  """
  import jax
  from jax._src import clusters  # what jax.distributed.initialize() detects clusters with

  coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
  flags_given = [coordinator_address, num_processes, process_id]
  cluster = next((env for env in clusters.ClusterEnv._cluster_types
                  if not env.opt_in_only_method and env.is_env_present()), None)
  if cluster is None and not any(x is not None for x in flags_given):
    return False
  if cluster is None and None in flags_given:
    missing = [f"--{n}" for n, x in zip(("coordinator_address", "num_processes", "process_id"),
                                        flags_given) if x is None]
    raise LaunchError(f"{', '.join(missing)} missing: outside a cluster JAX detects (SLURM, "
                      "Open MPI, Cloud TPU, Kubernetes), --coordinator_address, --num_processes "
                      "and --process_id go together")
  if timeout_s <= 0:
    raise LaunchError(f"--distributed_timeout={timeout_s} must be a positive number of seconds")
  deadline = time.monotonic() + timeout_s
  address, count, index, local_devices = clusters.ClusterEnv.auto_detect_unset_distributed_params(
      coordinator_address, num_processes, process_id, None, None, timeout_s)
  if count < 1 or not 0 <= index < count:
    raise LaunchError(f"--process_id={index} must be in 0..{count - 1} (--num_processes={count})")
  if count == 1 and cluster is not None and coordinator_address is None:
    return False  # a one-task allocation: nothing to join
  host, port = _host_and_port(address)
  if index != 0:
    _wait_for_coordinator(address, host, port, deadline, timeout_s)
  # XLA aborts a process that cannot join (with a stack trace, after its own timeout): stop
  # first, with what to fix.
  who = (f"not every one of the {count} processes joined" if index == 0 else
         f"process {index} of {count}: not every process joined")
  watchdog = threading.Timer(max(deadline - time.monotonic(), 0.1), _give_up, (
      f"{who} the coordinator at {address} within {timeout_s} s: start all of them (srun -n, "
      "mpirun -n, or one per --process_id), or raise --distributed_timeout",))
  watchdog.daemon = True
  watchdog.start()
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes talk via gloo
  jax.distributed.initialize(address, count, index, local_device_ids=local_devices,
                             initialization_timeout=timeout_s + 60)
  watchdog.cancel()
  return True


def _host_and_port(address: str) -> tuple[str, int]:
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise LaunchError(f"--coordinator_address={address!r} must be HOST:PORT")
  return host.strip("[]"), int(port)


def _wait_for_coordinator(address: str, host: str, port: int, deadline: float,
                          timeout_s: float) -> None:
  """Returns once something listens at `host:port`; `LaunchError` at `deadline`."""
  while True:
    try:
      with socket.create_connection((host, port), timeout=1.0):
        return
    except OSError as error:
      if time.monotonic() >= deadline:
        raise LaunchError(f"cannot reach the coordinator at {address} within {timeout_s} s "
                          f"({error.strerror or error}): start process 0 there, or fix "
                          "--coordinator_address (a HOST:PORT every process can reach)") from None
    time.sleep(0.25)


def _give_up(message: str) -> None:
  print(f"{Path(sys.argv[0]).stem}: {message}", file=sys.stderr, flush=True)
  os._exit(1)
