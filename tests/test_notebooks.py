"""The notebooks run top to bottom (at smoke size) as a user opens them: from `notebooks/`
(Jupyter's default folder) and from the repository root, with jaxeq as installed, writing
only into their working folder. (The training walkthrough runs once, in a fixture of
conftest.py: tests/test_finetune.py checks its fine-tuning run.)"""

import pytest
from notebook_run import ExecutedNotebook


def check(executed: ExecutedNotebook):
  assert not [o for o in executed.outputs if o.output_type == "error"]
  images = [o for o in executed.outputs if "image/png" in o.get("data", {})]
  assert images, "the notebook shows its plots"
  assert executed.after == executed.before, "wrote outside WORK"
  assert any(executed.work.iterdir())


@pytest.mark.parametrize("cwd", ["notebooks", "."])
def test_quickstart_executes(cwd, tmp_path, smoke_dataset):
  check(ExecutedNotebook("quickstart", cwd, smoke_dataset, tmp_path / "work"))


def test_training_walkthrough_executes(training_walkthrough):
  check(training_walkthrough)
  # Both stages ran in WORK: the base matchers it exported, then the fine-tuning comparison.
  for folder in ("base_cnn", "base_mlp", "matcher_cnn", "matcher_mlp", "finetune"):
    assert (training_walkthrough.work / folder).is_dir(), folder
