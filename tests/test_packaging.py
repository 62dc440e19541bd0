"""The package configuration: what `pip install` puts in place, and that it builds quietly."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("jaxeq", "data_prep", "experiments", "benchmarks")


def test_the_build_holds_every_package_and_asset_without_a_warning(tmp_path):
  pytest.importorskip("setuptools")
  source = tmp_path / "source"
  source.mkdir()
  for name in ("setup.cfg", "pyproject.toml", "README.md"):
    shutil.copy(ROOT / name, source / name)
  for name in PACKAGES:
    shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
  build = tmp_path / "build"
  # build_py is the step of `pip install` and `pip wheel` that lays out packages and data.
  result = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()",
                           "-q", "build_py", "-d", str(build)], cwd=source,
                          capture_output=True, text=True, timeout=120,
                          # (else build_py warns that it does not byte-compile)
                          env={k: v for k, v in os.environ.items()
                               if k != "PYTHONDONTWRITEBYTECODE"})
  assert result.returncode == 0, result.stderr
  assert "warning" not in (result.stdout + result.stderr).lower(), result.stderr[:2000]
  for name in PACKAGES:
    assert (build / name / "__init__.py").is_file(), name
  assets = [p.relative_to(ROOT) for p in (ROOT / "jaxeq" / "assets").rglob("*") if p.is_file()]
  assert assets and [p for p in assets if not (build / p).is_file()] == []


def test_what_the_notebooks_and_experiments_import_is_installed(tmp_path):
  """From a folder outside the checkout (as from `notebooks/`), with the installed package."""
  result = subprocess.run([sys.executable, "-c", "import data_prep.dataset, experiments.finetune, "
                           "benchmarks.timing, jaxeq"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr


# What only training needs: a track processed with the shipped models loads none of it.
TRAINING_MODULES = ("optax", "orbax", "jaxeq.training", "data_prep", "experiments")
# Nor librosa and numba (about 0.9 s of every cold start): musicnn's mel filters are shipped.
SLOW_IMPORTS = ("librosa", "numba")


def test_processing_a_track_loads_no_training_module_nor_librosa(tmp_path):
  modules = TRAINING_MODULES + SLOW_IMPORTS
  script = f"""
import sys
import numpy as np
import jaxeq
audio = np.random.default_rng(0).normal(size=(3 * 44100, 2)).astype(np.float32) * 0.1
jaxeq.AutoEQ.from_pretrained().process(audio, 44100)
print(sorted(m for m in sys.modules if m.startswith({modules!r})))
"""
  result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().splitlines()[-1] == "[]"
