"""Multi-process training on JAX's distributed runtime: two real processes on this machine.

A simulated two-task SLURM step (the environment `srun -n 2` gives its tasks) and the explicit
`--coordinator_address/--num_processes/--process_id` flags run the base-train experiment as
one job; its parameters match a one-process run with the same global batch, and a job
killed midway resumes from its checkpoint to the same end. Bad launches stop every process
with one line; `jaxeq` commands leave a GPU's memory to other work.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxeq import matcher_networks
from jaxeq.training.checkpoints import restore_params

ROOT = Path(__file__).resolve().parents[1]
# The smoke run, smaller still: two 8-step epochs of batch 64 (32 per process), a small CNN,
# a checkpoint an epoch.
TINY_CONFIG = """
from experiments import base_train

def get_config():
  config = base_train.get_config("smoke")
  config.model_kwargs = {"features": (8, 8), "width": 32, "depth": 2}
  config.update(train_size=512, val_size=64, test_size=64, eval_every=8, checkpoint_every=8,
                log_every=4, progress=False)
  return config
"""
NUM_STEPS = 2 * (512 // 64)
MODEL_KWARGS = {"features": (8, 8), "width": 32, "depth": 2}


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """The tiny config file, and a compilation cache the runs share: the processes that come
  after the first one load its programs instead of compiling them again."""
  folder = tmp_path_factory.mktemp("distributed")
  (folder / "tiny.py").write_text(TINY_CONFIG)
  return folder / "tiny.py", folder / "compilation_cache"


def environment(cache, **extra) -> dict:
  # One CPU device per process, and no cluster from the machine running the tests.
  env = {k: v for k, v in os.environ.items()
         if k != "XLA_FLAGS" and not k.startswith(("SLURM_", "OMPI_", "JAX_"))}
  return {**env, "JAX_COMPILATION_CACHE_DIR": str(cache),
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
          "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0", **extra}


def command(config_file, workdir, *flags):
  return [sys.executable, "-m", "experiments.base_train", f"--workdir={workdir}",
          f"--config={config_file}", *flags]


@pytest.fixture(autouse=True)
def no_process_left():
  """Kills what a failing test left running (a job waiting for a process that died)."""
  yield
  while STARTED:
    p = STARTED.pop()
    if p.poll() is None:
      p.kill()
      p.wait()


STARTED: list[subprocess.Popen] = []


def process(setup, workdir, *flags, **env) -> subprocess.Popen:
  """The experiment in a process of its own, its output in a file beside `workdir` (a pipe
  left unread could fill and stall it, and the job with it)."""
  config_file, cache = setup
  fd, log = tempfile.mkstemp(dir=Path(workdir).parent, prefix=f"{Path(workdir).name}-",
                             suffix=".log")
  p = subprocess.Popen(command(config_file, workdir, *flags), cwd=ROOT,
                       env=environment(cache, **env), stdout=fd, stderr=subprocess.STDOUT)
  os.close(fd)
  p.log = Path(log)
  STARTED.append(p)
  return p


def output(p: subprocess.Popen, timeout=240) -> str:
  p.wait(timeout=timeout)
  return p.log.read_text()


def slurm_task(setup, workdir, port, task):
  """Task `task` of a two-task SLURM step on this host."""
  return process(setup, workdir, SLURM_JOB_ID="4242", SLURM_STEP_NODELIST="localhost",
                 SLURM_NTASKS="2", SLURM_PROCID=str(task), SLURM_LOCALID=str(task),
                 JAX_COORDINATOR_PORT=str(port))


def flagged_process(setup, workdir, port, index, *flags):
  return process(setup, workdir, f"--coordinator_address=localhost:{port}", "--num_processes=2",
                 f"--process_id={index}", *flags)


def finish(processes, timeout=240) -> list[str]:
  outputs = [output(p, timeout) for p in processes]
  for p, out in zip(processes, outputs):
    assert p.returncode == 0, out[-3000:]
  return outputs


def saved_steps(workdir) -> list[int]:
  checkpoints = Path(workdir) / "checkpoints"
  return sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) \
      if checkpoints.is_dir() else []


def test_a_killed_two_process_job_resumes_to_the_parameters_of_one_process(setup, tmp_path):
  # One process, the same global batch of 64 (first: the job finds most programs compiled).
  reference = tmp_path / "one_process"
  finish([process(setup, reference)])

  port = free_port()
  job = tmp_path / "job"
  tasks = [slurm_task(setup, job, port, task) for task in (0, 1)]
  deadline = time.time() + 240
  while not saved_steps(job):
    assert all(t.poll() is None for t in tasks) and time.time() < deadline, \
        "\n".join(t.log.read_text()[-2000:] for t in tasks)
    time.sleep(0.01)
  for t in tasks:
    t.send_signal(signal.SIGKILL)
    t.wait()
  assert not (job / "test_metrics.json").exists(), "the job finished before the kill"
  killed_at = saved_steps(job)[-1]
  assert killed_at < NUM_STEPS

  # The same job, relaunched with the explicit flags: it picks up the checkpoint.
  port = free_port()
  outputs = finish([flagged_process(setup, job, port, i) for i in (0, 1)])
  assert f"resumed from the checkpoint of step {killed_at}" in outputs[0]
  # Both processes evaluated the same parameters; only process 0 logged.
  mae_lines = [[line for line in out.splitlines() if line.startswith("test (")] for out in outputs]
  assert len(mae_lines[0]) == 1 and mae_lines[0] == mae_lines[1]
  logged = [[line for line in out.splitlines() if line.startswith("step ")] for out in outputs]
  assert f"step {NUM_STEPS} val" in "\n".join(logged[0]) and not logged[1]

  records = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
  assert all(r["process_count"] == 2 and r["device_count"] == 2 for r in records)
  train_steps = [r["step"] for r in records if r["split"] == "train"]
  resumed = train_steps[train_steps.index(killed_at + 4):]  # each once: process 1 writes none
  assert resumed == list(range(killed_at + 4, NUM_STEPS + 1, 4))
  config = json.loads((job / "config.json").read_text())
  assert config["process_count"] == 2 and config["device_count"] == 2

  metrics = json.loads((reference / "test_metrics.json").read_text())
  assert json.loads((job / "test_metrics.json").read_text())["mae_db"] == pytest.approx(
      metrics["mae_db"], rel=1e-5)
  like = matcher_networks.init_params(matcher_networks.make_model("cnn", 10, **MODEL_KWARGS),
                                      jax.random.PRNGKey(0))
  two, step = restore_params(job, like, "latest")
  one, one_step = restore_params(reference, like, "latest")
  assert step == one_step == NUM_STEPS
  for a, b, start in zip(jax.tree.leaves(two), jax.tree.leaves(one), jax.tree.leaves(like)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(a), np.asarray(start))  # training moved them


def test_a_batch_that_does_not_split_over_the_processes_stops_both_with_one_line(setup, tmp_path):
  port = free_port()
  processes = [flagged_process(setup, tmp_path / "job", port, i, "--config.batch_size=63")
               for i in (0, 1)]
  for p in processes:
    out = output(p, 120)
    assert p.returncode != 0
    errors = [line for line in out.splitlines() if "batch_size" in line]
    assert errors == ["base_train: config.batch_size=63 does not split over the job's 2 devices "
                      "(2 processes x 1): use a multiple of 2"], out[-2000:]
  assert not saved_steps(tmp_path / "job")


def test_an_unreachable_coordinator_is_one_line_within_the_timeout(setup, tmp_path):
  # Process 1 finds no coordinator (nothing listens at its port); a lone process 0, on
  # another port, waits as long for the others.
  ports = [free_port()]
  while len(ports) < 2:
    ports += [p for p in [free_port()] if p != ports[0]]
  lone = [flagged_process(setup, tmp_path / f"job{i}", port, i, "--distributed_timeout=2")
          for i, port in zip((1, 0), ports)]
  start = time.time()
  outputs = [output(p, 120) for p in lone]
  assert time.time() - start < 60 and all(p.returncode != 0 for p in lone)
  assert outputs[0].strip().splitlines()[-1].startswith(
      f"base_train: cannot reach the coordinator at localhost:{ports[0]} within 2 s")
  assert outputs[1].strip().splitlines()[-1] == (
      f"base_train: not every one of the 2 processes joined the coordinator at "
      f"localhost:{ports[1]} within 2 s: start all of them (srun -n, mpirun -n, or one per "
      "--process_id), or raise --distributed_timeout")


def test_jaxeq_commands_leave_gpu_memory_to_other_work(monkeypatch, capsys):
  from jaxeq import cli
  monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
  assert cli.main(["classes"]) == 0
  assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # read when the GPU starts
  monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")  # a user's own choice stands
  assert cli.main(["classes"]) == 0
  assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"


def test_the_experiments_import_without_starting_jax(tmp_path):
  # jax.distributed.initialize must come before any JAX computation: a module that computes
  # at import would stop every multi-process job of the experiments importing it.
  script = ("import experiments.base_train, experiments.classifier, experiments.finetune, jax\n"
            f"jax.distributed.initialize('localhost:{free_port()}', 1, 0)\n"
            "print(jax.process_count())\n")
  result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment(tmp_path),
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0 and result.stdout.split() == ["1"], result.stderr[-2000:]


def test_launch_flags_that_do_not_go_together_are_one_line_errors(monkeypatch):
  from experiments import launch
  for name in [k for k in os.environ if k.startswith(("SLURM_", "OMPI_", "JAX_COORDINATOR"))]:
    monkeypatch.delenv(name)
  assert launch.start_distributed() is False  # no cluster, no flags: one process
  cases = [(("localhost:1234", 2, None), "--process_id missing: outside a cluster JAX detects"),
           (("localhost", 2, 1), "--coordinator_address='localhost' must be HOST:PORT"),
           (("localhost:1234", 2, 2), "--process_id=2 must be in 0..1 (--num_processes=2)")]
  for flags, message in cases:
    with pytest.raises(launch.LaunchError, match=re.escape(message)):
      launch.start_distributed(*flags, timeout_s=5)
