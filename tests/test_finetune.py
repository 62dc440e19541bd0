"""The fine-tuning experiment at smoke size, from the shipped models, on rendered tracks."""

import json

import numpy as np

import jaxeq
from experiments import finetune


def test_smoke_run_writes_the_comparison_and_exports_a_matcher(tmp_path, smoke_dataset):
  config = finetune.get_config("smoke")
  config.data_dir = str(smoke_dataset)
  config.progress = False
  results = finetune.train_and_evaluate(config, tmp_path / "run")

  methods = ["MLP, synthetic only", "CNN, synthetic only", "MLP, fine-tuned", "CNN, fine-tuned",
             "per-curve optimiser (floor)"]
  assert list(results["mae_db"]) == methods
  assert results["test_curves"] == 35 and results["train_curves"] == 70
  assert all(np.isfinite(v) and v > 0 for v in results["mae_db"].values())
  assert results["change_vs_mlp_synthetic"]["MLP, synthetic only"] == 0.0
  assert results["ratio_to_floor"]["per-curve optimiser (floor)"] == 1.0
  # The floor fits each curve directly: no network does better than it by much.
  floor = results["mae_db"]["per-curve optimiser (floor)"]
  assert min(results["mae_db"].values()) >= floor * 0.9
  written = json.loads((tmp_path / "run" / "results.json").read_text())
  assert written["mae_db"] == results["mae_db"]
  assert "| CNN, fine-tuned |" in (tmp_path / "run" / "results.md").read_text()
  for png in ("mae.png", "examples.png"):
    assert (tmp_path / "run" / png).read_bytes()[:4] == b"\x89PNG"

  finetune.export(config, tmp_path / "run", tmp_path / "cnn_finetuned", "test")
  tuned = jaxeq.load_matcher(str(tmp_path / "cnn_finetuned"))
  assert tuned.layout.name == "paper4" and len(tuned.predict(np.zeros(256))[0].bands) == 4
  assert "fine-tuned" in (tmp_path / "cnn_finetuned" / "MODEL_CARD.md").read_text()
