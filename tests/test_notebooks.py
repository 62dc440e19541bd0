"""The notebooks run top to bottom (at smoke size) as a user opens them: from `notebooks/`
(Jupyter's default folder) and from the repository root, with jaxeq as installed, writing
only into their working folder."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).parent.parent


def _listing(folder: pathlib.Path) -> set[str]:
  # Hidden entries are left out: other pytest runs may write .pytest_cache meanwhile.
  return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize("name, cwd", [("quickstart", "notebooks"), ("quickstart", "."),
                                       ("training_walkthrough", "notebooks")])
def test_notebook_executes(name, cwd, tmp_path, smoke_dataset, monkeypatch):
  monkeypatch.setenv("JAXEQ_DATA", str(smoke_dataset))
  monkeypatch.setenv("JAXEQ_WORKDIR", str(tmp_path / "work"))
  monkeypatch.delenv("PYTHONPATH", raising=False)  # imports come from the installed package
  before = {folder: _listing(folder) for folder in (ROOT, ROOT / "notebooks")}
  notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(ROOT / cwd)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert images, "the notebook shows its plots"
  assert {folder: _listing(folder) for folder in before} == before, "wrote outside WORK"
  assert any((tmp_path / "work").iterdir())
