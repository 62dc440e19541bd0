import atexit
import os
import pathlib
import shutil
import sys
import tempfile

# Test helpers (e.g. the independent RBJ reference) live beside the tests.
sys.path.insert(0, str(pathlib.Path(__file__).parent))

# One JAX compilation cache for the whole run, fresh each run (so a run on a new machine takes
# what it takes here): the tests, the `jaxeq` commands and experiments they start as
# subprocesses, and the notebooks' kernels inherit it, so a program compiled once (the
# classifier on a clip, a training step, an EQ's response) is loaded, not compiled again, by
# the next process that needs it. A cache a user set is used instead.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="jaxeq-tests-jax-cache-")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
if "jax" in sys.modules:  # imported before this file: JAX has read its settings already
  import jax
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update("jax_persistent_cache_min_compile_time_secs",
                    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
  jax.config.update("jax_persistent_cache_min_entry_size_bytes",
                    int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]))

import pytest  # noqa: E402
from notebook_run import ExecutedNotebook  # noqa: E402


@pytest.fixture(scope="session")
def smoke_dataset(tmp_path_factory):
  """The `smoke` dataset, rendered with real FluidSynth and featurized, once per test run."""
  from data_prep import dataset
  return dataset.ensure(tmp_path_factory.mktemp("smoke_dataset"), size="smoke", workers=2)


@pytest.fixture(scope="session")
def training_walkthrough(smoke_dataset, tmp_path_factory) -> ExecutedNotebook:
  """notebooks/training_walkthrough.ipynb, run once from `notebooks/` on the smoke dataset: its
  base training and its smoke fine-tuning run (WORK/finetune) are checked by
  tests/test_notebooks.py and tests/test_finetune.py."""
  work = tmp_path_factory.mktemp("training_walkthrough") / "work"
  return ExecutedNotebook("training_walkthrough", "notebooks", smoke_dataset, work)
