"""Training metrics: to stdout, `metrics.jsonl` and TensorBoard, written by process 0."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

import jax
from tqdm import tqdm


class MetricWriter:
  """Metrics to stdout, `metrics.jsonl` and TensorBoard event files; process 0 only.

  `context` (such as `jaxeq.training.trainer.topology()`) goes into every `metrics.jsonl`
  record as it is.
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
