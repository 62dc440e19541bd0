import pathlib
import sys

# Test helpers (e.g. the independent RBJ reference) live beside the tests.
sys.path.insert(0, str(pathlib.Path(__file__).parent))
