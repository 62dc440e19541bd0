"""The notebooks run top to bottom (at smoke size), as a Colab user would run them."""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).parent.parent


@pytest.mark.parametrize("name", ["quickstart", "training_walkthrough"])
def test_notebook_executes(name, tmp_path, smoke_dataset, monkeypatch):
  monkeypatch.setenv("JAXEQ_DATA", str(smoke_dataset))
  monkeypatch.setenv("JAXEQ_WORKDIR", str(tmp_path / "work"))
  monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
  notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert images, "the notebook shows its plots"
