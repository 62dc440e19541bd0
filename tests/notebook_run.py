"""Running a notebook of notebooks/ top to bottom, as a user opens it (tests/test_notebooks.py,
and the training walkthrough's fine-tuning run in tests/test_finetune.py)."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).parent.parent


def listing(folder: pathlib.Path) -> set[str]:
  # Hidden entries are left out: other pytest runs may write .pytest_cache meanwhile.
  return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


class ExecutedNotebook:
  """A notebook run top to bottom: its cells with their outputs, its working folder, and the
  listings of the repository root and `notebooks/` before and after the run."""

  def __init__(self, name: str, cwd: str, data: pathlib.Path, work: pathlib.Path):
    import nbformat
    from nbclient import NotebookClient
    self.work = work
    with pytest.MonkeyPatch.context() as env:  # the kernel starts with these
      env.setenv("JAXEQ_DATA", str(data))
      env.setenv("JAXEQ_WORKDIR", str(work))
      env.delenv("PYTHONPATH", raising=False)  # imports come from the installed package
      folders = (ROOT, ROOT / "notebooks")
      self.before = {folder: listing(folder) for folder in folders}
      self.notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
      NotebookClient(self.notebook, timeout=600, kernel_name="python3",
                     resources={"metadata": {"path": str(ROOT / cwd)}}).execute()
      self.after = {folder: listing(folder) for folder in folders}
    self.outputs = [o for cell in self.notebook.cells if cell.cell_type == "code"
                    for o in cell.outputs]
