import pathlib
import sys

# Test helpers (e.g. the independent RBJ reference) live beside the tests.
sys.path.insert(0, str(pathlib.Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smoke_dataset(tmp_path_factory):
  """The `smoke` dataset, rendered with real FluidSynth and featurized, once per test run."""
  from data_prep import dataset
  return dataset.ensure(tmp_path_factory.mktemp("smoke_dataset"), size="smoke", workers=2)
