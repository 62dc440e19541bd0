"""The base-training experiment: outputs, exact resume after a kill, export to a matcher."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxeq
from experiments import base_train
from jaxeq import matcher_networks
from jaxeq.training import synthetic
from jaxeq.training.checkpoints import restore_params

ROOT = Path(__file__).resolve().parents[1]
# Longer than the plain smoke run, so that a kill lands midway.
OVERRIDES = dict(num_epochs=4, val_size=64, test_size=64)
NUM_STEPS = 4 * (2048 // 64)


def smoke_config():
  config = base_train.get_config("smoke")
  config.update(OVERRIDES)
  config.progress = False
  return config


def command(workdir):
  return [sys.executable, "-m", "experiments.base_train", f"--workdir={workdir}",
          "--config=experiments/base_train.py:smoke", "--config.progress=False",
          *(f"--config.{k}={v}" for k, v in OVERRIDES.items())]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """An uninterrupted smoke run."""
  workdir = tmp_path_factory.mktemp("uninterrupted")
  metrics = base_train.train_and_evaluate(smoke_config(), workdir)
  return workdir, metrics


def test_smoke_run_writes_metrics_plots_and_learns(finished):
  workdir, metrics = finished
  assert (workdir / "test_matches.png").stat().st_size > 10_000
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  saved = json.loads((workdir / "test_metrics.json").read_text())
  assert saved["mae_db"] == pytest.approx(metrics["mae_db"]) and saved["num_steps"] == NUM_STEPS
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  val = [r["mae_db"] for r in records if r["split"] == "val"]
  assert len(val) == NUM_STEPS // 16 and val[-1] < 0.7 * val[0]


def test_killed_run_resumes_to_the_same_parameters(finished, tmp_path, capsys):
  workdir = tmp_path / "killed"
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  process = subprocess.Popen(command(workdir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  checkpoints = workdir / "checkpoints"
  deadline = time.time() + 240
  while not (checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())):
    assert process.poll() is None and time.time() < deadline, "the run ended before its first save"
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not (workdir / "test_metrics.json").exists(), "the run finished before the kill"
  saved = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
  assert saved and saved[-1] < NUM_STEPS

  # Relaunched (here, in this process: the command's `main` is this call): it picks up the
  # checkpoint and runs to the end.
  capsys.readouterr()
  base_train.train_and_evaluate(smoke_config(), workdir)
  assert f"resumed from the checkpoint of step {saved[-1]}" in capsys.readouterr().out
  assert (workdir / "test_metrics.json").exists()

  like = matcher_networks.init_params(matcher_networks.make_model("cnn", 10), jax.random.PRNGKey(0))
  resumed, step = restore_params(workdir, like, "latest")
  reference, ref_step = restore_params(finished[0], like, "latest")
  assert step == ref_step == NUM_STEPS
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(reference)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_export_gives_a_matcher_that_predicts_like_the_best_checkpoint(finished, tmp_path):
  workdir, metrics = finished
  config = smoke_config()
  base_train.export(config, workdir, tmp_path / "matcher", command="python -m experiments.base_train ...")
  matcher = jaxeq.load_matcher(str(tmp_path / "matcher"))
  card = (tmp_path / "matcher" / "MODEL_CARD.md").read_text()
  assert f"{metrics['mae_db']:.4f} dB" in card and "python -m experiments.base_train" in card
  like = matcher_networks.init_params(matcher.model, jax.random.PRNGKey(0))
  params, _ = restore_params(workdir, like, "best")
  curves = synthetic.fixed_set(matcher.layout, 9, "val", 8).curve
  expected = matcher.model.apply({"params": params}, curves)
  np.testing.assert_allclose(np.asarray(matcher.predict_unit(curves)), np.asarray(expected), atol=1e-6)
  # No optimiser state ships: the params file is about the size of the params.
  size = (tmp_path / "matcher" / "params.npz").stat().st_size
  n_bytes = sum(x.size * 4 for x in jax.tree.leaves(params))
  assert size < 1.5 * n_bytes + 100_000


def test_config_values_are_checked():
  with pytest.raises(ValueError, match="unknown config variant 'tiny'"):
    base_train.get_config("tiny")
